package kafkabus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"smp"
	"smp/kafkabus"
	"smp/outbox"
	"smp/sqlstore"
)

// latencies collects end-to-end latencies and reports p50/p99 and rate.
type latencies struct {
	mu   sync.Mutex
	d    []time.Duration
	want int
	done chan struct{}
}

func newLatencies(n int) *latencies { return &latencies{want: n, done: make(chan struct{})} }

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = append(l.d, d)
	if len(l.d) == l.want {
		close(l.done)
	}
}

func (l *latencies) report(b *testing.B, start time.Time) {
	select {
	case <-l.done:
	case <-time.After(2 * time.Minute):
		b.Fatalf("%d of %d messages consumed", len(l.d), l.want)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.d)
	b.ReportMetric(float64(l.want)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(l.d[len(l.d)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(l.d[len(l.d)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkEventsOutboxToConsumer: events committed to the SQLite outbox
// (one transaction each, as an order change), relayed to Kafka (kfake, 3
// brokers) and handled by a consumer group; latency is commit to handler.
func BenchmarkEventsOutboxToConsumer(b *testing.B) {
	ctx := context.Background()
	c := newCluster(b)
	bus, err := kafkabus.Open(kafkabus.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(b.TempDir(), "smp.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	relay, err := outbox.New(store, bus, outbox.Config{Signal: store.CommitSignal(), PollInterval: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	relay.Start(ctx)
	defer relay.Stop()
	lat := newLatencies(b.N)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go bus.Subscribe(cctx, "bench", []string{smp.TopicOrders}, func(_ context.Context, m smp.Message) error {
		ev, err := smp.DecodeEvent(m)
		if err != nil {
			return err
		}
		lat.add(time.Since(ev.OccurredAt))
		return nil
	})
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		data, _ := json.Marshal(smp.OrderEventData{OrderID: fmt.Sprintf("o%d", i%500), To: smp.StageCreated})
		ev := smp.Event{ID: fmt.Sprintf("e%d", i), Type: smp.EventOrderCreated, SchemaVersion: 1, AggregateID: fmt.Sprintf("o%d", i%500), OccurredAt: time.Now(), Data: data}
		if err := store.InTx(ctx, func(tx smp.Tx) error { return tx.AddEvent(ctx, ev) }); err != nil {
			b.Fatal(err)
		}
	}
	lat.report(b, start)
}

// BenchmarkEventsRawFranzGo: the reference on the same kind of cluster:
// franz-go producing records (async, acks=all, idempotent) and one
// consumer-group client consuming them; latency is produce call to poll.
func BenchmarkEventsRawFranzGo(b *testing.B) {
	c := newCluster(b)
	bus, err := kafkabus.Open(kafkabus.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	if err := bus.EnsureTopics(context.Background(), "raw"); err != nil {
		b.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer prod.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup("raw"), kgo.ConsumeTopics("raw"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(250*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close()
	lat := newLatencies(b.N)
	go func() {
		for {
			fs := cons.PollFetches(context.Background())
			if fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) { lat.add(time.Since(r.Timestamp)) })
		}
	}()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		prod.Produce(context.Background(), &kgo.Record{Topic: "raw", Key: []byte(fmt.Sprintf("o%d", i%500)), Value: []byte(`{"event_id":"x"}`), Timestamp: time.Now()}, nil)
	}
	lat.report(b, start)
}
