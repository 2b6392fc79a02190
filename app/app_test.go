package app

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"smp"
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
	want := []string{ModuleStore, ModuleEventBus, ModuleFlags, ModuleHub, ModuleServer, ServiceOrders, ServiceDispatchEngine, ServiceOutboxRelay, ServiceIntegration, ModuleBeat}
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
