package bus_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp"
	"smp/bus"
	"smp/sqlstore"
)

// countingStore counts the deduplication queries Idempotent makes.
type countingStore struct {
	bus.Store
	queries int
}

func (s *countingStore) IsProcessed(ctx context.Context, group, id string) (bool, error) {
	s.queries++
	return s.Store.IsProcessed(ctx, group, id)
}

// TestTypesFilterBeforeDeduplication: an event of a type the group does
// not act on is ignored without a deduplication query or a transaction
// (counted SQL statements do not move), while its types are applied once
// and a poison message still fails.
func TestTypesFilterBeforeDeduplication(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store := &countingStore{Store: db}
	m, err := bus.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	applied := 0
	h := bus.Chain(bus.Events(func(ctx context.Context, ev smp.Event) (bus.Result, error) {
		applied++
		return bus.Done, nil
	}), m.Middleware(), bus.Types(smp.EventOrderCreated), bus.Idempotent(store, time.Now))
	deliver := func(msg smp.Message) error { return h(bus.WithGroup(ctx, "g"), msg) }

	before := db.SQLCounts()
	for _, typ := range []string{smp.EventOrderAssigned, smp.EventOrderCompleted, smp.EventOrderCancelled} {
		if err := deliver(message(t, "x-"+typ, typ)); err != nil {
			t.Fatal(err)
		}
	}
	if got := db.SQLCounts().Sub(before); store.queries != 0 || got.TotalStatements() != 0 || got.Commits != 0 || applied != 0 {
		t.Fatalf("ignored events cost %d deduplication queries, %d statements, %d commits, %d applications; want none", store.queries, got.TotalStatements(), got.Commits, applied)
	}
	for range 2 {
		if err := deliver(message(t, "e1", smp.EventOrderCreated)); err != nil {
			t.Fatal(err)
		}
	}
	if applied != 1 || store.queries != 2 {
		t.Fatalf("order.created applied %d times with %d deduplication queries, want 1 and 2", applied, store.queries)
	}
	if err := deliver(smp.Message{Topic: smp.TopicOrders, Value: []byte("not json")}); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("poison: %v, want EINVALID", err)
	}
	for outcome, want := range map[string]float64{bus.Applied: 1, bus.Duplicate: 1, bus.Ignored: 3} {
		if got := testutil.ToFloat64(m.Counter("g", outcome)); got != want {
			t.Errorf("g %s = %v, want %v", outcome, got, want)
		}
	}
}
