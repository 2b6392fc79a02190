package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp"
	"smp/bus"
	"smp/internal/panics"
	"smp/sqlbus"
	"smp/sqlstore"
)

func message(t testing.TB, id, typ string) smp.Message {
	t.Helper()
	v, err := json.Marshal(smp.Event{ID: id, Type: typ, SchemaVersion: 1, AggregateID: "o1", Data: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	return smp.Message{Topic: smp.TopicOrders, Key: "o1", Value: v}
}

func openBus(t *testing.T) *sqlbus.Bus {
	t.Helper()
	b, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(t.TempDir(), "events.db"), Partitions: 2, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestIdempotentAppliesEachEventOnce: each group applies each event once;
// a failed attempt is not recorded; outcomes are counted per group.
func TestIdempotentAppliesEachEventOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	m, err := bus.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	applied := map[string]int{}
	fail := true
	h := bus.Chain(bus.Events(func(ctx context.Context, ev smp.Event) (bus.Result, error) {
		if ev.Type == "other" {
			return bus.Skip, nil
		}
		if ev.ID == "flaky" && fail {
			fail = false
			return bus.Done, errors.New("transient")
		}
		applied[ev.ID]++
		return bus.Done, nil
	}), m.Middleware(), bus.Idempotent(store, time.Now))
	deliver := func(group string, msg smp.Message) error { return h(bus.WithGroup(ctx, group), msg) }
	for _, id := range []string{"e1", "e2", "e1", "e1", "e2"} {
		if err := deliver("g", message(t, id, "order.created")); err != nil {
			t.Fatal(err)
		}
	}
	if err := deliver("g", message(t, "flaky", "order.created")); err == nil {
		t.Fatal("the failing attempt did not fail")
	}
	if err := deliver("g", message(t, "flaky", "order.created")); err != nil {
		t.Fatal(err)
	}
	if err := deliver("g", message(t, "x", "other")); err != nil {
		t.Fatal(err)
	}
	if applied["e1"] != 1 || applied["e2"] != 1 || applied["flaky"] != 1 {
		t.Fatalf("applied %v, want each once", applied)
	}
	// Another group applies the same events on its own.
	if err := deliver("g2", message(t, "e1", "order.created")); err != nil || applied["e1"] != 2 {
		t.Fatalf("group g2: err %v, e1 applied %d times in total, want 2", err, applied["e1"])
	}
	// A poison message is an error (it will be dead-lettered), not a skip.
	if err := deliver("g", smp.Message{Topic: smp.TopicOrders, Value: []byte("not json")}); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("poison: %v, want EINVALID", err)
	}
	for outcome, want := range map[string]float64{bus.Applied: 3, bus.Duplicate: 3, bus.Ignored: 1} {
		if got := testutil.ToFloat64(m.Counter("g", outcome)); got != want {
			t.Errorf("g %s = %v, want %v", outcome, got, want)
		}
	}
}

// TestIdempotentRecordedInEffectTx: a handler that records the event in
// its own transaction (DoneRecorded, or ErrDuplicate when it was there) is
// not recorded again, and a duplicate is counted as such.
func TestIdempotentRecordedInEffectTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	m, err := bus.NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	effects := 0
	h := bus.Chain(bus.Events(func(ctx context.Context, ev smp.Event) (bus.Result, error) {
		err := store.InTx(ctx, func(tx smp.Tx) error {
			first, err := tx.MarkProcessed(ctx, bus.Group(ctx), ev.ID, time.Now())
			if err != nil {
				return err
			}
			if !first {
				return bus.ErrDuplicate
			}
			effects++
			return nil
		})
		return bus.DoneRecorded, err
	}), m.Middleware())
	for i := 0; i < 3; i++ {
		if err := h(bus.WithGroup(ctx, "g"), message(t, "e1", "order.created")); err != nil {
			t.Fatal(err)
		}
	}
	if effects != 1 || testutil.ToFloat64(m.Counter("g", bus.Applied)) != 1 || testutil.ToFloat64(m.Counter("g", bus.Duplicate)) != 2 {
		t.Fatalf("effects %d, applied %v, duplicate %v; want 1, 1, 2", effects,
			testutil.ToFloat64(m.Counter("g", bus.Applied)), testutil.ToFloat64(m.Counter("g", bus.Duplicate)))
	}
}

