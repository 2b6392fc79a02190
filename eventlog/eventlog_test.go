package eventlog_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/bustest"
	"smp/eventlog"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	bustest.Run(t, bustest.Features{MaxAttempts: 3}, func(t *testing.T) bustest.Connect {
		path := filepath.Join(t.TempDir(), "events.db")
		return func(t *testing.T) smp.EventBus {
			l, err := eventlog.Open(eventlog.Config{Path: path, Partitions: 4, MaxAttempts: 3, RetryBackoff: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}
	})
}

func TestSecondConsumerOfGroupRefused(t *testing.T) {
	t.Parallel()
	l, err := eventlog.Open(eventlog.Config{Path: filepath.Join(t.TempDir(), "e.db"), Partitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	running := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var once sync.Once
		l.Subscribe(ctx, "g", []string{"t"}, func(context.Context, smp.Message) error {
			once.Do(func() { close(running) })
			return nil
		})
	}()
	if err := l.Publish(ctx, smp.Message{Topic: "t", Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	<-running // the first consumer is registered and consuming
	if err := l.Subscribe(ctx, "g", []string{"t"}, nil); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("second subscribe = %v, want ECONFLICT", err)
	}
	cancel()
	<-done
}
