package fraud_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/bus"
	"smp/fraud"
	"smp/inmem"
	"smp/sqlbus"
	"smp/wallet"
)

// BenchmarkDetector measures the fraud-detector on the embedded log
// (SQLite store and bus, in-process windows), beside the raw consume rate
// of the same bus in the same run:
//
//   - raw_events/s: a consumer group that only counts, draining a backlog of
//     b.N top-up requests on payments.events;
//   - events/s: the fraud-detector draining a backlog of b.N more (decode,
//     windows, every rule, the decision stored with processed_events in one
//     transaction);
//   - p50_ms, p99_ms: event → stored decision, one event at a time
//     (published, then waited for), over min(b.N, 200) events.
//
// Run short: go test -run X -bench Detector -benchtime 2000x ./fraud
func BenchmarkDetector(b *testing.B) {
	ctx := context.Background()
	store := openStore(b)
	eb, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(b.TempDir(), "events.db"), Partitions: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer eb.Close()
	partners := []string{"P001", "P002", "P003"}
	seq := 0
	publish := func(n int, at func() time.Time) {
		msgs := make([]smp.Message, 0, n)
		for range n {
			seq++
			p := partners[seq%len(partners)]
			data, _ := json.Marshal(map[string]any{"topup_id": fmt.Sprint("tu_", seq), "partner_id": p, "txn_ref": fmt.Sprint("W", seq),
				"amount_vnd": 100_000 + seq%7*1_000_000, "client_ip": fmt.Sprintf("198.51.100.%d", seq%50)})
			ev := smp.Event{ID: fmt.Sprint("topup-", seq), Type: wallet.EventTopupRequested, SchemaVersion: 1, AggregateID: p, OccurredAt: at(), Data: data}
			v, _ := json.Marshal(ev)
			msgs = append(msgs, smp.Message{Topic: smp.TopicPayments, Key: p, Value: v})
		}
		for len(msgs) > 0 {
			k := min(len(msgs), 500)
			if err := eb.Publish(ctx, msgs[:k]...); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[k:]
		}
	}
	n := b.N
	publish(n, func() time.Time { return time.Now() })

	// The raw consume rate of the same bus.
	var got atomic.Int64
	done := make(chan struct{})
	rctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		eb.Subscribe(rctx, "bench-raw", []string{smp.TopicPayments}, func(ctx context.Context, m smp.Message) error {
			if got.Add(1) == int64(n) {
				close(done)
			}
			return nil
		})
	}()
	<-done
	raw := time.Since(start)
	cancel()
	wg.Wait()

	// The detector over a backlog of n more.
	var decided atomic.Int64
	var lat []time.Duration
	var mu sync.Mutex
	var want atomic.Int64
	ready := make(chan struct{}, 1)
	det, err := fraud.New(store, fraud.Config{Windows: inmem.NewFraudWindows()})
	if err != nil {
		b.Fatal(err)
	}
	det.Observed = func(d *smp.FraudDecision) {
		if decided.Add(1) == want.Load() {
			ready <- struct{}{}
		}
		mu.Lock()
		lat = append(lat, time.Since(d.OccurredAt))
		mu.Unlock()
	}
	r, err := bus.NewRouter(eb, bus.Config{})
	if err != nil {
		b.Fatal(err)
	}
	if err := det.AddIntake(r); err != nil {
		b.Fatal(err)
	}
	// The first n (already consumed raw) are this group's backlog too.
	want.Store(int64(n))
	b.ResetTimer()
	start = time.Now()
	if err := r.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer r.Stop(ctx)
	<-ready
	backlog := time.Since(start)
	b.StopTimer()

	// Latency, one event at a time.
	m := min(n, 200)
	mu.Lock()
	lat = lat[:0]
	mu.Unlock()
	for i := range m {
		want.Store(int64(n + i + 1))
		publish(1, time.Now)
		<-ready
	}
	mu.Lock()
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	mu.Unlock()
	b.ReportMetric(float64(n)/raw.Seconds(), "raw_events/s")
	b.ReportMetric(float64(n)/backlog.Seconds(), "events/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99_ms")
}
