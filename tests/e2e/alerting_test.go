package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"smp/internal/envtest"
	"smp/internal/wait"
)

// alertingBinaries returns Prometheus and Alertmanager (.ci/run installs
// the Debian packages and sets the variables).
func alertingBinaries(t *testing.T) (prom, am string) {
	t.Helper()
	prom, why := envtest.Binary(envtest.EnvPrometheus, "prometheus")
	if prom == "" {
		envtest.Skip(t, "alerting (Prometheus)", why+" (Debian package prometheus)")
	}
	am, why = envtest.Binary(envtest.EnvAlertmanager, "prometheus-alertmanager", "alertmanager")
	if am == "" {
		envtest.Skip(t, "alerting (Alertmanager)", why+" (Debian package prometheus-alertmanager)")
	}
	return prom, am
}

func startProcess(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, args...)
	logf, err := os.Create(filepath.Join(t.TempDir(), filepath.Base(name)+".log"))
	must(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	must(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log:\n%s", name, b[max(0, len(b)-3000):])
		}
	})
}

// TestAlertReachesSMP: a real Prometheus scrapes a running SMP with the
// rules of deploy/prometheus (their "for" shortened to 2 s); stopping the
// dispatch engine makes DispatchEngineDown fire, Alertmanager delivers it
// to SMP's webhook, and GET /admin/alerts shows it with its runbook link.
func TestAlertReachesSMP(t *testing.T) {
	prom, am := alertingBinaries(t)
	t.Parallel()
	a := startApp(t, nil)
	dir := t.TempDir()

	rules, err := os.ReadFile(filepath.Join("..", "..", "deploy", "prometheus", "alerts.yml"))
	must(t, err)
	fast := regexp.MustCompile(`for: \d+m`).ReplaceAll(rules, []byte("for: 2s"))
	must(t, os.WriteFile(filepath.Join(dir, "alerts.yml"), fast, 0o644))

	amAddr, promAddr := freeAddr(t), freeAddr(t)
	must(t, os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(fmt.Sprintf(`route:
  receiver: smp
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: smp
    webhook_configs:
      - url: %s/integrations/alertmanager/webhook
        send_resolved: true
        http_config:
          authorization:
            credentials: %s
`, a.url, a.am)), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['%s']
scrape_configs:
  - job_name: smp
    static_configs:
      - targets: ['%s']
`, amAddr, strings.TrimPrefix(a.url, "http://"))), 0o644))

	startProcess(t, am, "--config.file="+filepath.Join(dir, "alertmanager.yml"), "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	startProcess(t, prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--rules.alert.resend-delay=1s")

	// Prometheus scrapes SMP and finds it healthy: no alert.
	wait.Until(t, 30*time.Second, "Prometheus scraping SMP", func() bool {
		code, body := httpGetBody("http://" + promAddr + "/api/v1/query?query=dispatch_engine_up")
		return code == 200 && strings.Contains(body, `"value":[`) && strings.Contains(body, `"1"]`)
	})
	if r := a.do("GET", "/admin/alerts?status=firing", a.admin, nil); r.Status != 200 || strings.Contains(r.Raw, "DispatchEngineDown") {
		t.Fatalf("alerts while healthy: %d %s", r.Status, r.Raw)
	}

	stopped := time.Now()
	a.Engine.Stop(context.Background())
	var got response
	wait.Until(t, 60*time.Second, "DispatchEngineDown delivered to SMP", func() bool {
		got = a.do("GET", "/admin/alerts?status=firing", a.admin, nil)
		return strings.Contains(got.Raw, `"name": "DispatchEngineDown"`)
	})
	for _, want := range []string{`"severity": "critical"`, `"runbook_url": "https://runbooks.smp.vn/docs/runbook.md#inc-001"`, `"incident": "INC-001"`} {
		if !strings.Contains(got.Raw, want) {
			t.Errorf("recorded alert lacks %s:\n%s", want, got.Raw)
		}
	}
	// The webhook refuses strangers, admin tokens and nonsense.
	if r := a.do("POST", "/integrations/alertmanager/webhook", "", `{"alerts":[]}`); r.Status != 401 {
		t.Fatalf("webhook without a token: %d", r.Status)
	}
	if r := a.do("POST", "/integrations/alertmanager/webhook", a.admin, `{"alerts":[]}`); r.Status != 403 {
		t.Fatalf("webhook with the admin token: %d", r.Status)
	}
	for _, bad := range []string{`{"alerts":[]}`, `{"alerts":[{"status":"firing","labels":{},"fingerprint":"x"}]}`, `{"alerts":[{"status":"odd","labels":{"alertname":"A"},"fingerprint":"x"}]}`,
		`{"alerts":[{"status":"firing","labels":{"alertname":"DispatchEngineDown","component":"payments"},"fingerprint":"x"}]}`} {
		if r := a.do("POST", "/integrations/alertmanager/webhook", a.am, bad); r.Status != 400 {
			t.Fatalf("webhook %s: %d", bad, r.Status)
		}
	}
	t.Logf("engine stopped -> alert recorded by SMP in %s (for: 2s, scrape and evaluation every 1 s)", time.Since(stopped).Round(100*time.Millisecond))
}

func httpGetBody(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}
