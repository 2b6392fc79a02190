package kafkabus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"smp"
	"smp/kafkabus"
)

func publishAsync(t *testing.T, b *kafkabus.Bus, msgs ...smp.Message) error {
	t.Helper()
	done := make(chan error, 1)
	b.PublishAsync(context.Background(), msgs, func(err error) { done <- err })
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("PublishAsync never reported")
		return nil
	}
}

// TestPublishAsyncFailureStopsLaterCalls: once a call failed (the broker
// refused its batch), a later call fails without appending anything until
// Resume (smp.AsyncPublisher's order contract); then it appends again. A
// message over the size limit fails its call before anything is produced.
func TestPublishAsyncFailureStopsLaterCalls(t *testing.T) {
	c := newCluster(t)
	b := open(t, c, kafkabus.Config{})
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.EnsureTopics(ctx, topic))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	must(err)
	defer cl.Close()
	appended := func() int64 {
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		must(err)
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n
	}
	msg := func(v string) smp.Message { return smp.Message{Topic: topic, Key: "k1", Value: []byte(v)} }

	fault := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.InvalidRecord})
	if err := publishAsync(t, b, msg("a")); err == nil {
		t.Fatal("a call whose batch the broker refused succeeded")
	}
	if fault.Hits() != 1 {
		t.Fatalf("fault hits %d, want 1", fault.Hits())
	}
	if err := publishAsync(t, b, msg("b")); err == nil || !strings.Contains(err.Error(), "Resume") {
		t.Fatalf("a call after a failure, before Resume: %v, want a failure", err)
	}
	if n := appended(); n != 0 {
		t.Fatalf("%d records appended before Resume, want 0", n)
	}
	must(b.Resume(ctx))
	must(publishAsync(t, b, msg("c"), msg("d")))
	if n := appended(); n != 2 {
		t.Fatalf("%d records appended after Resume, want 2", n)
	}

	big := smp.Message{Topic: topic, Key: "k1", Value: make([]byte, 1<<20)}
	if err := publishAsync(t, b, msg("e"), big); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("a call with a message of 1 MiB: %v, want EINVALID", err)
	}
	must(b.Resume(ctx))
	if n := appended(); n != 2 {
		t.Fatalf("%d records appended after the refused call, want 2 (nothing of it)", n)
	}
}

// TestPublishAsyncFenceBeforeProduce: a call that took the producing
// client, then saw it fenced (an earlier call's failure) and Resume before
// producing, produces nothing on the fenced client: it fails, nothing of
// it is appended, and the next call produces on a new client. (It used to
// produce on the client being closed: appended by a fenced producer, or
// failed by the close, by chance.)
func TestPublishAsyncFenceBeforeProduce(t *testing.T) {
	c := newCluster(t)
	b := open(t, c, kafkabus.Config{})
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.EnsureTopics(ctx, topic))
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	must(err)
	defer cl.Close()
	appended := func() int64 {
		ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		must(err)
		var n int64
		ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		return n
	}
	msg := func(v string) smp.Message { return smp.Message{Topic: topic, Key: "k1", Value: []byte(v)} }
	must(publishAsync(t, b, msg("a")))

	var hooked bool
	kafkabus.SetAfterClient(b, func() {
		if hooked {
			return
		}
		hooked = true
		kafkabus.Fence(b)
		must(b.Resume(ctx))
	})
	if err := publishAsync(t, b, msg("b")); err == nil || !strings.Contains(err.Error(), "fenced") {
		t.Fatalf("a call whose client was fenced before it produced: %v, want its failure naming the fence", err)
	}
	if n := appended(); n != 1 {
		t.Fatalf("%d records appended, want 1 (the fenced call's none)", n)
	}
	must(publishAsync(t, b, msg("c")))
	if n := appended(); n != 2 {
		t.Fatalf("%d records appended after the next call, want 2", n)
	}
}
