package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"smp/app"
	"smp/internal/wait"
)

// openApp opens an App with cfg (defaults for what a test leaves unset).
func openApp(t *testing.T, cfg app.Config) *App {
	t.Helper()
	d := app.DefaultConfig()
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	if cfg.InvitationTTL == 0 {
		cfg.InvitationTTL, cfg.RetryAfter, cfg.StuckAfter, cfg.BackpressureThreshold, cfg.Partitions = 5*time.Second, time.Second, d.StuckAfter, 100, 4
	}
	must(t, cfg.Validate())
	a := &App{Cfg: cfg, Log: slog.New(slog.DiscardHandler)}
	must(t, a.Open(context.Background()))
	t.Cleanup(func() { a.Close() })
	return a
}

func metricsText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func healthOf(t *testing.T, url string) (status string, checks map[string]map[string]string) {
	t.Helper()
	resp, err := http.Get(url + "/health")
	must(t, err)
	defer resp.Body.Close()
	var h struct {
		Status string                       `json:"status"`
		Checks map[string]map[string]string `json:"checks"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&h))
	return h.Status, h.Checks
}

// TestEngineLivenessSeenFromTheAPIProcess (runbook INC-001): the API runs
// in one process and the dispatch engine in another (MySQL and Redis
// shared). The API process exports dispatch_engine_up from the engine's
// heartbeat: 1 while it runs, 0 once it stops (so DispatchEngineDown can
// fire with the engine's process gone); its /health reports the engine
// down (degraded, not failed: it still takes orders); /admin/stats on the
// API shows the engine's state and the runbook check recommends Option A.
func TestEngineLivenessSeenFromTheAPIProcess(t *testing.T) {
	t.Parallel()
	dsn, raddr, prefix, _, _ := sharedBackends(t, 5)
	shared := app.Config{MySQLDSN: dsn, RedisAddr: raddr, RedisPrefix: prefix, MySQLMaxConns: 8, RedisPoolSize: 8,
		HeartbeatInterval: 100 * time.Millisecond, AdminToken: "test-admin-token"}
	apiCfg, engCfg := shared, shared
	apiCfg.Services, engCfg.Services = "api", "order-svc,dispatch-engine,outbox-relay"
	api := openApp(t, apiCfg)
	eng := openApp(t, engCfg)
	apiURL := api.HTTP.URL()

	wait.Until(t, 10*time.Second, "dispatch_engine_up 1 on the API process", func() bool {
		return strings.Contains(metricsText(t, apiURL), "\ndispatch_engine_up 1\n")
	})
	if status, checks := healthOf(t, apiURL); status != "ok" || checks["dispatch_engine"]["status"] != "ok" {
		t.Fatalf("API /health with the engine running: %s %v", status, checks)
	}
	req, _ := http.NewRequest("GET", apiURL+"/admin/stats", nil)
	req.Header.Set("Authorization", "Bearer test-admin-token")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	var st map[string]any
	must(t, json.NewDecoder(resp.Body).Decode(&st))
	resp.Body.Close()
	if st["engine_up"] != true || st["processes"] != float64(2) {
		t.Fatalf("API /admin/stats with the engine running elsewhere: %v", st)
	}

	// The engine dies (its module stops; the process keeps serving).
	must(t, eng.StopModule(context.Background(), app.ServiceDispatchEngine))
	wait.Until(t, 10*time.Second, "dispatch_engine_up 0 on the API process", func() bool {
		return strings.Contains(metricsText(t, apiURL), "\ndispatch_engine_up 0\n")
	})
	status, checks := healthOf(t, apiURL)
	if status != "degraded" || checks["dispatch_engine"]["status"] != "fail" || !strings.Contains(checks["dispatch_engine"]["error"], "no dispatch engine is running") {
		t.Fatalf("API /health with the engine down: %s %v", status, checks)
	}
	expectHolds(t, apiURL, "INC-001", "dispatch_engine_up = 0", "Option A", "runbook: https://runbooks.smp.vn/docs/runbook.md#inc-001")
	// The runbook's link is absolute, on the base given.
	out, _ := runbookCheck(apiURL, "INC-001", "--runbook-base-url", "https://wiki.example.vn/smp/")
	if !strings.Contains(out, "runbook: https://wiki.example.vn/smp/docs/runbook.md#inc-001") {
		t.Errorf("--runbook-base-url: %s", out)
	}
	if _, err := runbookCheck(apiURL, "INC-001", "--runbook-base-url", "docs"); exitCode(err) != 2 {
		t.Errorf("a relative --runbook-base-url: %v", err)
	}
}
