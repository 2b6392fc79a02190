// Package deploy holds SMP's deployment files; its tests check them.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// promtool returns the promtool binary (.ci/run sets SMP_TEST_PROMTOOL).
func promtool(t *testing.T) string {
	t.Helper()
	p := os.Getenv("SMP_TEST_PROMTOOL")
	if p == "" {
		t.Skip("SMP_TEST_PROMTOOL is not set: skipping the alert rule tests (.ci/run installs the Debian package prometheus and sets it)")
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
		for _, want := range []string{"severity: ", "incident: INC-00", "summary: ", "runbook_url: docs/runbook.md#inc-00"} {
			if !strings.Contains(b, want) {
				t.Errorf("alert %s lacks %q", name, want)
			}
		}
		if !strings.Contains(string(tests), "alertname: "+name+"\n") {
			t.Errorf("alert %s has no promtool test", name)
		}
	}
}