func startRouter(t *testing.T, r *bus.Router) {
	t.Helper()
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := r.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
}

func readDLQ(t *testing.T, b *sqlbus.Bus, topic string, want int) []smp.Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		msgs, err := b.Read(context.Background(), topic+smp.DLQSuffix, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) >= want {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters on %s.dlq, want %d", len(msgs), topic, want)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

// TestPanicRecoveredRetriedDeadLettered: a panicking handler does not kill
// the process: each attempt's panic is recovered and counted in
// smp_panics_total{component="bus:<group>"}, the message is retried, then
// dead-lettered, and the partition goes on.
func TestPanicRecoveredRetriedDeadLettered(t *testing.T) {
	t.Parallel()
	b := openBus(t)
	reg := prometheus.NewRegistry()
	r, err := bus.NewRouter(b, bus.Config{MaxAttempts: 3, RetryBackoff: time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	after := make(chan string, 1)
	var attempts atomic.Int32
	must(t, r.AddHandler("g", []string{"t"}, func(ctx context.Context, m smp.Message) error {
		if string(m.Value) == "boom" {
			attempts.Add(1)
			panic("handler bug")
		}
		after <- string(m.Value)
		return nil
	}))
	startRouter(t, r)
	must(t, b.Publish(context.Background(), smp.Message{Topic: "t", Key: "k", Value: []byte("boom")}, smp.Message{Topic: "t", Key: "k", Value: []byte("next")}))
	select {
	case v := <-after:
		if v != "next" {
			t.Fatalf("got %s", v)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the partition did not move past the panicking message")
	}
	d := readDLQ(t, b, "t", 1)[0]
	if string(d.Value) != "boom" || !strings.Contains(d.Headers[smp.HeaderDLQReason], "handler bug") || d.Headers[smp.HeaderDLQAttempts] != "3" {
		t.Fatalf("dead letter %s %v", d.Value, d.Headers)
	}
	if n := attempts.Load(); n != 3 {
		t.Fatalf("attempted %d times, want 3", n)
	}
	if got := testutil.ToFloat64(panics.Collector(panics.New(reg, nil), "bus:g")); got != 3 {
		t.Fatalf(`smp_panics_total{component="bus:g"} = %v, want 3`, got)
	}
	if got := testutil.ToFloat64(r.Metrics().Counter("g", bus.DeadLettered)); got != 1 {
		t.Fatalf("dead_lettered = %v, want 1", got)
	}
}

// TestTimeoutBoundsEachAttempt: a handler stuck past Timeout fails that
// attempt; after the last one the message is dead-lettered.
func TestTimeoutBoundsEachAttempt(t *testing.T) {
	t.Parallel()
	b := openBus(t)
	r, err := bus.NewRouter(b, bus.Config{MaxAttempts: 2, RetryBackoff: time.Millisecond, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	must(t, r.AddHandler("g", []string{"t"}, func(ctx context.Context, m smp.Message) error {
		<-ctx.Done() // stuck until the attempt's deadline
		return ctx.Err()
	}))
	startRouter(t, r)
	must(t, b.Publish(context.Background(), smp.Message{Topic: "t", Key: "k", Value: []byte("slow")}))
	d := readDLQ(t, b, "t", 1)[0]
	if d.Headers[smp.HeaderDLQReason] != context.DeadlineExceeded.Error() || d.Headers[smp.HeaderDLQAttempts] != "2" {
		t.Fatalf("dead letter headers %v", d.Headers)
	}
}

// flakyBus is the real embedded log whose first subscriptions fail.
type flakyBus struct {
	*sqlbus.Bus
	fails atomic.Int32
}

func (f *flakyBus) Subscribe(ctx context.Context, group string, topics []string, h smp.Handler) error {
	if f.fails.Add(-1) >= 0 {
		return smp.Errorf(smp.EUNAVAILABLE, "brokers away")
	}
	return f.Bus.Subscribe(ctx, group, topics, h)
}

// TestRouterResubscribes: a subscription that ends with an error is
// subscribed again; Start and Stop are idempotent.
func TestRouterResubscribes(t *testing.T) {
	t.Parallel()
	fb := &flakyBus{Bus: openBus(t)}
	fb.fails.Store(2)
	r, err := bus.NewRouter(fb, bus.Config{ResubscribeAfter: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	must(t, r.AddHandler("g", []string{"t"}, func(ctx context.Context, m smp.Message) error { got <- string(m.Value); return nil }))
	if err := r.AddHandler("g", []string{"t"}, func(context.Context, smp.Message) error { return nil }); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("a second handler for a group: %v, want EINVALID", err)
	}
	startRouter(t, r)
	must(t, r.Start(context.Background())) // twice: nothing more
	if err := r.AddHandler("h", []string{"t"}, func(context.Context, smp.Message) error { return nil }); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("a handler after Start: %v, want EINVALID", err)
	}
	must(t, fb.Publish(context.Background(), smp.Message{Topic: "t", Key: "k", Value: []byte("v")}))
	select {
	case v := <-got:
		if v != "v" {
			t.Fatalf("got %s", v)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("not delivered after the failed subscriptions")
	}
	must(t, r.Stop(context.Background()))
	must(t, r.Stop(context.Background()))
	if subs := r.Subscriptions(); len(subs) != 1 || subs[0].Group != "g" {
		t.Fatalf("subscriptions %v", subs)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestReplayGoesBackToItsGroupOnly (15.9): a dead letter replayed from
// <topic>.dlq is handled again by the group that dead-lettered it only;
// the other groups on the topic (which applied it) skip it, so a poison
// record does not become one new dead letter per group.
func TestReplayGoesBackToItsGroupOnly(t *testing.T) {
	t.Parallel()
	b := openBus(t)
	r, err := bus.NewRouter(b, bus.Config{MaxAttempts: 1, RetryBackoff: time.Millisecond, Registerer: prometheus.NewRegistry()})
	must(t, err)
	seen := map[string]chan string{"picky": make(chan string, 10), "easy": make(chan string, 10)}
	var pickyFails atomic.Bool
	pickyFails.Store(true)
	must(t, r.AddHandler("picky", []string{"t"}, func(ctx context.Context, m smp.Message) error {
		if string(m.Value) == "poison" && pickyFails.Load() {
			return errors.New("cannot apply")
		}
		seen["picky"] <- string(m.Value)
		return nil
	}))
	must(t, r.AddHandler("easy", []string{"t"}, func(ctx context.Context, m smp.Message) error {
		seen["easy"] <- string(m.Value)
		return nil
	}))
	startRouter(t, r)
	ctx := context.Background()
	must(t, b.Publish(ctx, smp.Message{Topic: "t", Key: "k", Value: []byte("poison")}))
	if v := recv(t, seen["easy"]); v != "poison" {
		t.Fatalf("easy got %s", v)
	}
	d := readDLQ(t, b, "t", 1)[0]
	if d.Headers[smp.HeaderDLQGroup] != "picky" {
		t.Fatalf("dead letter of %q", d.Headers[smp.HeaderDLQGroup])
	}
	pickyFails.Store(false) // the cause is fixed; replay it, then a marker
	must(t, b.Publish(ctx, bus.Replayed("t"+smp.DLQSuffix, d), smp.Message{Topic: "t", Key: "k", Value: []byte("marker")}))
	for _, want := range []string{"poison", "marker"} {
		if v := recv(t, seen["picky"]); v != want {
			t.Fatalf("picky got %s, want %s", v, want)
		}
	}
	if v := recv(t, seen["easy"]); v != "marker" {
		t.Fatalf("easy got %q after the replay, want only the marker (the replay is picky's)", v)
	}
}

func recv(t *testing.T, ch chan string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("nothing delivered in 30 s")
		return ""
	}
}
