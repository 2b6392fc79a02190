package bus_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/bus"
	"smp/sqlbus"
	"smp/sqlstore"
)

// oneByOne hides the bus's SubscribeBatch: the router delivers each
// message alone, as before batched consumers.
type oneByOne struct{ smp.EventBus }

// BenchmarkRouterDrain: a backlog of 2,000 events of one group drained by
// a router (Types, Idempotent, a Done handler) from the embedded log into
// the embedded store, in batches and one by one. Reports events/s and the
// store's statements and commits per event.
func BenchmarkRouterDrain(b *testing.B) {
	for _, mode := range []string{"batched", "one-by-one"} {
		b.Run(mode, func(b *testing.B) {
			const n = 2000
			ctx := context.Background()
			var elapsed time.Duration
			var stmts, commits uint64
			for i := 0; i < b.N; i++ {
				dir := b.TempDir()
				store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(dir, "smp.db")})
				if err != nil {
					b.Fatal(err)
				}
				eb, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "events.db"), Partitions: 12})
				if err != nil {
					b.Fatal(err)
				}
				var msgs []smp.Message
				for j := range n {
					m := message(b, fmt.Sprintf("e%d", j), smp.EventOrderCreated)
					m.Key = fmt.Sprintf("o%d", j%500)
					msgs = append(msgs, m)
				}
				if err := eb.Publish(ctx, msgs...); err != nil {
					b.Fatal(err)
				}
				var sub smp.EventBus = eb
				if mode == "one-by-one" {
					sub = oneByOne{eb}
				}
				r, err := bus.NewRouter(sub, bus.Config{})
				if err != nil {
					b.Fatal(err)
				}
				var got atomic.Int64
				done := make(chan struct{})
				r.AddHandler("g", []string{smp.TopicOrders}, bus.Events(func(context.Context, smp.Event) (bus.Result, error) {
					if got.Add(1) == n {
						close(done)
					}
					return bus.Done, nil
				}), bus.Types(smp.EventOrderCreated), bus.Idempotent(store, time.Now))
				before := store.SQLCounts()
				start := time.Now()
				r.Start(ctx)
				<-done
				elapsed += time.Since(start)
				r.Stop(ctx)
				d := store.SQLCounts().Sub(before)
				stmts += d.TotalStatements()
				commits += d.Commits
				eb.Close()
				store.Close()
			}
			total := float64(n * b.N)
			b.ReportMetric(total/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(stmts)/total, "stmts/event")
			b.ReportMetric(float64(commits)/total, "commits/event")
		})
	}
}
