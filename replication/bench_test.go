package replication

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"smp"
	"smp/sqlstore"
)

// latencies collects change → applied latencies by key.
type latencies struct {
	mu    sync.Mutex
	sent  map[string]time.Time
	took  []time.Duration
	done  chan struct{}
	want  int
	count int
}

func newLatencies(want int) *latencies {
	return &latencies{sent: map[string]time.Time{}, done: make(chan struct{}), want: want}
}

func (l *latencies) send(key string) {
	l.mu.Lock()
	l.sent[key] = time.Now()
	l.mu.Unlock()
}

// arrived counts key's first arrival; the last one closes done.
func (l *latencies) arrived(key string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	t0, ok := l.sent[key]
	if !ok {
		return
	}
	delete(l.sent, key)
	l.took = append(l.took, now.Sub(t0))
	if l.count++; l.count == l.want {
		close(l.done)
	}
}

func (l *latencies) report(b *testing.B, elapsed time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slices.Sort(l.took)
	q := func(p float64) float64 {
		return float64(l.took[int(p*float64(len(l.took)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(l.count)/elapsed.Seconds(), "changes/s")
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// benchRate is a master-data change as the owner region's relay puts it
// on masterdata.currency_rates: a rate of its own key (USD/VND/<date>),
// version 1.
func benchRate(i int) (key string, value []byte) {
	date := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i).Format("2006-01-02")
	key = "USD/VND/" + date
	value = fmt.Appendf(nil, `{"event_id":"bench-%d","event_type":"masterdata.currency_rates.changed","schema_version":1,"aggregate_id":%q,"data":`+
		`{"table":"currency_rates","key":%q,"fields":{"from_currency":"USD","to_currency":"VND","rate_date":%q,"rate":"25410.5"},"version":1,"region":"global","schema_version":1}}`,
		i, key, key, date)
	return key, value
}

// publishAll sends n changes from global, from 8 writers, as fast as they
// are acknowledged, noting each one's send time.
func publishAll(b *testing.B, n int, next *atomic.Int64, lat *latencies, publish func(key string, value []byte) error) {
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(n))
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				key, value := benchRate(int(next.Add(1)))
				lat.send(key)
				if err := publish(key, value); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// warm sends changes, one a second, until one arrives: the consumers are
// in place (their groups joined) before the clock starts.
func warm(b *testing.B, cur *atomic.Pointer[latencies], next *atomic.Int64, publish func(key string, value []byte) error) {
	probe := newLatencies(1)
	cur.Store(probe)
	for {
		key, value := benchRate(int(next.Add(1)))
		probe.send(key)
		if err := publish(key, value); err != nil {
			b.Fatal(err)
		}
		select {
		case <-probe.done:
			return
		case <-time.After(time.Second):
		}
	}
}

// BenchmarkReplication: master-data changes replicated per second and
// change → applied p50/p99 between two Kafka clusters (kfake, one broker,
// three partitions each): smp is the agent (global → china: consume,
// guard, produce as global.masterdata.currency_rates with its checkpoint,
// consume on china, guard again, offset sync, apply once in china's
// SQLite store); franz-go is the floor, a bare group consumer on global
// producing each record to china and a consumer there, between the same
// clusters in the same run. Each op is one change; run it with a fixed
// count (-benchtime 2000x) so both do the same work:
//
//	go test ./replication -run '^$' -bench BenchmarkReplication -benchtime 2000x
func BenchmarkReplication(b *testing.B) {
	ctx := context.Background()
	global, china := kafkaCluster(b), kafkaCluster(b)
	globalBus, chinaBus := kafkaBus(b, global), kafkaBus(b, china)
	chinaDB, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(b.TempDir(), "china.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { chinaDB.Close() })
	var next atomic.Int64

	b.Run("smp", func(b *testing.B) {
		g, _ := NewGuard(nil, nil)
		a, err := NewAgent(AgentConfig{Source: "global", Target: "china", SourceBus: globalBus, TargetBus: chinaBus, TargetStore: chinaDB, Guard: g, Agents: 1})
		if err != nil {
			b.Fatal(err)
		}
		var cur atomic.Pointer[latencies]
		a.applied = func(ev smp.MasterDataEvent, _ bool) { cur.Load().arrived(ev.Key) }
		if err := a.Start(ctx); err != nil {
			b.Fatal(err)
		}
		defer a.Stop(ctx)
		publish := func(key string, value []byte) error {
			return globalBus.Publish(ctx, smp.Message{Topic: "masterdata.currency_rates", Key: key, Value: value})
		}
		warm(b, &cur, &next, publish)
		lat := newLatencies(b.N)
		cur.Store(lat)
		b.ResetTimer()
		start := time.Now()
		publishAll(b, b.N, &next, lat, publish)
		<-lat.done
		elapsed := time.Since(start)
		b.StopTimer()
		lat.report(b, elapsed)
	})

	b.Run("franz-go", func(b *testing.B) {
		const topic = "bench.raw"
		if err := globalBus.EnsureTopics(ctx, topic); err != nil {
			b.Fatal(err)
		}
		if err := chinaBus.EnsureTopics(ctx, "global."+topic); err != nil {
			b.Fatal(err)
		}
		client := func(c []string, opts ...kgo.Opt) *kgo.Client {
			cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c...)}, opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			return cl
		}
		prod := client(global.ListenAddrs())
		defer prod.Close()
		to := client(china.ListenAddrs())
		defer to.Close()
		from := client(global.ListenAddrs(), kgo.ConsumerGroup(fmt.Sprintf("raw-mirror-%d", b.N)), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
		defer from.Close()
		sink := client(china.ListenAddrs(), kgo.ConsumeTopics("global."+topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
		defer sink.Close()
		var cur atomic.Pointer[latencies]
		cctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer func() { cancel(); wg.Wait() }()
		wg.Add(2)
		go func() { // the mirror: consume on global, produce to china
			defer wg.Done()
			for cctx.Err() == nil {
				fs := from.PollFetches(cctx)
				var recs []*kgo.Record
				fs.EachRecord(func(r *kgo.Record) {
					recs = append(recs, &kgo.Record{Topic: "global." + topic, Key: r.Key, Value: r.Value})
				})
				if len(recs) > 0 {
					if err := to.ProduceSync(cctx, recs...).FirstErr(); err != nil && cctx.Err() == nil {
						b.Error(err)
					}
				}
			}
		}()
		go func() { // the target's consumer
			defer wg.Done()
			for cctx.Err() == nil {
				sink.PollFetches(cctx).EachRecord(func(r *kgo.Record) { cur.Load().arrived(string(r.Key)) })
			}
		}()
		publish := func(key string, value []byte) error {
			return prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte(key), Value: value}).FirstErr()
		}
		warm(b, &cur, &next, publish)
		lat := newLatencies(b.N)
		cur.Store(lat)
		b.ResetTimer()
		start := time.Now()
		publishAll(b, b.N, &next, lat, publish)
		<-lat.done
		elapsed := time.Since(start)
		b.StopTimer()
		lat.report(b, elapsed)
	})
}
