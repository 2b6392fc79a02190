package bus_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp"
	"smp/bus"
	"smp/internal/sqldb"
	"smp/internal/wait"
	"smp/sqlbus"
	"smp/sqlstore"
)

// TestBatchCostsOneQueryAndOneTransaction: a batch of N events delivered
// to one group (the embedded bus hands a partition's backlog over at once)
// costs the store ONE deduplication query and ONE transaction recording
// the Done events, not one of each per event; events of other types cost
// nothing; a duplicate of the batch (published again) is skipped with one
// more query and no transaction; each event is applied once.
func TestBatchCostsOneQueryAndOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	eb := openBus(t)
	const n = 40
	var msgs []smp.Message
	for i := range n {
		msgs = append(msgs, message(t, fmt.Sprintf("e%d", i), smp.EventOrderCreated))
		msgs = append(msgs, message(t, fmt.Sprintf("x%d", i), smp.EventOrderAssigned)) // not this group's
	}
	msgs = append(msgs, message(t, "e0", smp.EventOrderCreated)) // a copy inside the batch
	if err := eb.Publish(ctx, msgs...); err != nil {             // one key: one partition, one batch
		t.Fatal(err)
	}
	c := addCounted(t, eb, store, bus.Types(smp.EventOrderCreated))
	r := c.r
	before := store.SQLCounts()
	lagZero := c.start(t, eb)
	wait.Until(t, 10*time.Second, "the batch committed", lagZero)
	got := store.SQLCounts().Sub(before)
	if got.Statements[sqldb.OpSelect] != 1 || got.Commits != 1 || got.Statements[sqldb.OpInsert] != n {
		t.Fatalf("a batch of %d events cost %d selects, %d inserts and %d commits; want 1 deduplication query, %d records and 1 transaction",
			n, got.Statements[sqldb.OpSelect], got.Statements[sqldb.OpInsert], got.Commits, n)
	}

	// The same events again (a relay's redelivery): one query, nothing recorded.
	before = store.SQLCounts()
	if err := eb.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "the copy committed", lagZero)
	got = store.SQLCounts().Sub(before)
	if got.Statements[sqldb.OpSelect] != 1 || got.Commits != 0 || got.Statements[sqldb.OpInsert] != 0 {
		t.Fatalf("a batch of duplicates cost %d selects, %d inserts and %d commits; want 1 query and no transaction",
			got.Statements[sqldb.OpSelect], got.Statements[sqldb.OpInsert], got.Commits)
	}
	if got := c.checkOnce(t, n); got != n {
		t.Errorf("applied %d distinct events, want %d (no other type)", got, n)
	}
	m := r.Metrics()
	for outcome, want := range map[string]float64{bus.Applied: n, bus.Duplicate: 1 + n + 1, bus.Ignored: 2 * n} {
		if got := testutil.ToFloat64(m.Counter("g", outcome)); got != want {
			t.Errorf("g %s = %v, want %v", outcome, got, want)
		}
	}
}

