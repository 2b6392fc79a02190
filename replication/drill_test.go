package replication

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
	"smp/runbook"
	"smp/sqlbus"
)

// cutBus is a region's bus as seen from another region: Cut isolates it
// (publishes fail, nothing is delivered) until it is healed.
type cutBus struct {
	*sqlbus.Bus
	cut atomic.Bool
}

var errCut = errors.New("region unreachable")

func (b *cutBus) Publish(ctx context.Context, msgs ...smp.Message) error {
	if b.cut.Load() {
		return errCut
	}
	return b.Bus.Publish(ctx, msgs...)
}

func (b *cutBus) Subscribe(ctx context.Context, group string, topics []string, h smp.Handler) error {
	return b.Bus.Subscribe(ctx, group, topics, func(ctx context.Context, m smp.Message) error {
		if b.cut.Load() {
			return errCut
		}
		return h(ctx, m)
	})
}

// TestRegionDrill is the runbook's monthly DR drill on one path: global
// is cut off from china; with no master data changing, the lag rises on
// heartbeats alone past the hot-data threshold (60 s, on a clock moved
// 61 s on) and INC-012 holds; changes made in global meanwhile wait;
// healed, the heartbeats bring the lag down, the changes converge and the
// spot check of 10 records passes.
func TestRegionDrill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	globalDB, chinaDB := openStore(t), openStore(t)
	raw, chinaBus := openBus(t), openBus(t)
	globalBus := &cutBus{Bus: raw}
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	g, _ := NewGuard(nil, nil)
	cfg := agentCfg(globalBus, chinaBus, chinaDB, g, nil)
	cfg.Agents, cfg.Now = 1, now
	a, err := NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(ctx) })
	lag := func() float64 { return gaugeOf(t, NewLagCollector(now, chinaDB), "region_replication_lag_seconds") }
	put := func(i int, rate string) {
		t.Helper()
		v := published(t, globalDB, smp.MasterCurrencyRates, map[string]string{"from_currency": "USD", "to_currency": "VND",
			"rate_date": fmt.Sprintf("2026-11-%02d", i), "rate": rate})
		if err := raw.Publish(ctx, smp.Message{Topic: "masterdata.currency_rates", Key: fmt.Sprintf("%d", i), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 12; i++ {
		put(i, "25400")
	}
	converged := func() {
		t.Helper()
		wait.Until(t, 60*time.Second, "china consistent with global", func() bool {
			_, ok, err := Verify(ctx, 10, globalDB, map[string]MasterReader{"china": chinaDB})
			return err == nil && ok
		})
	}
	converged()
	// Heartbeats flow: one written from now on arrives (a bound on the
	// lag, such as "under 2 s", would measure the machine's load).
	beatSince := func(mark time.Time) func() bool {
		return func() bool {
			p, err := chinaDB.FindReplicationPath(ctx, "global-to-china")
			return err == nil && p.HeartbeatAt.After(mark)
		}
	}
	wait.Until(t, 30*time.Second, "a heartbeat in china", beatSince(now()))

	globalBus.cut.Store(true)
	for i := 1; i <= 6; i++ {
		put(i, "25500") // changes in global while cut
	}
	skew.Store(int64(61 * time.Second))
	if l := lag(); l <= 60 {
		t.Fatalf("lag %v after 61 s cut off, want above 60", l)
	}
	snap := &runbook.Snapshot{Metrics: map[string][]runbook.Sample{"region_replication_lag_seconds": {{Labels: map[string]string{"region": "global-to-china"}, Value: lag()}}}}
	if v, err := runbook.Check(snap, "INC-012"); err != nil || !v.Holds {
		t.Errorf("INC-012 while cut: %+v %v", v, err)
	}
	if _, ok, _ := Verify(ctx, 100, globalDB, map[string]MasterReader{"china": chinaDB}); ok {
		t.Error("china consistent while cut off: the changes crossed anyway")
	}

	globalBus.cut.Store(false)
	wait.Until(t, 60*time.Second, "a heartbeat written since the path healed", beatSince(now()))
	if l := lag(); l >= 60 {
		t.Errorf("lag %v s after the path healed, want under 60", l)
	}
	snap.Metrics["region_replication_lag_seconds"][0].Value = lag()
	if v, err := runbook.Check(snap, "INC-012"); err != nil || v.Holds {
		t.Errorf("INC-012 after the path healed: %+v %v", v, err)
	}
	converged()
	checks, ok, err := Verify(ctx, 10, globalDB, map[string]MasterReader{"china": chinaDB})
	if err != nil || !ok || len(checks) != 10 {
		t.Errorf("verify --sample 10: %d checks, ok %v, %v", len(checks), ok, err)
	}
}

// gaugeOf returns the value of name's only series as c exports it.
func gaugeOf(t *testing.T, c *LagCollector, name string) float64 {
	t.Helper()
	return gauge(t, c, name, "region", "global-to-china")
}
