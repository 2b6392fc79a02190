package sqlbus_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/sqlbus"
	"smp/sqlstore/sqlstoretest"
)

// TestPrune: messages older than the cut-off that every group committed
// past are deleted, in batches of limit; uncommitted ones, young ones and
// partitions no group reads (dead letters) are kept. On SQLite and MySQL.
func TestPrune(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"SQLite", "MySQL"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			cfg := sqlbus.Config{Path: filepath.Join(t.TempDir(), "events.db"), Partitions: 1, Now: clock}
			if backend == "MySQL" {
				cfg = sqlbus.Config{MySQLDSN: sqlstoretest.MySQLDSN(t), Partitions: 1, Now: clock}
			}
			l, err := sqlbus.Open(cfg)
			must(t, err)
			defer l.Close()
			ctx := context.Background()
			for range 5 {
				must(t, l.Publish(ctx, smp.Message{Topic: "t", Key: "k", Value: []byte("x")}, smp.Message{Topic: "t.dlq", Key: "k", Value: []byte("x")}))
			}
			must(t, l.ResetOffset(ctx, "a", "t", 0, 4))
			must(t, l.ResetOffset(ctx, "b", "t", 0, 3)) // the slower group: offsets 0..2 are done for both
			mu.Lock()
			now = now.Add(time.Hour)
			mu.Unlock()
			must(t, l.Publish(ctx, smp.Message{Topic: "t", Key: "k", Value: []byte("young")}))
			cut := now.Add(-time.Minute)
			if n, err := l.Prune(ctx, cut, 2); err != nil || n != 2 {
				t.Fatalf("first batch: %d %v, want 2", n, err)
			}
			if n, err := l.Prune(ctx, cut, 2); err != nil || n != 1 {
				t.Fatalf("second batch: %d %v, want 1", n, err)
			}
			if n, err := l.Prune(ctx, now.Add(time.Hour), 100); err != nil || n != 0 {
				t.Fatalf("nothing else is committed by both groups: pruned %d %v", n, err)
			}
			if _, err := l.Prune(ctx, cut, 0); smp.ErrorCode(err) != smp.EINVALID {
				t.Fatalf("limit 0: %v, want EINVALID", err)
			}
			lag, err := l.Lag(ctx, "b", []string{"t"})
			must(t, err)
			if lag["t"][0] != 3 {
				t.Fatalf("group b's lag after pruning: %v, want 3 (offsets 3, 4 and the young one)", lag)
			}
		})
	}
}
