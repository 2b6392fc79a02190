package dispatch_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp/dispatch"
	"smp/sqlstore"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func engineUp(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	n, err := testutil.GatherAndCount(reg, "dispatch_engine_up")
	if err != nil || n == 0 {
		return "absent"
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "dispatch_engine_up" {
			return strings.TrimSpace(mf.GetMetric()[0].GetGauge().String())
		}
	}
	return "absent"
}

// TestHeartbeatEngineLivenessFromAnyProcess: a process without the engine
// (the API) exports dispatch_engine_up from the engine process's
// heartbeat in the shared database: 1 while it beats, 0 once its last beat
// is three intervals old (the process died without a word: no Stop), and
// 0 at once when the engine's process stops its engine or shuts down.
func TestHeartbeatEngineLivenessFromAnyProcess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	must(t, err)
	t.Cleanup(func() { store.Close() })
	clock := &fakeClock{t: time.Date(2026, 5, 28, 3, 0, 0, 0, time.UTC)}

	var running atomic.Bool
	running.Store(true)
	engine, err := dispatch.NewHeartbeat(dispatch.HeartbeatConfig{Store: store, ID: "engine-1", Services: "dispatch-engine",
		EngineUp: running.Load, Connections: func() int { return 0 }, Interval: time.Hour, Now: clock.Now})
	must(t, err)
	apiReg := prometheus.NewRegistry()
	api, err := dispatch.NewHeartbeat(dispatch.HeartbeatConfig{Store: store, ID: "api-1", Services: "api",
		Connections: func() int { return 7 }, Interval: time.Hour, Now: clock.Now, Registerer: apiReg})
	must(t, err)
	// A one-hour interval: the beats the test needs are its own (Beat), the
	// TTL is three hours of the fake clock.
	must(t, engine.Start(ctx))
	must(t, api.Start(ctx))
	t.Cleanup(func() { api.Stop(ctx); engine.Stop(ctx) })

	if got := engineUp(t, apiReg); got != "value:1" {
		t.Fatalf("dispatch_engine_up in the API process = %s, want 1", got)
	}
	if err := api.CheckEngine(ctx); err != nil {
		t.Fatalf("API's engine check with a live engine: %v", err)
	}
	var st dispatch.Stats
	must(t, api.Aggregate(ctx, &st))
	if !st.EngineUp || st.EnginesUp != 1 || st.Processes != 2 || st.WebSocketConnections != 7 {
		t.Fatalf("aggregated stats %+v", st)
	}

	// The engine's process dies: no more beats, nothing removed.
	clock.Advance(3*time.Hour - time.Second)
	if got := engineUp(t, apiReg); got != "value:1" {
		t.Fatalf("just before the TTL: %s, want 1", got)
	}
	clock.Advance(2 * time.Second)
	if got := engineUp(t, apiReg); got != "value:0" {
		t.Fatalf("after the TTL: %s, want 0", got)
	}
	if err := api.CheckEngine(ctx); err == nil || !strings.Contains(err.Error(), "no dispatch engine is running") {
		t.Fatalf("API's engine check with a dead engine: %v", err)
	}

	// It comes back, then its engine stops: its next beat says so.
	must(t, engine.Beat(ctx))
	if got := engineUp(t, apiReg); got != "value:1" {
		t.Fatalf("after the engine beat again: %s", got)
	}
	running.Store(false)
	must(t, engine.Beat(ctx))
	if got := engineUp(t, apiReg); got != "value:0" {
		t.Fatalf("engine stopped: %s, want 0", got)
	}
	running.Store(true)
	must(t, engine.Beat(ctx))
	must(t, engine.Stop(ctx)) // a clean shutdown removes the heartbeat
	if got := engineUp(t, apiReg); got != "value:0" {
		t.Fatalf("engine process shut down: %s, want 0", got)
	}
}
