package app

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"slices"
	"smp"
	"strings"
	"testing"
	"time"
)

func testConfig(t *testing.T) Config {
	c := DefaultConfig()
	c.Addr, c.DataDir, c.Partitions = "127.0.0.1:0", t.TempDir(), 4
	return c
}

// TestOpenClose opens the whole platform, checks that /health covers the
// modules, and closes it twice; goleak (TestMain) proves every goroutine
// was joined.
func TestOpenClose(t *testing.T) {
	t.Parallel()
	a := &App{Cfg: testConfig(t)}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{ModuleStore, ModuleEventBus, ModuleFlags, ModuleHub, ModuleServer, ServiceOrders, ServiceDispatchEngine, ServiceOutboxRelay, ServiceIntegration, ServiceFraud, ModuleBeat, ModuleRetention, ModuleReconCron}
	if got := a.Modules(); !slices.Equal(got, want) {
		t.Errorf("running modules %v, want %v", got, want)
	}
	resp, err := http.Get(a.HTTP.URL() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Status string `json:"status"`
		Checks map[string]struct {
			Status string `json:"status"`
		} `json:"checks"`
	}
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 200 || h.Checks["modules"].Status != "ok" {
		t.Errorf("/health: %d %+v", resp.StatusCode, h)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestOpenFailsFastAndLeavesNothing: a taken port fails Open, and what
// opened before the server is closed again.
func TestOpenFailsFastAndLeavesNothing(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t)
	cfg.Addr = ln.Addr().String()
	a := &App{Cfg: cfg}
	if err := a.Open(context.Background()); err == nil {
		a.Close()
		t.Fatal("Open on a taken port must fail")
	}
	if got := a.Modules(); len(got) != 0 {
		t.Fatalf("modules still running after a failed Open: %v", got)
	}
}

// TestFailingModuleStopsTheApp: a module's failure closes Failed (smp
// serve then stops) and turns /health's modules check critical.
func TestFailingModuleStopsTheApp(t *testing.T) {
	t.Parallel()
	a := &App{Cfg: testConfig(t)}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Fail(ModuleServer, net.ErrClosed)
	select {
	case <-a.Failed():
	case <-time.After(10 * time.Second):
		t.Fatal("Failed not closed")
	}
	if err := a.checkModules(context.Background()); err == nil || a.Err() == nil {
		t.Fatalf("after a failure: check %v, Err %v", err, a.Err())
	}
}

// TestStopModule: stopping the dispatch-engine module stops the engine and
// its consumer group together; the rest keeps running; StartModule runs it
// again.
func TestStopModule(t *testing.T) {
	t.Parallel()
	a := &App{Cfg: testConfig(t)}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.StopModule(context.Background(), ServiceDispatchEngine); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(a.Modules(), ServiceDispatchEngine) || !slices.Contains(a.Modules(), ModuleServer) {
		t.Fatalf("modules after stopping the engine: %v", a.Modules())
	}
	if a.Engine.Healthy() == nil {
		t.Fatal("engine still healthy after its module stopped")
	}
	if err := a.StopModule(context.Background(), ServiceDispatchEngine); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("stopping it again: %v, want ENOTFOUND", err)
	}
	// Restarted, as a pod would be: the engine runs again.
	if err := a.StartModule(context.Background(), ServiceDispatchEngine); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(a.Modules(), ServiceDispatchEngine) || a.Engine.Healthy() != nil {
		t.Fatalf("modules after restarting the engine: %v (healthy: %v)", a.Modules(), a.Engine.Healthy())
	}
	if err := a.StartModule(context.Background(), ServiceDispatchEngine); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("starting the running engine: %v, want ENOTFOUND", err)
	}
}

// noKeepAlive leaves no idle connection (and its goroutines) behind for
// goleak once the server is gone.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

func probe(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := noKeepAlive.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLivenessAndReadiness: /livez (restart me) stays 200 while the
// database is unreachable, which /readyz (send me traffic) and /health
// report with 503; hung or stopped engine workers fail /livez, since a
// restart cures them.
func TestLivenessAndReadiness(t *testing.T) {
	t.Parallel()
	a := &App{Cfg: testConfig(t)}
	if err := a.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	u := a.HTTP.URL()
	for _, p := range []string{"/livez", "/readyz", "/health"} {
		if code, body := probe(t, u+p); code != 200 {
			t.Fatalf("%s of a healthy platform: %d %s", p, code, body)
		}
	}
	a.Store.Close() // the database goes away
	if code, body := probe(t, u+"/livez"); code != 200 {
		t.Fatalf("/livez without the database: %d %s, want 200 (a restart would not help)", code, body)
	}
	if code, body := probe(t, u+"/readyz"); code != 503 || !strings.Contains(body, `"database"`) {
		t.Fatalf("/readyz without the database: %d %s, want 503 naming the database", code, body)
	}
	if code, _ := probe(t, u+"/health"); code != 503 {
		t.Fatalf("/health without the database: %d, want 503", code)
	}
	a.Engine.Stop(context.Background())
	if code, body := probe(t, u+"/livez"); code != 503 || !strings.Contains(body, "dispatch_engine") {
		t.Fatalf("/livez with the engine stopped: %d %s, want 503", code, body)
	}
}
