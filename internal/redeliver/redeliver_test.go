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
