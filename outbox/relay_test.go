package outbox_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/outbox"
	"smp/sqlbus"
	"smp/sqlstore"
)

// downBus is the real embedded log with an outage switch.
type downBus struct {
	*sqlbus.Bus
	down atomic.Bool
}

func (b *downBus) Publish(ctx context.Context, msgs ...smp.Message) error {
	if b.down.Load() {
		return smp.Errorf(smp.EUNAVAILABLE, "dial tcp: connection refused")
	}
	return b.Bus.Publish(ctx, msgs...)
}

func TestRelayHoldsEventsThroughOutageInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(dir, "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	log, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "events.db"), Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	bus := &downBus{Bus: log}
	bus.down.Store(true)
	relay, err := outbox.New(store, bus, outbox.Config{Signal: store.CommitSignal(), PollInterval: 20 * time.Millisecond, BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	relay.Start(ctx)
	defer relay.Stop(context.Background())

	const n = 50
	for i := 0; i < n; i++ {
		key := fmt.Sprintf("o%d", i%5)
		err := store.InTx(ctx, func(tx smp.Tx) error {
			return tx.AddEvent(ctx, smp.Event{ID: fmt.Sprintf("e%03d", i), Type: smp.EventOrderCreated, AggregateID: key, OccurredAt: time.Now()})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	backlog, oldest, err := store.OutboxBacklog(ctx)
	if err != nil || backlog != n || oldest.IsZero() {
		t.Fatalf("backlog during the outage = %d (%v, %v), want %d", backlog, oldest, err, n)
	}

	bus.down.Store(false)
	var mu sync.Mutex
	seen := map[string][]string{}
	done := make(chan struct{})
	count := 0
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go log.Subscribe(sctx, "test", []string{smp.TopicOrders}, func(ctx context.Context, m smp.Message) error {
		ev, err := smp.DecodeEvent(m)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		seen[m.Key] = append(seen[m.Key], ev.ID)
		if count++; count == n {
			close(done)
		}
		return nil
	})
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("only %d of %d events arrived after recovery", count, n)
	}
	for key, ids := range seen {
		for i := 1; i < len(ids); i++ {
			if ids[i] < ids[i-1] {
				t.Fatalf("key %s out of order: %v", key, ids)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _, _ := store.OutboxBacklog(ctx); b == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("outbox never drained")
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}
