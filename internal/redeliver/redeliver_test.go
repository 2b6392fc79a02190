package redeliver_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"smp"
	"smp/internal/redeliver"
)

func TestUntil(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		calls := 0
		ok := redeliver.Until(context.Background(), log, time.Microsecond, smp.Message{Topic: "t"}, func(context.Context, smp.Message) error {
			calls++
			if calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if !ok || calls != 3 {
			t.Fatalf("ok=%v after %d calls, want true after 3", ok, calls)
		}
	})
	t.Run("Canceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		calls := 0
		ok := redeliver.Until(ctx, log, time.Hour, smp.Message{}, func(context.Context, smp.Message) error {
			calls++
			cancel()
			return errors.New("failed")
		})
		if ok || calls != 1 {
			t.Fatalf("ok=%v after %d calls, want false after 1", ok, calls)
		}
	})
}

func TestEach(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	var got []int64
	fails := 1
	h := redeliver.Each(log, time.Microsecond, func(_ context.Context, m smp.Message) error {
		if m.Offset == 1 && fails > 0 {
			fails--
			return errors.New("once")
		}
		got = append(got, m.Offset)
		return nil
	})
	n, err := h(context.Background(), []smp.Message{{Offset: 0}, {Offset: 1}, {Offset: 2}})
	if n != 3 || err != nil || len(got) != 3 || got[1] != 1 {
		t.Fatalf("handled %d (%v), delivered %v; want all three in order, the failing one again", n, err, got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h = redeliver.Each(log, time.Hour, func(_ context.Context, m smp.Message) error {
		if m.Offset == 1 {
			cancel()
			return errors.New("failed")
		}
		return nil
	})
	if n, err := h(ctx, []smp.Message{{Offset: 0}, {Offset: 1}, {Offset: 2}}); n != 1 || err == nil {
		t.Fatalf("cancelled on the second: handled %d (%v), want 1 and ctx's error", n, err)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	b := redeliver.Backoff{First: time.Second}
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, redeliver.MaxBackoff, redeliver.MaxBackoff} {
		if got := b.Failed(); got != want {
			t.Fatalf("Failed() = %v, want %v", got, want)
		}
	}
	b.OK()
	if got := b.Failed(); got != time.Second {
		t.Fatalf("after OK: %v, want the first delay", got)
	}
}
