package status

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"smp"
)

// Limits of what the Alertmanager receiver accepts, beyond the sizes of
// the alert's own fields (smp.MaxAlertFingerprint, MaxAlertName,
// MaxAlertSeverity).
const (
	MaxAlertsPerPost = 200 // Alertmanager's max_alerts is unlimited by default; a group of SMP's rules holds far fewer
	maxLabels        = 32
	maxLabelName     = 64
	maxLabelValue    = 256
	// maxExpansion bounds what one {{ … }} of an annotation template may
	// expand to: the public page shows the summary.
	maxExpansion  = 64
	maxAnnotation = 1000
)

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// templateExpr is one {{ … }} of a Prometheus template.
var templateExpr = regexp.MustCompile(`\{\{.*?\}\}`)

// rule is an alert rule with its annotation templates compiled into
// patterns that match what Prometheus expands them to.
type rule struct {
	smp.AlertRule
	annotations map[string]*regexp.Regexp
}

func compileRules(rules []smp.AlertRule) map[string]rule {
	out := make(map[string]rule, len(rules))
	for _, r := range rules {
		cr := rule{AlertRule: r, annotations: map[string]*regexp.Regexp{}}
		for k, tmpl := range r.Annotations {
			var b strings.Builder
			b.WriteString(`^`)
			last := 0
			for _, loc := range templateExpr.FindAllStringIndex(tmpl, -1) {
				b.WriteString(regexp.QuoteMeta(tmpl[last:loc[0]]))
				fmt.Fprintf(&b, `[^\n]{0,%d}`, maxExpansion)
				last = loc[1]
			}
			b.WriteString(regexp.QuoteMeta(tmpl[last:]))
			b.WriteString(`$`)
			cr.annotations[k] = regexp.MustCompile(b.String())
		}
		out[r.Name] = cr
	}
	return out
}

// check returns the alert as it may be recorded, or EINVALID saying why
// not: its name must be one of the rules'; its labels may add to the
// rule's (instance, service …) but not contradict them; each annotation
// must be one the rule has, as its template expands.
func (r rule) check(a smp.Alert) (*smp.Alert, error) {
	bad := func(format string, args ...any) (*smp.Alert, error) {
		return nil, smp.Errorf(smp.EINVALID, "alert %s (%s): %s", a.Name, a.Fingerprint, fmt.Sprintf(format, args...))
	}
	if len(a.Labels) > maxLabels {
		return bad("%d labels, at most %d", len(a.Labels), maxLabels)
	}
	labels := make(map[string]string, len(a.Labels)+len(r.Labels))
	for k, v := range a.Labels {
		switch {
		case len(k) > maxLabelName || !labelName.MatchString(k):
			return bad("label name %.64q is not a Prometheus label name of at most %d characters", k, maxLabelName)
		case utf8.RuneCountInString(v) > maxLabelValue || !utf8.ValidString(v):
			return bad("label %s is longer than %d characters", k, maxLabelValue)
		}
		labels[k] = v
	}
	if labels["alertname"] != a.Name {
		return bad("label alertname %q differs from the alert's name", labels["alertname"])
	}
	for k, want := range r.Labels {
		if got, ok := labels[k]; ok && got != want {
			return bad("label %s is %.64q; the rule says %q", k, got, want)
		}
		labels[k] = want
	}
	if _, ok := r.Labels["status_state"]; !ok {
		if _, posted := a.Labels["status_state"]; posted {
			return bad("label status_state: the rule sets none (the state is %s)", r.State)
		}
	}
	if a.Severity != "" && a.Severity != r.Severity {
		return bad("severity %.32q; the rule says %q", a.Severity, r.Severity)
	}
	ann := make(map[string]string, len(a.Annotations))
	for k, v := range a.Annotations {
		re, ok := r.annotations[k]
		switch {
		case !ok:
			return bad("annotation %.64q is not one of the rule's", k)
		case utf8.RuneCountInString(v) > maxAnnotation:
			return bad("annotation %s is longer than %d characters", k, maxAnnotation)
		case !re.MatchString(v):
			return bad("annotation %s %.100q is not what the rule's template %q gives", k, v, r.Annotations[k])
		}
		ann[k] = v
	}
	out := a
	out.Labels, out.Annotations, out.Severity = labels, ann, r.Severity
	return &out, nil
}

