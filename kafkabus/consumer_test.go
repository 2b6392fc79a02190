package kafkabus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
	"smp/kafkabus"
)

// TestSlowPartitionDoesNotStallOthers: with two partitions, a handler
// blocked on partition 0 does not stop partition 1's messages from being
// handled and committed (each partition has its own worker, no barrier
// across a poll); once released, partition 0 is handled and committed too.
func TestSlowPartitionDoesNotStallOthers(t *testing.T) {
	c := newCluster(t)
	b := open(t, c, kafkabus.Config{Partitions: 2})
	const tpc = "slow.events"
	ctx := context.Background()
	if err := b.EnsureTopics(ctx, tpc); err != nil {
		t.Fatal(err)
	}
	var msgs []smp.Message
	for i := range 40 {
		msgs = append(msgs, smp.Message{Topic: tpc, Key: fmt.Sprintf("k%d", i), Value: []byte(fmt.Sprint(i))})
	}
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	offs, err := b.Offsets(ctx, "g-slow", []string{tpc})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offs {
		if o.End == 0 {
			t.Fatalf("partition %d got no message: the test needs both", o.Partition)
		}
	}
	release := make(chan struct{})
	var once sync.Once
	blocked := make(chan struct{})
	var mu sync.Mutex
	handled := map[int32]int{}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.Subscribe(sctx, "g-slow", []string{tpc}, func(ctx context.Context, m smp.Message) error {
			if m.Partition == 0 {
				once.Do(func() { close(blocked) })
				select {
				case <-release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			mu.Lock()
			handled[m.Partition]++
			mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	lag := func(p int) int64 {
		l, err := b.Lag(ctx, "g-slow", []string{tpc})
		if err != nil || len(l[tpc]) != 2 {
			return -1
		}
		return l[tpc][p]
	}
	<-blocked
	wait.Until(t, 20*time.Second, "partition 1 handled and committed while partition 0 is blocked", func() bool { return lag(1) == 0 })
	mu.Lock()
	if handled[0] != 0 {
		t.Errorf("partition 0 handled %d messages while blocked", handled[0])
	}
	mu.Unlock()
	if lag(0) == 0 {
		t.Fatal("partition 0 committed while its handler is blocked")
	}
	close(release)
	wait.Until(t, 20*time.Second, "partition 0 handled and committed once released", func() bool { return lag(0) == 0 })
}
