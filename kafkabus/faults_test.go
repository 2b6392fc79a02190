package kafkabus_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"smp"
	"smp/bus"
	"smp/internal/wait"
	"smp/kafkabus"
)

// subscribe runs a member of group in the background until the test ends.
func subscribe(t *testing.T, b *kafkabus.Bus, group string, h smp.Handler) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := b.Subscribe(ctx, group, []string{topic}, h); err != nil && ctx.Err() == nil {
				t.Logf("subscribe %s: %v (resubscribing)", group, err)
			}
		}
	}()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return cancel
}

const topic = "orders.events"

// gauge sums the series of name in reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, _ := reg.Gather() // ContinueOnError semantics: take what was gathered
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// downBroker makes node fail every request and closes its listener, as a
// dead broker does; its partitions get new leaders among the survivors
// (what replication factor 3 gives a real cluster).
type downBroker struct {
	c    *kfake.Cluster
	node int32
	port int
	down atomic.Bool
}

func killBroker(t *testing.T, c *kfake.Cluster, node int32) *downBroker {
	t.Helper()
	_, portStr, _ := net.SplitHostPort(c.ListenAddrs()[node])
	port, _ := strconv.Atoi(portStr)
	d := &downBroker{c: c, node: node, port: port}
	d.down.Store(true)
	c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if d.down.Load() && c.CurrentNode() == d.node {
			return nil, errors.New("broker down"), true
		}
		return nil, nil, false
	})
	if err := c.RemoveNode(node); err != nil {
		t.Fatal(err)
	}
	return d
}

func (d *downBroker) restore(t *testing.T) {
	t.Helper()
	d.down.Store(false)
	if _, _, err := d.c.AddNode(d.node, d.port); err != nil {
		t.Fatal(err)
	}
}

// TestOneBrokerDown (INC-006 scenario 1): with one of three brokers gone,
// producing and consuming go on, and kafka_broker_down says 1.
func TestOneBrokerDown(t *testing.T) {
	c := newCluster(t)
	b := open(t, c, kafkabus.Config{PublishTimeout: 5 * time.Second})
	reg := prometheus.NewRegistry()
	reg.MustRegister(kafkabus.NewBrokerCollector(b, "test"))

	var mu sync.Mutex
	seen := map[string]bool{}
	subscribe(t, b, "g-one-down", func(_ context.Context, m smp.Message) error {
		mu.Lock()
		seen[string(m.Value)] = true
		mu.Unlock()
		return nil
	})
	publish := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := b.Publish(context.Background(), smp.Message{Topic: topic, Key: fmt.Sprintf("k%d", i%50), Value: []byte(strconv.Itoa(i))}); err != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
		}
	}
	allSeen := func(n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			for i := 0; i < n; i++ {
				if !seen[strconv.Itoa(i)] {
					return false
				}
			}
			return true
		}
	}
	publish(0, 100)
	wait.Until(t, 30*time.Second, "first 100 consumed", allSeen(100))
	if v := gauge(t, reg, "kafka_broker_down"); v != 0 {
		t.Fatalf("kafka_broker_down = %v with every broker up", v)
	}

	// The group coordinator is the worst broker to lose.
	d := killBroker(t, c, c.CoordinatorFor("g-one-down"))
	publish(100, 200) // every publish must succeed
	wait.Until(t, 60*time.Second, "messages published with a broker down consumed", allSeen(300))
	if v := gauge(t, reg, "kafka_broker_down"); v != 1 {
		t.Fatalf("kafka_broker_down = %v with one broker down, want 1", v)
	}
	d.restore(t)
	wait.Until(t, 30*time.Second, "kafka_broker_down back to 0", func() bool { return gauge(t, reg, "kafka_broker_down") == 0 })
	publish(300, 50)
	wait.Until(t, 30*time.Second, "messages after recovery consumed", allSeen(350))
}

// TestSlowConsumerLagThenScaleOut (INC-007 scenario 1/3): one slow member
// falls behind until kafka_consumergroup_lag passes 10000; eleven more
// members join, lag falls under 1000; of 13 members 12 share the 12
// partitions and the extra one stays idle.
func TestSlowConsumerLagThenScaleOut(t *testing.T) {
	c := newCluster(t)
	b := open(t, c, kafkabus.Config{})
	const group = "dispatch-engine"
	reg := prometheus.NewRegistry()
	reg.MustRegister(bus.NewLagCollector(b, bus.Subscription{Group: group, Topics: []string{topic}}))
	if err := b.EnsureTopics(context.Background(), topic); err != nil {
		t.Fatal(err)
	}

	// A member handles at most 500 messages a second, whatever its partitions.
	type member struct {
		mu      sync.Mutex
		parts   map[int32]int
		handled int
	}
	var burst atomic.Bool // set for the final check
	newMember := func() *member {
		m := &member{parts: map[int32]int{}}
		tick := time.NewTicker(2 * time.Millisecond)
		t.Cleanup(tick.Stop)
		subscribe(t, b, group, func(ctx context.Context, msg smp.Message) error {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
			m.mu.Lock()
			defer m.mu.Unlock()
			m.handled++
			if burst.Load() {
				m.parts[msg.Partition]++
			}
			return nil
		})
		return m
	}

	// Producer: 3000 messages a second over 120 keys until stopped.
	pctx, stopProducing := context.WithCancel(context.Background())
	defer stopProducing()
	var produced atomic.Int64
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; pctx.Err() == nil; i++ {
			select {
			case <-tick.C:
			case <-pctx.Done():
				return
			}
			msgs := make([]smp.Message, 30)
			for j := range msgs {
				msgs[j] = smp.Message{Topic: topic, Key: fmt.Sprintf("order-%d", (i*30+j)%120), Value: []byte("x")}
			}
			if err := b.Publish(pctx, msgs...); err == nil {
				produced.Add(int64(len(msgs)))
			}
		}
	}()

	members := []*member{newMember()}
	lag := func() float64 { return gauge(t, reg, "kafka_consumergroup_lag") }
	wait.Until(t, 60*time.Second, "lag above 10000 with one slow member", func() bool { return lag() > 10000 })
	t.Logf("lag %v with one member after %d produced", lag(), produced.Load())

	for i := 0; i < 12; i++ {
		members = append(members, newMember())
	}
	peak := lag()
	wait.Until(t, 60*time.Second, "lag falling with 13 members", func() bool { return lag() < peak-2000 })
	stopProducing()
	wait.Until(t, 60*time.Second, "lag under 1000", func() bool { return lag() < 1000 })

	// Now the group is settled: one burst on every partition shows who
	// owns what.
	wait.Until(t, 30*time.Second, "lag 0", func() bool { return lag() == 0 })
	burst.Store(true)
	var msgs []smp.Message
	for k := 0; k < 240; k++ {
		msgs = append(msgs, smp.Message{Topic: topic, Key: fmt.Sprintf("burst-%d", k), Value: []byte("b")})
	}
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 30*time.Second, "burst consumed", func() bool { return lag() == 0 })
	owner := map[int32]int{}
	active := 0
	for i, m := range members {
		m.mu.Lock()
		if len(m.parts) > 0 {
			active++
		}
		for p := range m.parts {
			if prev, ok := owner[p]; ok {
				t.Errorf("partition %d consumed by members %d and %d", p, prev, i)
			}
			owner[p] = i
		}
		m.mu.Unlock()
	}
	if len(owner) != 12 || active != 12 {
		t.Fatalf("burst: %d partitions consumed by %d members; want all 12 partitions on 12 members, the 13th idle", len(owner), active)
	}
}
