// Package redeliver is what both event buses do with a message whose
// handler failed: hand it over again, with backoff, until it is accepted.
// Attempt limits and dead letters belong to the consumer's bus.Router.
package redeliver

import (
	"context"
	"log/slog"
	"time"

	"smp"
)

// MaxBackoff caps the wait between two deliveries.
const MaxBackoff = 5 * time.Second

// Until hands m to h until h accepts it, waiting backoff (doubled up to
// MaxBackoff) between attempts and logging each failure with attrs; false
// if ctx ended first (m is then not done and must not be committed).
func Until(ctx context.Context, log *slog.Logger, backoff time.Duration, m smp.Message, h smp.Handler, attrs ...any) bool {
	for {
		err := h(ctx, m)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn("bus: handler failed; delivering again", append(attrs, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "err", err)...)
		if !smp.Sleep(ctx, backoff) {
			return false
		}
		backoff = min(backoff*2, MaxBackoff)
	}
}

// Each adapts h to a batch handler that hands the messages over one by one
// (each with Until): what a bus that delivers batches does for Subscribe.
func Each(log *slog.Logger, backoff time.Duration, h smp.Handler, attrs ...any) smp.BatchHandler {
	return func(ctx context.Context, msgs []smp.Message) (int, error) {
		for i, m := range msgs {
			if i > 0 && smp.BatchStopped(ctx) {
				return i, nil // the bus wants what was handled committed now
			}
			if !Until(ctx, log, backoff, m, h, attrs...) {
				return i, ctx.Err()
			}
		}
		return len(msgs), nil
	}
}

// Backoff is the wait before a partition's batch is delivered again after
// its handler failed: backoff, doubled after each failure up to
// MaxBackoff, back to backoff after a success.
type Backoff struct {
	First, next time.Duration
}

// Failed returns the wait before the next attempt.
func (b *Backoff) Failed() time.Duration {
	if b.next == 0 {
		b.next = b.First
	}
	d := b.next
	b.next = min(b.next*2, MaxBackoff)
	return d
}

// OK resets the wait after a success.
func (b *Backoff) OK() { b.next = 0 }
