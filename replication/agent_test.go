package replication

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp"
	"smp/internal/wait"
	"smp/sqlbus"
	"smp/sqlstore"
)

func openBus(t *testing.T) *sqlbus.Bus {
	t.Helper()
	b, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(t.TempDir(), "events.db"), Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestAgentEmbedded: two regions in one process, each with its own
// database and embedded log. A change in global reaches china as
// global.masterdata.<table> and is applied there; heartbeats are mirrored
// while nothing changes; a PII record put on a master-data topic is
// refused, counted and never written, and what follows it on its
// partition still arrives; a restarted agent resumes where it stopped.
func TestAgentEmbedded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	globalDB, chinaDB := openStore(t), openStore(t)
	globalBus, chinaBus := openBus(t), openBus(t)
	g, err := NewGuard(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := func() *Agent {
		a, err := NewAgent(AgentConfig{Source: "global", Target: "china", SourceBus: globalBus, TargetBus: chinaBus, TargetStore: chinaDB,
			Guard: g, HeartbeatEvery: 100 * time.Millisecond, Agents: 1, LeaseTTL: 2 * time.Second, PollEvery: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Stop(ctx) })
		return a
	}
	publish := func(table string, value []byte, key string) {
		t.Helper()
		if err := globalBus.Publish(ctx, smp.Message{Topic: "masterdata." + table, Key: key, Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	arrived := func(table, key string, version int64) {
		t.Helper()
		wait.Until(t, 20*time.Second, table+" "+key+" in china", func() bool {
			r, err := chinaDB.FindMasterRecord(ctx, table, key)
			return err == nil && r.Version == version
		})
	}

	a := start()
	rate := map[string]string{"from_currency": "USD", "to_currency": "VND", "rate_date": "2026-12-01", "rate": "25410.5"}
	publish(smp.MasterCurrencyRates, published(t, globalDB, smp.MasterCurrencyRates, rate), "USD/VND/2026-12-01")
	arrived(smp.MasterCurrencyRates, "USD/VND/2026-12-01", 1)
	wait.Until(t, 20*time.Second, "global.heartbeats in china", func() bool {
		ms, err := chinaBus.Read(ctx, "global.heartbeats", 2)
		return err == nil && len(ms) >= 2
	})

	// A PII record on masterdata.countries, then a clean one of the same
	// key (same partition, so it is handled after).
	pii := []byte(`{"event_id":"x","event_type":"masterdata.countries.changed","schema_version":1,"aggregate_id":"VN","data":` +
		`{"table":"countries","key":"VN","fields":{"code":"VN","name":"Việt Nam","customer_phone":"+84901234567"},"version":5,"region":"global","schema_version":1}}`)
	publish(smp.MasterCountries, pii, "VN")
	publish(smp.MasterCountries, published(t, globalDB, smp.MasterCountries, map[string]string{"code": "VN", "name": "Việt Nam"}), "VN")
	arrived(smp.MasterCountries, "VN", 1)
	if got := testutil.ToFloat64(g.refused.WithLabelValues(ReasonUnclassified)); got != 1 {
		t.Errorf("refused unclassified: %v, want 1", got)
	}
	if ms, err := chinaBus.Read(ctx, "global.masterdata.countries", 10); err != nil || len(ms) != 1 {
		t.Errorf("global.masterdata.countries in china: %d messages (%v), want the clean one only", len(ms), err)
	}

	// Stopped, the agent misses a change; started again, it resumes from
	// the checkpoints kept in china, even with global's group offsets lost
	// (nothing already carried is carried again). The checkpoint is raised
	// just after the record is produced: what china applied may be a step
	// ahead of it, so the test stops the agent once it is there (stopped
	// in between, the record would be carried again: at least once).
	checkpointed(t, globalBus, chinaDB, "global-to-china", "masterdata.countries")
	if err := a.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for p := int32(0); p < 2; p++ {
		if err := globalBus.ResetOffset(ctx, a.MirrorGroup("masterdata.countries"), "masterdata.countries", p, 0); err != nil {
			t.Fatal(err)
		}
	}
	rate["rate"] = "25411"
	publish(smp.MasterCurrencyRates, published(t, globalDB, smp.MasterCurrencyRates, rate), "USD/VND/2026-12-01")
	restarted := time.Now()
	start()
	arrived(smp.MasterCurrencyRates, "USD/VND/2026-12-01", 2)
	// A heartbeat written after the restart arrived (not "one younger than
	// a second": on a loaded machine the way takes longer than that).
	wait.Until(t, 20*time.Second, "heartbeats after the restart", func() bool {
		p, err := chinaDB.FindReplicationPath(ctx, "global-to-china")
		return err == nil && p.HeartbeatAt.After(restarted)
	})
	if ms, err := chinaBus.Read(ctx, "global.masterdata.countries", 10); err != nil || len(ms) != 1 {
		t.Errorf("global.masterdata.countries after the restart: %d messages (%v), want 1: not started at the checkpoints", len(ms), err)
	}
	// Nothing travels back: china's own topics are not global's remote ones.
	if ms, err := globalBus.Read(ctx, "china.masterdata.currency_rates", 10); err != nil || len(ms) != 0 {
		t.Errorf("a loop: %d messages back in global (%v)", len(ms), err)
	}
}

// checkpointed waits until path's checkpoints in db cover every record of
// the source's topic.
func checkpointed(t *testing.T, source smp.BusAdmin, db *sqlstore.DB, path, topic string) {
	t.Helper()
	ms, err := source.Read(context.Background(), topic, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	for _, m := range ms {
		want[m.Partition] = max(want[m.Partition], m.Offset+1)
	}
	wait.Until(t, 60*time.Second, topic+" checkpointed", func() bool {
		cps, err := db.ReplicationCheckpoints(context.Background(), path)
		if err != nil {
			return false
		}
		got := map[int32]int64{}
		for _, c := range cps {
			if c.Topic == topic {
				got[c.Partition] = c.Next
			}
		}
		for p, n := range want {
			if got[p] < n {
				return false
			}
		}
		return true
	})
}

func TestAgentConfig(t *testing.T) {
	t.Parallel()
	b := openBus(t)
	g, _ := NewGuard(nil, nil)
	for name, c := range map[string]AgentConfig{
		"same region": {Source: "asia", Target: "asia", SourceBus: b, TargetBus: b, TargetStore: openStore(t), Guard: g},
		"bad region":  {Source: "Asia", Target: "china", SourceBus: b, TargetBus: b, TargetStore: openStore(t), Guard: g},
		"no guard":    {Source: "asia", Target: "china", SourceBus: b, TargetBus: b, TargetStore: openStore(t)},
	} {
		if _, err := NewAgent(c); smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
}
