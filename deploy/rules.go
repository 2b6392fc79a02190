// Package deploy holds SMP's deployment files (Prometheus rules,
// Alertmanager and Kubernetes configuration); its tests check them. The
// alert rules are also compiled into the binary: the Alertmanager
// receiver accepts only the alerts they define (AlertRules).
package deploy

import (
	_ "embed"
	"fmt"
	"sync"

	"sigs.k8s.io/yaml"

	"smp"
)

//go:embed prometheus/alerts.yml
var alertsYAML []byte

var alertRules = sync.OnceValues(func() ([]smp.AlertRule, error) { return ParseAlertRules(alertsYAML) })

// AlertRules returns the alerts of prometheus/alerts.yml as built into
// the binary; an error only if that file is malformed (its tests fail
// first).
func AlertRules() ([]smp.AlertRule, error) { return alertRules() }

// ParseAlertRules reads a Prometheus rule file and returns its alerts
// (recording rules are skipped). Each alert needs the labels severity and
// incident; component, when present, must be a status-page component and
// status_state degraded or outage.
func ParseAlertRules(b []byte) ([]smp.AlertRule, error) {
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `json:"alert"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("deploy: alert rules: %w", err)
	}
	var out []smp.AlertRule
	seen := map[string]bool{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			if seen[r.Alert] {
				return nil, fmt.Errorf("deploy: alert %s is defined twice", r.Alert)
			}
			seen[r.Alert] = true
			ar := smp.AlertRule{Name: r.Alert, Incident: r.Labels["incident"], Severity: r.Labels["severity"], Component: r.Labels["component"],
				State: smp.StateDegraded, Labels: r.Labels, Annotations: r.Annotations}
			if st, ok := r.Labels["status_state"]; ok {
				ar.State = smp.ComponentState(st)
			}
			switch {
			case len(ar.Name) > smp.MaxAlertName:
				return nil, fmt.Errorf("deploy: alert name %s is longer than %d", ar.Name, smp.MaxAlertName)
			case ar.Incident == "" || ar.Severity == "":
				return nil, fmt.Errorf("deploy: alert %s needs the labels severity and incident", ar.Name)
			case len(ar.Severity) > smp.MaxAlertSeverity:
				return nil, fmt.Errorf("deploy: alert %s: severity longer than %d", ar.Name, smp.MaxAlertSeverity)
			case ar.State != smp.StateDegraded && ar.State != smp.StateOutage:
				return nil, fmt.Errorf("deploy: alert %s: status_state %q is neither degraded nor outage", ar.Name, ar.State)
			}
			if _, ok := smp.FindComponent(ar.Component); ar.Component != "" && !ok {
				return nil, fmt.Errorf("deploy: alert %s: component %q is not a status-page component", ar.Name, ar.Component)
			}
			out = append(out, ar)
		}
	}
	return out, nil
}
