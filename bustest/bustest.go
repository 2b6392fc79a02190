// Package bustest is the conformance suite every smp.EventBus passes: the
// embedded log always, the Kafka bus against kfake. The bus's own
// contract (order per key, groups, resume, redelivery of a failed message,
// lag, members) is tested on the bus; dead letters on a bus.Router over it
// (as SMP's consumers run).
package bustest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp"
	"smp/bus"
	"smp/internal/panics"
)

// Features describes what a backend supports beyond the basics.
type Features struct {
	// MaxAttempts of the router after which a failing message is
	// dead-lettered to <topic>.dlq.
	MaxAttempts int
}

// Connect returns a new client of one backing cluster or store; a backend
// test calls Run with a func that creates the backing store once and
// returns a Connect for it. Clients are closed by the suite.
type Connect func(t *testing.T) smp.EventBus

// Run runs the suite. newBackend is called once per subtest.
func Run(t *testing.T, f Features, newBackend func(t *testing.T) Connect) {
	t.Run("OrderPerKey", func(t *testing.T) { t.Parallel(); testOrderPerKey(t, newBackend(t)) })
	t.Run("GroupsIndependent", func(t *testing.T) { t.Parallel(); testGroupsIndependent(t, newBackend(t)) })
	t.Run("ResumeFromCommitted", func(t *testing.T) { t.Parallel(); testResume(t, newBackend(t)) })
	t.Run("RetryThenSucceed", func(t *testing.T) { t.Parallel(); testRetry(t, newBackend(t)) })
	t.Run("PoisonToDLQ", func(t *testing.T) { t.Parallel(); testPoison(t, f, newBackend(t), false) })
	t.Run("PanicToDLQ", func(t *testing.T) { t.Parallel(); testPoison(t, f, newBackend(t), true) })
	t.Run("Lag", func(t *testing.T) { t.Parallel(); testLag(t, newBackend(t)) })
	t.Run("MembersShareExactlyOnce", func(t *testing.T) { t.Parallel(); testMembersShare(t, newBackend(t)) })
	t.Run("MemberFailover", func(t *testing.T) { t.Parallel(); testFailover(t, newBackend(t)) })
	t.Run("Admin/ResetOffset/Limits", func(t *testing.T) { t.Parallel(); testResetOffsetLimits(t, newBackend(t)) })
}

// testResetOffsetLimits: a group or topic longer than its limit
// (smp.MaxGroupName, smp.MaxTopicName) is EINVALID and moves nothing, on
// every bus (the embedded log on MySQL used to keep it truncated); one at
// the limit is kept whole.
func testResetOffsetLimits(t *testing.T, connect Connect) {
	b := connect(t)
	adm, ok := b.(smp.BusAdmin)
	if !ok {
		t.Skip("not a BusAdmin")
	}
	ctx := context.Background()
	publishN(t, b, []string{"r1", "r2", "r3", "r4", "r5", "r6"}, 2)
	offs, err := adm.Offsets(ctx, "g", []string{topic})
	if err != nil {
		t.Fatal(err)
	}
	part := int32(-1)
	for _, o := range offs {
		if o.End > 0 {
			part = o.Partition
		}
	}
	atLimit := strings.Repeat("g", smp.MaxGroupName)
	for name, err := range map[string]error{
		"group one over": adm.ResetOffset(ctx, atLimit+"x", topic, part, 1),
		"topic one over": adm.ResetOffset(ctx, "g", strings.Repeat("t", smp.MaxTopicName+1), part, 1),
	} {
		if smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	for _, g := range []string{atLimit, atLimit[:smp.MaxGroupName-1]} {
		if offs, _ := adm.Offsets(ctx, g, []string{topic}); offs[part].Committed > 0 {
			t.Errorf("a refused reset moved group %d characters long: %+v", len(g), offs[part])
		}
	}
	if err := adm.ResetOffset(ctx, atLimit, topic, part, 1); err != nil {
		t.Fatalf("a group of %d characters: %v", smp.MaxGroupName, err)
	}
	offs, err = adm.Offsets(ctx, atLimit, []string{topic})
	if err != nil || offs[part].Committed != 1 {
		t.Fatalf("after the reset, group at the limit: %+v %v", offs, err)
	}
}

// testMembersShare: two members of one group, on two clients, handle
// every message exactly once between them.
func testMembersShare(t *testing.T, connect Connect) {
	a, b := connect(t), connect(t)
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	const n = 200
	handler := func(_ context.Context, m smp.Message) error {
		mu.Lock()
		defer mu.Unlock()
		seen[string(m.Value)]++
		if len(seen) == n {
			select {
			case <-done:
			default:
				close(done)
			}
		}
		return nil
	}
	subscribe(t, a, "gs", []string{topic}, handler)
	subscribe(t, b, "gs", []string{topic}, handler)
	var keys []string
	for i := 0; i < 20; i++ {
		keys = append(keys, fmt.Sprintf("s%d", i))
	}
	publishN(t, a, keys, n/len(keys))
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d messages handled", len(seen), n)
	}
	mu.Lock()
	defer mu.Unlock()
	for v, c := range seen {
		if c != 1 {
			t.Fatalf("%s handled %d times by the group", v, c)
		}
	}
}

