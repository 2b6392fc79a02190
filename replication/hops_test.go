package replication

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/internal/wait"
)

func TestMirrors(t *testing.T) {
	t.Parallel()
	for topic, want := range map[string]bool{
		"heartbeats": true, "masterdata.countries": true,
		"asia.heartbeats": true, "china.asia.heartbeats": true,
		"us.heartbeats":            false, // us's own, back to us
		"china.us.heartbeats":      false, // us named further up the chain
		"asia.masterdata.tax":      false, // remote master data: one hop only
		"orders.events":            false,
		"Bad.heartbeats":           false,
		"asia.heartbeats.dlq":      false,
		"china..asia.heartbeats":   false,
		".heartbeats":              false,
		"asia.heartbeats.extra":    false,
		"masterdata.countries.x":   false,
		"china.masterdata.rates":   false,
		"asia.china.heartbeats":    true,
		"asia.china.eu.heartbeats": true,
	} {
		if got := Mirrors(topic, "us"); got != want {
			t.Errorf("Mirrors(%q, us) = %v, want %v", topic, got, want)
		}
	}
	if got := HeartbeatChain("china.asia.heartbeats"); !slices.Equal(got, []string{"china", "asia"}) {
		t.Errorf("HeartbeatChain = %v", got)
	}
	for h, want := range map[string]bool{"masterdata.countries/2/17": true, "masterdata.countries/x/1": false, "/1/2": false, "a/1": false, "a/-1/2": false} {
		topic, p, o, ok := sourceOffset(h)
		if ok != want || (ok && (topic != "masterdata.countries" || p != 2 || o != 17)) {
			t.Errorf("sourceOffset(%q) = %q %d %d %v", h, topic, p, o, ok)
		}
	}
}

// gaugeValue gathers c and returns name{region=region}; ok false when absent.
func gaugeValue(t *testing.T, c prometheus.Collector, name, region string) (float64, bool) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "region" && l.GetValue() == region {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// TestHeartbeatsOnward: three regions in a chain on embedded logs, asia →
// china → us, and china → asia back. china re-publishes asia's heartbeats
// as asia.heartbeats; the path china → us mirrors them onward as
// china.asia.heartbeats, so us measures the lag of asia-to-us (via china)
// as well as china-to-us; the path china → asia never carries asia's own
// heartbeats back (no loops).
func TestHeartbeatsOnward(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	asiaBus, chinaBus, usBus := openBus(t), openBus(t), openBus(t)
	asiaDB, chinaDB, usDB := openStore(t), openStore(t), openStore(t)
	g, _ := NewGuard(nil, nil)
	start := func(src, dst string, sb, tb smp.EventBus, st TargetStore) *Agent {
		a, err := NewAgent(AgentConfig{Source: src, Target: dst, SourceBus: sb, TargetBus: tb, TargetStore: st, Guard: g,
			HeartbeatEvery: 50 * time.Millisecond, Agents: 1, LeaseTTL: 2 * time.Second, PollEvery: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Stop(ctx) })
		return a
	}
	start("asia", "china", asiaBus, chinaBus, chinaDB)
	chinaToUS := start("china", "us", chinaBus, usBus, usDB)
	chinaToAsia := start("china", "asia", chinaBus, asiaBus, asiaDB)

	var hop smp.ReplicationHop
	wait.Until(t, 30*time.Second, "asia's heartbeats in us via china", func() bool {
		hops, err := usDB.FindReplicationHops(ctx)
		if err != nil || len(hops) != 1 {
			return false
		}
		hop = hops[0]
		return true
	})
	if hop.Path != "asia-to-us" || hop.Source != "asia" || hop.Target != "us" || hop.Via != "china" {
		t.Fatalf("hop %+v", hop)
	}
	if !slices.Contains(chinaToUS.Units(), "asia.heartbeats") {
		t.Errorf("china → us runs %v, not asia.heartbeats", chinaToUS.Units())
	}
	if ms, err := usBus.Read(ctx, "china.asia.heartbeats", 1); err != nil || len(ms) != 1 {
		t.Errorf("china.asia.heartbeats in us: %d (%v)", len(ms), err)
	}
	// The heartbeats keep coming: the hop's heartbeat moves on.
	wait.Until(t, 30*time.Second, "a newer heartbeat of asia in us", func() bool {
		hops, err := usDB.FindReplicationHops(ctx)
		return err == nil && len(hops) == 1 && hops[0].HeartbeatAt.After(hop.HeartbeatAt)
	})
	// No newer heartbeat between the read below and the collector's own.
	chinaToUS.Stop(ctx)
	hops, _ := usDB.FindReplicationHops(ctx)
	now := hops[0].HeartbeatAt.Add(7 * time.Second)
	lags := NewLagCollector(func() time.Time { return now }, usDB)
	if v, ok := gaugeValue(t, lags, "region_replication_lag_seconds", "asia-to-us"); !ok || v != 7 {
		t.Errorf("region_replication_lag_seconds{region=asia-to-us} = %v (%v), want 7", v, ok)
	}
	if _, ok := gaugeValue(t, lags, "region_replication_lag_seconds", "china-to-us"); !ok {
		t.Errorf("region_replication_lag_seconds{region=china-to-us} missing")
	}

	// No loop: china has asia.heartbeats (it went on to us), the path
	// china → asia does not take it, and asia never received it back.
	if got := chinaToAsia.discover(ctx, SourceTopics()); slices.Contains(got, "asia.heartbeats") {
		t.Errorf("china → asia would mirror %v", got)
	}
	if slices.Contains(chinaToAsia.Units(), "asia.heartbeats") {
		t.Errorf("china → asia runs %v", chinaToAsia.Units())
	}
	if ms, err := asiaBus.Read(ctx, "china.asia.heartbeats", 1); err != nil || len(ms) != 0 {
		t.Errorf("a loop: asia received its own heartbeats back: %d (%v)", len(ms), err)
	}
	if hops, err := asiaDB.FindReplicationHops(ctx); err != nil || len(hops) != 0 {
		t.Errorf("hops in asia: %+v (%v)", hops, err)
	}
}

// TestHopLags: a pair reached two ways reports the freshest; a pair with
// a path of its own reports the path's lag, not its hops'.
func TestHopLags(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openStore(t)
	t0 := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for _, h := range []smp.ReplicationHop{
		{Path: "asia-to-us", Source: "asia", Target: "us", Via: "china", HeartbeatAt: t0.Add(-40 * time.Second)},
		{Path: "asia-to-us", Source: "asia", Target: "us", Via: "global", HeartbeatAt: t0.Add(-5 * time.Second)},
		{Path: "china-to-us", Source: "china", Target: "us", Via: "global", HeartbeatAt: t0.Add(-1 * time.Second)},
	} {
		if err := db.BeatReplicationHop(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.DeclareReplicationPath(ctx, smp.ReplicationPath{Path: "china-to-us", Source: "china", Target: "us", HeartbeatAt: t0.Add(-100 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	lags := NewLagCollector(func() time.Time { return t0 }, db)
	for region, want := range map[string]float64{"asia-to-us": 5, "china-to-us": 100} {
		if v, ok := gaugeValue(t, lags, "region_replication_lag_seconds", region); !ok || v != want {
			t.Errorf("region_replication_lag_seconds{region=%s} = %v (%v), want %v", region, v, ok, want)
		}
	}
}
