package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/sqlstore"
)

// TestGroupCommitSQLite: concurrent InTx on SQLite share commits (fewer
// write commits, that is fsyncs, than callers), a failing caller leaves no
// trace while the callers it shared a transaction with keep theirs; with
// NoGroupCommit every caller pays its own.
func TestGroupCommitSQLite(t *testing.T) {
	t.Parallel()
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("NoGroupCommit=%v", off), func(t *testing.T) {
			t.Parallel()
			db := mustOpen(t, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db"), NoGroupCommit: off})
			ctx := context.Background()
			now := time.Now().UTC().Truncate(time.Microsecond)
			signal := db.CommitSignal()
			before := db.SQLCounts()
			const workers, each = 16, 12
			boom := errors.New("boom")
			var wrong atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range each {
						id := fmt.Sprintf("o-%d-%d", w, i)
						fail := i%4 == 3
						err := db.InTx(ctx, func(tx smp.Tx) error {
							if err := tx.InsertOrder(ctx, newOrder(id, now)); err != nil {
								return err
							}
							if err := tx.AddEvent(ctx, smp.Event{ID: "e-" + id, Type: smp.EventOrderCreated, SchemaVersion: smp.EventSchemaVersion,
								AggregateID: id, OccurredAt: now, Data: []byte(`{}`)}); err != nil {
								return err
							}
							if fail {
								return boom
							}
							return nil
						})
						if fail != errors.Is(err, boom) || !fail && err != nil {
							t.Errorf("%s: %v", id, err)
							wrong.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if wrong.Load() > 0 {
				t.FailNow()
			}
			got := db.SQLCounts().Sub(before)
			kept := workers * each * 3 / 4
			for w := range workers {
				for i := range each {
					id := fmt.Sprintf("o-%d-%d", w, i)
					_, err := db.FindOrderByID(ctx, id)
					if fail := i%4 == 3; fail != (smp.ErrorCode(err) == smp.ENOTFOUND) || !fail && err != nil {
						t.Fatalf("%s (failed: %v): %v", id, fail, err)
					}
				}
			}
			if n, _, err := db.OutboxBacklog(ctx); err != nil || n != int64(kept) {
				t.Fatalf("outbox holds %d events, want %d: %v", n, kept, err)
			}
			select {
			case <-signal:
			default:
				t.Fatal("no commit signal after commits that wrote events")
			}
			t.Logf("%d callers (%d kept): %d write commits, %d group commits of %d callers", workers*each, kept, got.WriteCommits, got.GroupCommits, got.GroupCallers)
			if off {
				if got.WriteCommits != uint64(kept) || got.GroupCommits != 0 {
					t.Fatalf("without group commit: %d write commits for %d kept callers", got.WriteCommits, kept)
				}
				return
			}
			if got.WriteCommits >= uint64(kept) || got.GroupCommits == 0 || got.GroupCallers <= got.GroupCommits {
				t.Fatalf("%d write commits, %d group commits of %d callers for %d kept callers: no commit was shared", got.WriteCommits, got.GroupCommits, got.GroupCallers, kept)
			}
		})
	}
}

// BenchmarkInTxConcurrent: InTx on SQLite (one order and its outbox event
// each) from 1, 16 and 64 goroutines, group commit on and off. It reports
// caller commits per second and callers per fsync (write commit).
func BenchmarkInTxConcurrent(b *testing.B) {
	for _, gc := range []bool{true, false} {
		for _, callers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("gc=%v/callers=%d", gc, callers), func(b *testing.B) {
				db := mustOpen(b, sqlstore.Config{Path: filepath.Join(b.TempDir(), "smp.db"), NoGroupCommit: !gc})
				ctx := context.Background()
				now := time.Now().UTC()
				var next atomic.Int64
				before := db.SQLCounts()
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				for range callers {
					wg.Go(func() {
						for {
							n := next.Add(1)
							if n > int64(b.N) {
								return
							}
							id := fmt.Sprint("o", n)
							if err := db.InTx(ctx, func(tx smp.Tx) error {
								if err := tx.InsertOrder(ctx, newOrder(id, now)); err != nil {
									return err
								}
								return tx.AddEvent(ctx, smp.Event{ID: "e" + id, Type: smp.EventOrderCreated, SchemaVersion: smp.EventSchemaVersion,
									AggregateID: id, OccurredAt: now, Data: []byte(`{}`)})
							}); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				got := db.SQLCounts().Sub(before)
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
				if got.WriteCommits > 0 {
					b.ReportMetric(float64(b.N)/float64(got.WriteCommits), "callers/fsync")
				}
			})
		}
	}
}