// testFailover: when a member stops, another member of the group goes on
// from the committed position.
func testFailover(t *testing.T, connect Connect) {
	a, b := connect(t), connect(t)
	publishN(t, a, []string{"f1", "f2", "f3"}, 10)
	first := newCollector(30)
	stopA := subscribe(t, a, "gf", []string{topic}, first.handle)
	first.wait(t, 30*time.Second)
	stopA() // graceful: leases released
	publishN(t, a, []string{"f1", "f2", "f3"}, 1)
	second := newCollector(3)
	subscribe(t, b, "gf", []string{topic}, second.handle)
	got := second.wait(t, 30*time.Second)
	for _, m := range got {
		if !strings.HasSuffix(string(m.Value), "/0") {
			t.Fatalf("after failover got %s: committed messages came again", m.Value)
		}
	}
}

const topic = "bustest.events"

type collector struct {
	mu   sync.Mutex
	got  []smp.Message
	ch   chan struct{}
	want int
}

func newCollector(want int) *collector { return &collector{ch: make(chan struct{}), want: want} }

func (c *collector) handle(_ context.Context, m smp.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, m)
	if len(c.got) == c.want {
		close(c.ch)
	}
	return nil
}

func (c *collector) wait(t *testing.T, d time.Duration) []smp.Message {
	t.Helper()
	select {
	case <-c.ch:
	case <-time.After(d):
		c.mu.Lock()
		n := len(c.got)
		c.mu.Unlock()
		t.Fatalf("got %d of %d messages within %s", n, c.want, d)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]smp.Message(nil), c.got...)
}

