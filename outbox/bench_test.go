package outbox_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"smp"
	"smp/kafkabus"
	"smp/outbox"
	"smp/sqlstore"
)

// BenchmarkRelayDrain drains a backlog of 20,000 events from a SQLite
// store through the relay into Kafka (kfake, three brokers), with one
// batch in flight (the relay before issue 22's pipelining) and with four:
//
//	go test -run '^$' -bench RelayDrain -benchtime 3x ./outbox/
func BenchmarkRelayDrain(b *testing.B) {
	for _, inFlight := range []int{1, 4} {
		b.Run(fmt.Sprintf("inflight=%d", inFlight), func(b *testing.B) {
			benchDrain(b, inFlight, 20000)
		})
	}
}

func benchDrain(b *testing.B, inFlight, backlog int) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	bus, err := kafkabus.Open(kafkabus.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	if err := bus.EnsureTopics(ctx, smp.TopicOrders); err != nil {
		b.Fatal(err)
	}
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(b.TempDir(), "smp.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	relay, err := outbox.New(store, bus, outbox.Config{MaxInFlight: inFlight})
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(`{"order_id":"o","city":"HCM","service":"aircon","from":"01_created","to":"02_dispatching","actor":"customer:c1"}`)
	var total time.Duration
	seq := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		err := store.InTx(ctx, func(tx smp.Tx) error {
			for range backlog {
				seq++
				e := smp.Event{ID: fmt.Sprintf("evt_%08d", seq), Type: smp.EventOrderDispatching, SchemaVersion: 1,
					AggregateID: fmt.Sprintf("ord_%04d", seq%1000), OccurredAt: time.Now(), Data: data}
				if err := tx.AddEvent(ctx, e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		for moved := 0; moved < backlog; {
			n, err := relay.Flush(ctx)
			if err != nil {
				b.Fatal(err)
			}
			moved += n
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(backlog*b.N)/total.Seconds(), "events/s")
}
