package outbox_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"smp"
	"smp/internal/wait"
	"smp/kafkabus"
	"smp/outbox"
	"smp/sqlstore"
)

// The pipelined relay on Kafka (kfake, three brokers): several batches in
// flight, marks in ack order, and each key's order kept through failures.

// markLog is the real store, recording each MarkOutboxPublished.
type markLog struct {
	*sqlstore.DB
	mu    sync.Mutex
	calls [][]int64
}

func (m *markLog) MarkOutboxPublished(ctx context.Context, ids []int64, at time.Time) error {
	m.mu.Lock()
	m.calls = append(m.calls, slices.Clone(ids))
	m.mu.Unlock()
	return m.DB.MarkOutboxPublished(ctx, ids, at)
}

func (m *markLog) marks() [][]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

type kafkaFixture struct {
	c     *kfake.Cluster
	bus   *kafkabus.Bus
	store *markLog
	// keyA's partition pA is led by another broker than keyB's.
	keyA, keyB string
	pA         int32
}

func newKafkaFixture(t *testing.T, publishTimeout time.Duration) *kafkaFixture {
	t.Helper()
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	bus, err := kafkabus.Open(kafkabus.Config{Brokers: c.ListenAddrs(), PublishTimeout: publishTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	if err := bus.EnsureTopics(ctx, smp.TopicOrders); err != nil {
		t.Fatal(err)
	}
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &kafkaFixture{c: c, bus: bus, store: &markLog{DB: db}}

	// Two keys on partitions of different leaders: a produce request held
	// on one broker does not hold the other's (requests on one connection
	// are answered in order).
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).Metadata(ctx, smp.TopicOrders)
	if err != nil {
		t.Fatal(err)
	}
	parts := md.Topics[smp.TopicOrders].Partitions
	part := kgo.StickyKeyPartitioner(nil).ForTopic(smp.TopicOrders)
	leader := func(key string) (int32, int32) {
		p := int32(part.Partition(&kgo.Record{Key: []byte(key)}, len(parts)))
		return p, parts[p].Leader
	}
	f.keyA = "order-a"
	var leaderA int32
	f.pA, leaderA = leader(f.keyA)
	for i := 0; f.keyB == ""; i++ {
		if _, l := leader(fmt.Sprint("order-b", i)); l != leaderA {
			f.keyB = fmt.Sprint("order-b", i)
		}
	}
	return f
}

// commit writes one event per key, each in its own transaction, ids
// e000, e001… in commit order.
func (f *kafkaFixture) commit(t *testing.T, keys ...string) {
	t.Helper()
	ctx := context.Background()
	for i, key := range keys {
		err := f.store.InTx(ctx, func(tx smp.Tx) error {
			return tx.AddEvent(ctx, smp.Event{ID: fmt.Sprintf("e%03d", i), Type: smp.EventOrderCreated, AggregateID: key, OccurredAt: time.Now()})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// roundRobin is n events' keys: keyA, keyB and two others in turn.
func (f *kafkaFixture) roundRobin(n int) []string {
	keys := []string{f.keyA, f.keyB, "order-c", "order-d"}
	events := make([]string, n)
	for i := range events {
		events[i] = keys[i%len(keys)]
	}
	return events
}

// holdFirstProduceTo holds the first produce request that carries
// partition p until release is closed (kfake's SleepControl: the other
// brokers go on serving).
func holdFirstProduceTo(t *testing.T, c *kfake.Cluster, p int32) (held chan struct{}, releaseFn func()) {
	held, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if once.Load() {
			return nil, nil, false
		}
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, pp := range tp.Partitions {
				if pp.Partition == p && once.CompareAndSwap(false, true) {
					close(held)
					c.SleepControl(func() { <-release })
					return nil, nil, false
				}
			}
		}
		return nil, nil, false
	})
	var releasing sync.Once
	releaseFn = func() { releasing.Do(func() { close(release) }) }
	t.Cleanup(releaseFn)
	return held, releaseFn
}

type reportRec struct {
	first, last int64
	err         error
}

func startRelay(t *testing.T, f *kafkaFixture, cfg outbox.Config) (*outbox.Relay, chan reportRec) {
	t.Helper()
	relay, err := outbox.New(f.store, f.bus, cfg)
	if err != nil {
		t.Fatal(err)
	}
	reports := make(chan reportRec, 1000)
	outbox.SetOnReport(relay, func(first, last int64, err error) { reports <- reportRec{first, last, err} })
	if err := relay.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { relay.Stop(context.Background()) })
	return relay, reports
}

func backlog(t *testing.T, s *markLog) int64 {
	t.Helper()
	n, _, err := s.OutboxBacklog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestRelayPipelinedMarksInAckOrder: while the first batch's produce is
// held, the relay has the next batches in flight and they are
// acknowledged; nothing is marked until the first batch is acknowledged,
// and then everything in order (the acknowledged prefix at once).
func TestRelayPipelinedMarksInAckOrder(t *testing.T) {
	f := newKafkaFixture(t, 0)
	held, release := holdFirstProduceTo(t, f.c, f.pA)
	a, b := f.keyA, f.keyB
	// Batches of 4: [a a a a] [b b b b] [b b b b].
	f.commit(t, a, a, a, a, b, b, b, b, b, b, b, b)
	all, err := f.store.FetchOutbox(context.Background(), 100)
	if err != nil || len(all) != 12 {
		t.Fatalf("outbox: %d events, %v", len(all), err)
	}
	reg := prometheus.NewRegistry()
	_, reports := startRelay(t, f, outbox.Config{BatchSize: 4, MaxInFlight: 4, PollInterval: 20 * time.Millisecond, Registerer: reg})

	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the first batch's produce never came")
	}
	// Batches 2 and 3 are acknowledged while batch 1 is held: several
	// batches in flight (one at a time, batch 2 would not even be fetched).
	acked := map[int64]bool{}
	deadline := time.After(20 * time.Second)
	for !acked[all[4].ID] || !acked[all[8].ID] {
		select {
		case r := <-reports:
			if r.err != nil {
				t.Fatalf("batch %d-%d failed: %v", r.first, r.last, r.err)
			}
			if r.first == all[0].ID {
				t.Fatal("batch 1 reported while its produce is held")
			}
			acked[r.first] = true
		case <-deadline:
			t.Fatalf("batches 2 and 3 not acknowledged while batch 1 was held (reported: %v): one batch in flight at a time", acked)
		}
	}
	if got := gaugeValue(t, reg, "smp_outbox_batches_in_flight"); got != 3 {
		t.Errorf("smp_outbox_batches_in_flight = %v while batch 1 is held, want 3", got)
	}
	// The ack of batches 2 and 3 marks nothing before batch 1's.
	if m := f.store.marks(); len(m) != 0 {
		t.Fatalf("marked %v before batch 1 was acknowledged", m)
	}
	if n := backlog(t, f.store); n != 12 {
		t.Fatalf("backlog %d before batch 1 was acknowledged, want 12", n)
	}

	release()
	wait.Until(t, 20*time.Second, "the outbox drained", func() bool { return backlog(t, f.store) == 0 })
	var marked []int64
	for _, call := range f.store.marks() {
		marked = append(marked, call...)
	}
	var want []int64
	for _, r := range all {
		want = append(want, r.ID)
	}
	if !slices.Equal(marked, want) {
		t.Fatalf("marks in this order: %v (calls %v), want %v", marked, f.store.marks(), want)
	}
	if m := f.store.marks(); len(m[0]) != 12 {
		t.Errorf("first mark covers %d events, want all 12 (batches 1-3 coalesced once batch 1 is acknowledged)", len(m[0]))
	}
}

// consumeAll reads topic from the start until want distinct event ids
// arrived and returns, per key, the event ids in the order of their first
// copy, and how many copies were duplicates.
func consumeAll(t *testing.T, c *kfake.Cluster, want int) (map[string][]string, int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(smp.TopicOrders),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[string]bool{}
	order := map[string][]string{}
	dups := 0
	for len(seen) < want {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d events arrived", len(seen), want)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			var id string
			for _, h := range r.Headers {
				if h.Key == "event_id" {
					id = string(h.Value)
				}
			}
			if seen[id] {
				dups++
				return
			}
			seen[id] = true
			order[string(r.Key)] = append(order[string(r.Key)], id)
		})
	}
	return order, dups
}