func subscribe(t *testing.T, bus smp.EventBus, group string, topics []string, h smp.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Subscribe(ctx, group, topics, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("subscribe %s: %v", group, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func publishN(t *testing.T, bus smp.EventBus, keys []string, perKey int) {
	t.Helper()
	var msgs []smp.Message
	for i := 0; i < perKey; i++ {
		for _, k := range keys {
			msgs = append(msgs, smp.Message{Topic: topic, Key: k, Value: []byte(fmt.Sprintf("%s/%d", k, i)), Headers: map[string]string{"i": fmt.Sprint(i)}})
		}
	}
	if err := bus.Publish(context.Background(), msgs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func testOrderPerKey(t *testing.T, connect Connect) {
	bus := connect(t)
	keys := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	const perKey = 40
	publishN(t, bus, keys, perKey)
	c := newCollector(len(keys) * perKey)
	subscribe(t, bus, "g1", []string{topic}, c.handle)
	got := c.wait(t, 30*time.Second)
	next := map[string]int{}
	for _, m := range got {
		want := fmt.Sprintf("%s/%d", m.Key, next[m.Key])
		if string(m.Value) != want {
			t.Fatalf("key %s: got %s, want %s (order per key broken)", m.Key, m.Value, want)
		}
		if m.Headers["i"] != fmt.Sprint(next[m.Key]) {
			t.Fatalf("headers lost: %v", m.Headers)
		}
		next[m.Key]++
	}
}

func testGroupsIndependent(t *testing.T, connect Connect) {
	bus := connect(t)
	publishN(t, bus, []string{"x", "y"}, 10)
	a, b := newCollector(20), newCollector(20)
	subscribe(t, bus, "ga", []string{topic}, a.handle)
	subscribe(t, bus, "gb", []string{topic}, b.handle)
	a.wait(t, 30*time.Second)
	b.wait(t, 30*time.Second)
}

func testResume(t *testing.T, connect Connect) {
	bus := connect(t)
	publishN(t, bus, []string{"k"}, 10)
	first := newCollector(10)
	stop := subscribe(t, bus, "gr", []string{topic}, first.handle)
	first.wait(t, 30*time.Second)
	stop()
	if err := bus.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	bus2 := connect(t)
	if err := bus2.Publish(context.Background(), smp.Message{Topic: topic, Key: "k", Value: []byte("k/10")}); err != nil {
		t.Fatal(err)
	}
	second := newCollector(1)
	subscribe(t, bus2, "gr", []string{topic}, second.handle)
	got := second.wait(t, 30*time.Second)
	if string(got[0].Value) != "k/10" {
		t.Fatalf("after restart the group resumed at %s, want k/10 (committed messages redelivered)", got[0].Value)
	}
}

func testRetry(t *testing.T, connect Connect) {
	bus := connect(t)
	publishN(t, bus, []string{"r"}, 2)
	var mu sync.Mutex
	attempts := map[string]int{}
	c := newCollector(2)
	subscribe(t, bus, "gt", []string{topic}, func(ctx context.Context, m smp.Message) error {
		mu.Lock()
		attempts[string(m.Value)]++
		n := attempts[string(m.Value)]
		mu.Unlock()
		if string(m.Value) == "r/0" && n < 3 {
			return errors.New("transient")
		}
		return c.handle(ctx, m)
	})
	got := c.wait(t, 30*time.Second)
	if string(got[0].Value) != "r/0" || string(got[1].Value) != "r/1" {
		t.Fatalf("retry broke order: %s, %s", got[0].Value, got[1].Value)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts["r/0"] != 3 {
		t.Fatalf("r/0 attempted %d times, want 3", attempts["r/0"])
	}
}

// testPoison: on a bus.Router, a message whose handler keeps failing (or
// panicking) is attempted MaxAttempts times, then dead-lettered with its
// dlq.* headers, and its partition moves on. A panic is recovered and
// counted in smp_panics_total{component="bus:<group>"}.
func testPoison(t *testing.T, f Features, connect Connect, panicking bool) {
	b := connect(t)
	publishN(t, b, []string{"p"}, 3) // p/1 is poison
	good := newCollector(2)
	reg := prometheus.NewRegistry()
	r, err := bus.NewRouter(b, bus.Config{MaxAttempts: f.MaxAttempts, RetryBackoff: time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	attempts := 0
	if err := r.AddHandler("gp", []string{topic}, func(ctx context.Context, m smp.Message) error {
		if string(m.Value) == "p/1" {
			mu.Lock()
			attempts++
			mu.Unlock()
			if panicking {
				_ = m.Value[len(m.Value)] // index out of range: a real runtime panic
			}
			return errors.New("schema mismatch")
		}
		return good.handle(ctx, m)
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(context.Background()); err != nil {
			t.Errorf("stop router: %v", err)
		}
	})
	got := good.wait(t, 60*time.Second)
	if string(got[1].Value) != "p/2" {
		t.Fatalf("partition did not move past the poison message: %s", got[1].Value)
	}
	dlq := newCollector(1)
	subscribe(t, b, "gp-dlq-reader", []string{topic + ".dlq"}, dlq.handle)
	d := dlq.wait(t, 30*time.Second)[0]
	wantReason := "schema mismatch"
	if panicking {
		wantReason = "panic in bus:gp: runtime error: index out of range [3] with length 3"
	}
	if string(d.Value) != "p/1" || d.Headers["dlq.reason"] != wantReason || d.Headers["dlq.group"] != "gp" {
		t.Fatalf("dead letter = %s %v", d.Value, d.Headers)
	}
	if d.Headers["dlq.attempts"] != fmt.Sprint(f.MaxAttempts) || d.Headers["dlq.topic"] != topic {
		t.Fatalf("dead-lettered after %s attempts from %s, want %d from %s", d.Headers["dlq.attempts"], d.Headers["dlq.topic"], f.MaxAttempts, topic)
	}
	mu.Lock()
	n := attempts
	mu.Unlock()
	if n < f.MaxAttempts {
		t.Fatalf("handler attempted %d times, want at least %d", n, f.MaxAttempts)
	}
	wantPanics := 0.0
	if panicking {
		wantPanics = float64(f.MaxAttempts) // each attempt panicked (a redelivery may add more)
	}
	c := panics.New(reg, nil)
	if got := testutil.ToFloat64(panics.Collector(c, bus.Component("gp"))); got < wantPanics || (!panicking && got != 0) {
		t.Fatalf(`smp_panics_total{component="bus:gp"} = %v, want %v`, got, wantPanics)
	}
	if got := testutil.ToFloat64(r.Metrics().Counter("gp", bus.DeadLettered)); got < 1 {
		t.Fatalf(`smp_consumer_events_total{group="gp",outcome="dead_lettered"} = %v, want 1`, got)
	}
}

func testLag(t *testing.T, connect Connect) {
	bus := connect(t)
	publishN(t, bus, []string{"l1", "l2", "l3"}, 5)
	total := func() int64 {
		lag, err := bus.Lag(context.Background(), "gl", []string{topic})
		if err != nil {
			t.Fatalf("lag: %v", err)
		}
		var n int64
		for _, v := range lag[topic] {
			n += v
		}
		return n
	}
	if n := total(); n != 15 {
		t.Fatalf("lag before consuming = %d, want 15", n)
	}
	c := newCollector(15)
	subscribe(t, bus, "gl", []string{topic}, c.handle)
	c.wait(t, 30*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for total() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("lag after consuming = %d, want 0", total())
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	// The member consuming a partition is named (kafka-consumer-groups'
	// CONSUMER-ID), for a bus that describes offsets.
	adm, ok := bus.(smp.BusAdmin)
	if !ok {
		return
	}
	for {
		offs, err := adm.Offsets(context.Background(), "gl", []string{topic})
		if err != nil {
			t.Fatalf("offsets: %v", err)
		}
		named := 0
		for _, o := range offs {
			if o.Consumer != "" {
				named++
			}
		}
		if named > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no partition names its consumer while a member consumes: %+v", offs)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}
