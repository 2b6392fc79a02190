package e2e

import (
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"smp/internal/wait"
)

// usedBytes is the space the pages in use of a SQLite database take
// (its file and WAL as a reader sees them, free pages left out).
func usedBytes(t *testing.T, path string) int64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	must(t, err)
	defer db.Close()
	var size, pages, free int64
	for q, v := range map[string]*int64{"PRAGMA page_size": &size, "PRAGMA page_count": &pages, "PRAGMA freelist_count": &free} {
		must(t, db.QueryRow(q).Scan(v))
	}
	return (pages - free) * size
}

// TestStoragePerOrderWithRetention measures what a completed order costs
// in storage on the embedded SQLite once retention has run (the figure in
// docs/performance.md): 120 orders go through their whole lifecycle, then
// the clock moves two days on and the pruning job deletes what is kept
// only for a while. What stays is the order, its transitions and what is
// kept by default (audit, money).
func TestStoragePerOrderWithRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	t.Parallel()
	var offset atomic.Int64
	a := startApp(t, func(c *Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		c.RetentionOutbox, c.RetentionBus, c.RetentionProcessed = time.Hour, time.Hour, 2*time.Hour
		c.RetentionDispatchTrace, c.RetentionInbox, c.RetentionEvery = time.Hour, time.Hour, 200*time.Millisecond
	})
	const n = 120
	smpDB := filepath.Join(a.Cfg.DataDir, "smp.db") // the event log's tables too
	// The seeded catalogue, the schema and each table's first pages are
	// there whatever the number of orders: what an order costs is the
	// growth over this.
	base := usedBytes(t, smpDB)
	runLoad(t, a, n, 10)
	before := usedBytes(t, smpDB) - base

	offset.Store(int64(48 * time.Hour))
	for _, table := range []string{"outbox", "bus_messages", "processed_events", "dispatch_waves", "dispatch_offers"} {
		wait.Until(t, 30*time.Second, table+" pruned", func() bool { return prunedOf(a, table) > 0 })
	}
	runs := metricValue(t, a, "smp_retention_runs_total")
	wait.Until(t, 30*time.Second, "two more runs: nothing left to prune", func() bool { return metricValue(t, a, "smp_retention_runs_total") >= runs+2 })
	after := usedBytes(t, smpDB) - base
	t.Logf("%d completed orders: %d bytes per order before pruning, %d after (over %d bytes of schema and seed; smp.db %d B in use, the event log's tables included)",
		n, before/n, after/n, base, usedBytes(t, smpDB))
	for _, table := range []string{"outbox", "bus_messages", "processed_events", "dispatch_waves", "dispatch_offers", "event_log", "idempotency_keys"} {
		t.Logf("pruned %s: %.0f", table, prunedOf(a, table))
	}
	if after >= before {
		t.Fatalf("retention freed nothing: %d bytes before, %d after", before, after)
	}
	if per := after / n; per > 4096 {
		t.Fatalf("%d bytes per completed order after retention: more than 4 KiB", per)
	}
}

func prunedOf(a *testApp, table string) float64 {
	mfs, _ := a.Registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "smp_retention_pruned_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "table" && l.GetValue() == table {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
