package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp"
	"smp/consumer"
	"smp/sqlstore"
)

func message(t *testing.T, id, typ string) smp.Message {
	t.Helper()
	v, err := json.Marshal(smp.Event{ID: id, Type: typ, SchemaVersion: 1, AggregateID: "o1", Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	return smp.Message{Topic: smp.TopicOrders, Key: "o1", Value: v}
}

func TestIdempotentAppliesEachEventOnce(t *testing.T) {
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	m, err := consumer.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	applied := map[string]int{}
	fail := true
	h := consumer.Idempotent(store, "g", m, time.Now, func(ctx context.Context, ev smp.Event) (consumer.Result, error) {
		if ev.Type == "other" {
			return consumer.Skip, nil
		}
		if ev.ID == "flaky" && fail {
			fail = false
			return consumer.Done, errors.New("transient")
		}
		applied[ev.ID]++
		return consumer.Done, nil
	})
	for _, id := range []string{"e1", "e2", "e1", "e1", "e2"} {
		if err := h(ctx, message(t, id, "order.created")); err != nil {
			t.Fatal(err)
		}
	}
	// A failed attempt is not recorded: the retry applies it.
	if err := h(ctx, message(t, "flaky", "order.created")); err == nil {
		t.Fatal("the failing attempt did not fail")
	}
	if err := h(ctx, message(t, "flaky", "order.created")); err != nil {
		t.Fatal(err)
	}
	if err := h(ctx, message(t, "x", "other")); err != nil {
		t.Fatal(err)
	}
	if applied["e1"] != 1 || applied["e2"] != 1 || applied["flaky"] != 1 {
		t.Fatalf("applied %v, want each once", applied)
	}
	// Another group applies the same events on its own.
	h2 := consumer.Idempotent(store, "g2", m, time.Now, func(ctx context.Context, ev smp.Event) (consumer.Result, error) {
		applied[ev.ID]++
		return consumer.Done, nil
	})
	if err := h2(ctx, message(t, "e1", "order.created")); err != nil || applied["e1"] != 2 {
		t.Fatalf("group g2: err %v, e1 applied %d times in total, want 2", err, applied["e1"])
	}
	// A poison message is an error (it will be dead-lettered), not a skip.
	if err := h(ctx, smp.Message{Topic: smp.TopicOrders, Value: []byte("not json")}); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("poison: %v, want EINVALID", err)
	}
	for outcome, want := range map[string]float64{consumer.Applied: 3, consumer.Duplicate: 3, consumer.Ignored: 1} {
		if got := testutil.ToFloat64(m.Counter("g", outcome)); got != want {
			t.Errorf("g %s = %v, want %v", outcome, got, want)
		}
	}
}
