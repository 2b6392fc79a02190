package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"smp/internal/envtest"
)

// promtool returns the promtool binary (.ci/run sets SMP_TEST_PROMTOOL).
func promtool(t *testing.T) string {
	t.Helper()
	p, why := envtest.Binary(envtest.EnvPromtool, "promtool")
	if p == "" {
		envtest.Skip(t, "alert rule (promtool)", why+" (Debian package prometheus)")
	}
	return p
}

// TestAlertRules runs promtool on deploy/prometheus: the rules are valid
// and every alert fires when it should and stays silent when it should not.
func TestAlertRules(t *testing.T) {
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestEveryAlertIsTested: each alert in alerts.yml has labels severity
// and incident, summary and runbook_url annotations, and a unit test.
func TestEveryAlertIsTested(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join("prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("prometheus", "alerts_test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile(`(?m)^      - alert: `).Split(string(rules), -1)[1:]
	if len(blocks) < 9 {
		t.Fatalf("%d alerts, want one per runbook trigger of INC-001 to INC-007 (9)", len(blocks))
	}
	for _, b := range blocks {
		name := strings.Fields(b)[0]
		for _, want := range []string{"severity: ", "incident: INC-0", "summary: ", "runbook_url: \"{{ or $externalLabels.runbook_base_url \\\"https://runbooks.smp.vn\\\" }}/docs/runbook.md#inc-0"} {
			if !strings.Contains(b, want) {
				t.Errorf("alert %s lacks %q", name, want)
			}
		}
		if !strings.Contains(string(tests), "alertname: "+name+"\n") {
			t.Errorf("alert %s has no promtool test", name)
		}
	}
}

// TestAlertRulesBuiltIn: the rules built into the binary are those of
// alerts.yml, every one names its incident, and each that degrades a
// status-page component names a known one.
func TestAlertRulesBuiltIn(t *testing.T) {
	rules, err := AlertRules()
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) < 9 {
		t.Fatalf("%d rules", len(rules))
	}
	byName := map[string]bool{}
	for _, r := range rules {
		byName[r.Name] = true
		if r.Annotations["summary"] == "" || r.Annotations["runbook_url"] == "" {
			t.Errorf("%s: no summary or runbook_url", r.Name)
		}
	}
	for _, want := range []string{"DispatchEngineDown", "IntegrationCircuitOpen", "RedisMemoryHigh"} {
		if !byName[want] {
			t.Errorf("rule %s missing", want)
		}
	}
	for _, bad := range []string{
		"groups: [{rules: [{alert: A, labels: {incident: INC-001}}]}]",
		"groups: [{rules: [{alert: A, labels: {incident: INC-001, severity: x, component: nope}}]}]",
		"groups: [{rules: [{alert: A, labels: {incident: INC-001, severity: x, status_state: on_fire}}]}]",
		"groups: [{rules: [{alert: A, labels: {incident: I, severity: x}}, {alert: A, labels: {incident: I, severity: x}}]}]",
	} {
		if _, err := ParseAlertRules([]byte(bad)); err == nil {
			t.Errorf("ParseAlertRules accepted %s", bad)
		}
	}
}

// TestAlertmanagerConfig: the Alertmanager configuration delivers to SMP's
// receiver with a bearer token of its own read from a file (never an
// admin token inline), and amtool accepts it (when installed: .ci/run
// installs prometheus-alertmanager, which has amtool).
func TestAlertmanagerConfig(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("alertmanager", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/integrations/alertmanager/webhook", "send_resolved: true", "type: Bearer", "credentials_file: ", "SMP_ALERTMANAGER_TOKEN"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("alertmanager.yml lacks %q", want)
		}
	}
	if strings.Contains(string(b), "credentials: ") || strings.Contains(string(b), "SMP_ADMIN_TOKEN") {
		t.Error("alertmanager.yml must read Alertmanager's own token from a file")
	}
	amtool, err := exec.LookPath("amtool")
	if am := os.Getenv("SMP_TEST_ALERTMANAGER"); am != "" {
		amtool, err = filepath.Join(filepath.Dir(am), "amtool"), nil
	}
	if err != nil {
		envtest.Skip(t, "amtool", "amtool is not on PATH (Debian package prometheus-alertmanager)")
	}
	if out, err := exec.Command(amtool, "check-config", filepath.Join("alertmanager", "alertmanager.yml")).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}
