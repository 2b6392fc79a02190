package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/internal/wait"
	"smp/sqlstore"
)

// rateEvent returns the event of version v of a USD rate row as the owner
// writes it (schema is its schema version).
func rateEvent(t *testing.T, day int, v int64, rate string, schema int) []byte {
	t.Helper()
	r := smp.MasterRecord{Table: smp.MasterCurrencyRates, Key: fmt.Sprintf("USD/VND/2026-12-%02d", day), Version: v, Region: "global",
		Fields:    map[string]string{"from_currency": "USD", "to_currency": "VND", "rate_date": fmt.Sprintf("2026-12-%02d", day), "rate": rate},
		UpdatedAt: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	data, err := json.Marshal(smp.MasterDataEvent{MasterRecord: r, SchemaVersion: schema})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := json.Marshal(smp.Event{ID: fmt.Sprintf("e-%d-%d", day, v), Type: "masterdata.currency_rates.changed", SchemaVersion: smp.EventSchemaVersion,
		AggregateID: r.Key, OccurredAt: r.UpdatedAt, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	return v2
}

func agentCfg(globalBus, chinaBus smp.EventBus, chinaDB *sqlstore.DB, g *Guard, m *Metrics) AgentConfig {
	return AgentConfig{Source: "global", Target: "china", SourceBus: globalBus, TargetBus: chinaBus, TargetStore: chinaDB,
		Guard: g, Metrics: m, HeartbeatEvery: 100 * time.Millisecond, Agents: 3, LeaseTTL: 2 * time.Second, PollEvery: 50 * time.Millisecond}
}

// TestThreeAgentsOneKilled: three agents share the path global-to-china
// through leases; one is killed (its leases left to expire) while global
// publishes a stream of changes: every change arrives, each version is
// applied exactly once (duplicates on the wire are counted, not applied),
// and the survivors hold all the path's topics.
func TestThreeAgentsOneKilled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	chinaDB := openStore(t)
	globalBus, chinaBus := openBus(t), openBus(t)
	g, _ := NewGuard(nil, nil)
	m, _ := NewMetrics(prometheus.NewRegistry())
	var agents []*Agent
	for i := 0; i < 3; i++ {
		cfg := agentCfg(globalBus, chinaBus, chinaDB, g, m)
		cfg.Member = fmt.Sprintf("agent-%d", i)
		a, err := NewAgent(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Stop(ctx) })
		agents = append(agents, a)
	}
	wait.Until(t, 30*time.Second, "the topics shared", func() bool {
		n, busy := 0, 0
		for _, a := range agents {
			if u := len(a.Units()); u > 0 {
				n, busy = n+u, busy+1
			}
		}
		return n == len(SourceTopics()) && busy == 3
	})
	const days, versions = 10, 5
	publish := func(v int64) {
		for d := 1; d <= days; d++ {
			if err := globalBus.Publish(ctx, smp.Message{Topic: "masterdata.currency_rates", Key: fmt.Sprintf("USD/VND/2026-12-%02d", d),
				Value: rateEvent(t, d, v, fmt.Sprintf("254%02d", v), 1)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(1)
	publish(2)
	var victim *Agent
	for _, a := range agents {
		for _, u := range a.Units() {
			if u == "masterdata.currency_rates" {
				victim = a
			}
		}
	}
	if victim == nil {
		t.Fatal("nobody runs masterdata.currency_rates")
	}
	victim.noRelease = true // killed: its leases expire, nobody releases them
	victim.Stop(ctx)
	for v := int64(3); v <= versions; v++ {
		publish(v)
	}
	for d := 1; d <= days; d++ {
		key := fmt.Sprintf("USD/VND/2026-12-%02d", d)
		wait.Until(t, 60*time.Second, key+" at its last version", func() bool {
			r, err := chinaDB.FindMasterRecord(ctx, smp.MasterCurrencyRates, key)
			return err == nil && r.Version == versions
		})
	}
	// The counter is raised just after the row's transaction commits:
	// the last version can be seen in the store a moment before it counts.
	wait.Until(t, 30*time.Second, "every version counted", func() bool { return m.Count("global-to-china", "applied") >= days*versions })
	if got := m.Count("global-to-china", "applied"); got != days*versions {
		t.Errorf("applied %v records, want each of the %d versions once", got, days*versions)
	}
	// The victim's other topics are taken over in the same ticks, but not
	// necessarily before the last version arrived (a tick may fail to
	// take one and take it on the next).
	wait.Until(t, 30*time.Second, "the survivors holding every topic", func() bool {
		n := 0
		for _, a := range agents {
			if a != victim {
				n += len(a.Units())
			}
		}
		return n == len(SourceTopics())
	})
	t.Logf("applied %v, duplicates %v", m.Count("global-to-china", "applied"), m.Count("global-to-china", "duplicate"))
}

// TestSchemaNewerPausesThePath: a record of a newer master-data schema
// reaches a target that does not know it: the path is paused (audited,
// smp_replication_path_paused{cause="schema"}), nothing of it is written,
// and what follows waits; once the target knows the schema (its
// migration ran) the path resumes by itself and catches up.
func TestSchemaNewerPausesThePath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	chinaDB := openStore(t)
	globalBus, chinaBus := openBus(t), openBus(t)
	g, _ := NewGuard(nil, nil)
	cfg := agentCfg(globalBus, chinaBus, chinaDB, g, nil)
	cfg.Agents = 1
	a, err := NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Stop(ctx) })
	pub := func(day int, v int64, schema int) {
		if err := globalBus.Publish(ctx, smp.Message{Topic: "masterdata.currency_rates", Key: "USD", Value: rateEvent(t, day, v, "25410", schema)}); err != nil {
			t.Fatal(err)
		}
	}
	pub(1, 1, 1)
	wait.Until(t, 30*time.Second, "schema 1 applied", func() bool {
		_, err := chinaDB.FindMasterRecord(ctx, smp.MasterCurrencyRates, "USD/VND/2026-12-01")
		return err == nil
	})
	pub(2, 1, 2) // the source migrated first
	pub(3, 1, 1)
	wait.Until(t, 30*time.Second, "the path paused", func() bool {
		p, err := chinaDB.FindReplicationPath(ctx, "global-to-china")
		return err == nil && p.Paused && p.SchemaNeeded == 2
	})
	if got := gauge(t, NewLagCollector(time.Now, chinaDB), "smp_replication_path_paused", "cause", "schema"); got != 1 {
		t.Errorf("smp_replication_path_paused{cause=schema} = %v", got)
	}
	if es, _ := chinaDB.FindAudit(ctx, smp.AuditFilter{Action: "replication.pause"}); len(es) != 1 || es[0].Actor != "system:replication-agent" {
		t.Errorf("audit of the pause: %+v", es)
	}
	for _, day := range []string{"02", "03"} {
		if _, err := chinaDB.FindMasterRecord(ctx, smp.MasterCurrencyRates, "USD/VND/2026-12-"+day); smp.ErrorCode(err) != smp.ENOTFOUND {
			t.Errorf("day %s written while paused: %v", day, err)
		}
	}
	g.SetSchema(2) // the target's migration ran
	t.Cleanup(func() {
		ms, err := chinaBus.Read(ctx, "global.masterdata.currency_rates", 10)
		t.Logf("in china: %d %v; units %v", len(ms), err, a.Units())
		src, _ := globalBus.Read(ctx, "masterdata.currency_rates", 10)
		for _, m := range src {
			t.Logf("source p%d o%d", m.Partition, m.Offset)
		}
		offs, _ := globalBus.Offsets(ctx, a.MirrorGroup("masterdata.currency_rates"), []string{"masterdata.currency_rates"})
		t.Logf("offsets %+v", offs)
		cps, _ := chinaDB.ReplicationCheckpoints(ctx, "global-to-china")
		t.Logf("cps %+v", cps)
	})
	for _, day := range []string{"02", "03"} {
		wait.Until(t, 30*time.Second, "day "+day+" after the migration", func() bool {
			_, err := chinaDB.FindMasterRecord(ctx, smp.MasterCurrencyRates, "USD/VND/2026-12-"+day)
			return err == nil
		})
	}
	if p, _ := chinaDB.FindReplicationPath(ctx, "global-to-china"); p.Paused {
		t.Errorf("still paused: %+v", p)
	}
}

// gauge returns the value of name's series whose label is value, as c
// exports it.
func gauge(t *testing.T, c prometheus.Collector, name, label, value string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}