func checkKeyOrder(t *testing.T, order map[string][]string) {
	t.Helper()
	for key, ids := range order {
		if !slices.IsSorted(ids) {
			t.Errorf("key %s: first copies out of commit order: %v", key, ids)
		}
	}
}

// TestRelayFailureKeepsKeyOrder: the first batch's produce is held past
// the publish timeout while later batches (of the same keys) are in
// flight: the relay fails it, fences the producer, waits for the others,
// and starts again from the first unmarked event on a new producer. Once
// the outbox is drained the held request goes through after all (the
// broker appends what the client gave up on). A consumer sees every event,
// each key's first copies in commit order, and duplicates.
func TestRelayFailureKeepsKeyOrder(t *testing.T) {
	f := newKafkaFixture(t, time.Second)
	held, release := holdFirstProduceTo(t, f.c, f.pA)
	events := f.roundRobin(60)
	f.commit(t, events...)
	_, reports := startRelay(t, f, outbox.Config{BatchSize: 5, MaxInFlight: 4, PollInterval: 20 * time.Millisecond})
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("the first batch's produce never came")
	}
	deadline := time.After(20 * time.Second)
	for failed := false; !failed; {
		select {
		case r := <-reports:
			failed = r.err != nil
		case <-deadline:
			t.Fatal("the held batch never failed")
		}
	}
	wait.Until(t, 20*time.Second, "the outbox drained", func() bool { return backlog(t, f.store) == 0 })
	release()
	order, dups := consumeAll(t, f.c, len(events))
	checkKeyOrder(t, order)
	t.Logf("%d events, %d duplicates", len(events), dups)
}

// TestRelayRejectedBatchKeepsKeyOrder: the broker rejects a batch of
// partition pA once with a non-retryable error while several batches are
// in flight; franz-go fails the records buffered behind it. Every event
// arrives, each key's first copies in commit order.
func TestRelayRejectedBatchKeepsKeyOrder(t *testing.T) {
	f := newKafkaFixture(t, 0)
	fault := f.c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Partitions: []int32{f.pA}, Err: kerr.InvalidRecord})
	events := f.roundRobin(60)
	f.commit(t, events...)
	_, reports := startRelay(t, f, outbox.Config{BatchSize: 5, MaxInFlight: 4, PollInterval: 20 * time.Millisecond})
	order, dups := consumeAll(t, f.c, len(events))
	checkKeyOrder(t, order)
	if fault.Hits() != 1 {
		t.Fatalf("the fault hit %d times, want 1", fault.Hits())
	}
	failed := false
	for len(reports) > 0 {
		if r := <-reports; r.err != nil {
			failed = true
		}
	}
	if !failed {
		t.Fatal("no batch failed: the fault did not reach the relay")
	}
	t.Logf("%d events, %d duplicates", len(events), dups)
	wait.Until(t, 20*time.Second, "the outbox drained", func() bool { return backlog(t, f.store) == 0 })
}