// RecordAlerts records the alerts Alertmanager delivered, all or nothing:
// each is checked against the alert rules (Config.Rules) before anything
// is written; then, in one transaction, every alert is recorded and each
// change of an alert's status (new, firing, resolved) gets its audit
// entry, with p as the actor. It returns how many alerts were recorded.
// EINVALID for no alerts, more than MaxAlertsPerPost, or any alert the
// rules do not allow (an unknown name, a missing or oversize fingerprint,
// a status other than firing or resolved, labels that contradict the
// rule, an annotation its template cannot give).
func (s *Service) RecordAlerts(ctx context.Context, p smp.Principal, alerts []smp.Alert) (int, error) {
	if len(alerts) == 0 {
		return 0, smp.Errorf(smp.EINVALID, "no alerts in the payload")
	}
	if len(alerts) > MaxAlertsPerPost {
		return 0, smp.Errorf(smp.EINVALID, "%d alerts in one post, at most %d", len(alerts), MaxAlertsPerPost)
	}
	now := s.cfg.Now().UTC()
	checked := make([]*smp.Alert, 0, len(alerts))
	for i, a := range alerts {
		switch {
		case a.Fingerprint == "" || utf8.RuneCountInString(a.Fingerprint) > smp.MaxAlertFingerprint:
			return 0, smp.Errorf(smp.EINVALID, "alert %d: a fingerprint of 1 to %d characters is required", i, smp.MaxAlertFingerprint)
		case a.Name == "" || utf8.RuneCountInString(a.Name) > smp.MaxAlertName:
			return 0, smp.Errorf(smp.EINVALID, "alert %d: an alertname label of 1 to %d characters is required", i, smp.MaxAlertName)
		case utf8.RuneCountInString(a.Severity) > smp.MaxAlertSeverity:
			return 0, smp.Errorf(smp.EINVALID, "alert %d: severity is longer than %d characters", i, smp.MaxAlertSeverity)
		case a.Status != "firing" && a.Status != "resolved":
			return 0, smp.Errorf(smp.EINVALID, "alert %d: status must be firing or resolved", i)
		}
		r, ok := s.rules[a.Name]
		if !ok {
			return 0, smp.Errorf(smp.EINVALID, "alert %d: %.128q is not one of SMP's alert rules (deploy/prometheus/alerts.yml): %s", i, a.Name, strings.Join(s.ruleNames(), ", "))
		}
		c, err := r.check(a)
		if err != nil {
			return 0, err
		}
		c.UpdatedAt = now
		checked = append(checked, c)
	}
	err := s.store.InTx(ctx, func(tx smp.Tx) error {
		for _, a := range checked {
			before, err := tx.UpsertAlert(ctx, a)
			if err != nil {
				return err
			}
			if before == a.Status {
				continue // Alertmanager repeats a firing alert every repeat_interval
			}
			if before == "" {
				before = "none"
			}
			if err := tx.AddAudit(ctx, smp.AuditEntry{At: now, Actor: p.Name, Role: p.Role, Action: "alerts.receive", Target: "alert:" + a.Fingerprint,
				Before: fmt.Sprintf(`{"status":%q}`, before),
				After:  fmt.Sprintf(`{"status":%q,"alert":%q,"component":%q}`, a.Status, a.Name, a.Labels["component"]),
				Reason: fmt.Sprintf("Alertmanager: %s %s", a.Name, a.Status)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	s.Invalidate()
	return len(checked), nil
}

func (s *Service) ruleNames() []string {
	names := make([]string, 0, len(s.rules))
	for n := range s.rules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