// TestBatchEndsWhenLeaseRunsOut: once sqlbus's partition lease is no
// longer fresh in the middle of a batch (here the clock jumps 50 s of a
// 60 s lease while e0 is applied), the router ends the batch after e0:
// e0's processed record is written and its offset committed before e1 is
// applied, so a member that took the partition over could not apply e0
// again. Without the stop, e0's record waited for the end of the whole
// batch (e1 saw it missing).
func TestBatchEndsWhenLeaseRunsOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	eb, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(t.TempDir(), "events.db"), Partitions: 1, LeaseTTL: time.Minute,
		Now: clock, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eb.Close() })
	if err := eb.Publish(ctx, message(t, "e0", smp.EventOrderCreated), message(t, "e1", smp.EventOrderCreated), message(t, "e2", smp.EventOrderCreated)); err != nil {
		t.Fatal(err)
	}
	r, err := bus.NewRouter(eb, bus.Config{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	e0Recorded := make(chan bool, 1)
	done := make(chan struct{})
	if err := r.AddHandler("g", []string{smp.TopicOrders}, bus.Events(func(ctx context.Context, ev smp.Event) (bus.Result, error) {
		switch ev.ID {
		case "e0":
			mu.Lock()
			now = now.Add(50 * time.Second)
			mu.Unlock()
		case "e1":
			rec, err := store.IsProcessed(ctx, "g", "e0")
			if err != nil {
				return bus.Skip, err
			}
			e0Recorded <- rec
		case "e2":
			close(done)
		}
		return bus.Done, nil
	}), bus.Idempotent(store, clock)); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	select {
	case rec := <-e0Recorded:
		if !rec {
			t.Fatal("e1 was applied in the same batch as e0 after the lease stopped being fresh: e0's record was still pending")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("e1 never applied")
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("e2 never applied")
	}
}

// TestBatchRecordsCommitWithOffset: on the embedded default (the log's
// tables in the store's database, sqlbus.Config.Shared) a batch's records
// of its Done events and its offset commit in one transaction: a batch of
// N events costs the publish's commit and ONE more, not one for the
// records and one for the offset; each event is applied once, and a copy
// of the batch published again is skipped (the records were written).
func TestBatchRecordsCommitWithOffset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, eb := openShared(t, false)
	c := addCounted(t, eb, store)
	lagZero := c.start(t, eb)
	held := func() bool {
		offs, err := eb.Offsets(ctx, "g", []string{smp.TopicOrders})
		return err == nil && len(offs) == 1 && offs[0].Consumer != "" && lagZero()
	}
	// A first event: the member holds the partition and is idle after it.
	if err := eb.Publish(ctx, message(t, "warm-up", smp.EventOrderCreated)); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "the member consumed a first event", held)

	const n = 40
	var msgs []smp.Message
	for i := range n {
		msgs = append(msgs, message(t, fmt.Sprintf("e%d", i), smp.EventOrderCreated))
	}
	before := store.SQLCounts()
	if err := eb.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "the batch committed", lagZero)
	got := store.SQLCounts().Sub(before)
	if got.WriteCommits != 2 {
		t.Fatalf("publishing and consuming a batch of %d events cost %d write commits, want 2: the publish's, and one for the batch's records with its offset", n, got.WriteCommits)
	}
	if err := eb.Publish(ctx, msgs...); err != nil { // a copy: recorded, so skipped
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "the copy committed", lagZero)
	c.checkOnce(t, n)
}

// counted is group "g" on orders.events, its events counted as applied
// (Done, recorded through Idempotent on store, after mw), on a router not
// yet started.
type counted struct {
	r       *bus.Router
	mu      sync.Mutex
	applied map[string]int
}

func addCounted(t *testing.T, eb smp.EventBus, store bus.Store, mw ...bus.Middleware) *counted {
	t.Helper()
	c := &counted{applied: map[string]int{}}
	var err error
	if c.r, err = bus.NewRouter(eb, bus.Config{Registerer: prometheus.NewRegistry()}); err != nil {
		t.Fatal(err)
	}
	if err := c.r.AddHandler("g", []string{smp.TopicOrders}, bus.Events(func(_ context.Context, ev smp.Event) (bus.Result, error) {
		c.mu.Lock()
		c.applied[ev.ID]++
		c.mu.Unlock()
		return bus.Done, nil
	}), append(mw, bus.Idempotent(store, time.Now))...); err != nil {
		t.Fatal(err)
	}
	return c
}

// start starts the router until the test ends and returns whether group
// g has consumed everything on eb.
func (c *counted) start(t *testing.T, eb smp.EventBus) (lagZero func() bool) {
	t.Helper()
	if err := c.r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.r.Stop(context.Background()) })
	return func() bool {
		lag, err := bus.Total(context.Background(), eb, "g", smp.TopicOrders)
		return err == nil && lag == 0
	}
}

// checkOnce fails for each of e0…e(n-1) not applied exactly once, and
// returns how many distinct events were applied.
func (c *counted) checkOnce(t *testing.T, n int) int {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	eachOnce(t, n, c.applied, "applied")
	return len(c.applied)
}

// eachOnce fails for each of e0…e(n-1) whose count is not 1.
func eachOnce(t *testing.T, n int, counts map[string]int, what string) {
	t.Helper()
	for i := range n {
		if id := fmt.Sprintf("e%d", i); counts[id] != 1 {
			t.Errorf("%s: %s %d times, want once", id, what, counts[id])
		}
	}
}
