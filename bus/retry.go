package bus

import (
	"context"
	"log/slog"
	"time"

	"smp"
)

// RetryPolicy is how often and how patiently a message is attempted.
type RetryPolicy struct {
	MaxAttempts int           // default 5
	Backoff     time.Duration // first delay (default 100 ms), doubled after each attempt
	MaxBackoff  time.Duration // default 5 s
	Logger      *slog.Logger
}

func (p *RetryPolicy) defaults() {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
	if p.Backoff <= 0 {
		p.Backoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 5 * time.Second
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
}

// Retry attempts the handler up to MaxAttempts times, waiting Backoff
// (doubled each time, up to MaxBackoff) between attempts. It returns the
// last attempt's error, or ctx's when ctx ends while it waits.
func Retry(p RetryPolicy) Middleware {
	p.defaults()
	return func(h Handler) Handler {
		return func(ctx context.Context, m smp.Message) error {
			d := deliveryOf(ctx)
			backoff := p.Backoff
			var err error
			for attempt := 1; attempt <= p.MaxAttempts; attempt++ {
				d.attempts = attempt
				if err = h(ctx, m); err == nil {
					return nil
				}
				if ctx.Err() != nil {
					return err
				}
				p.Logger.Warn("event handler failed", "group", d.group, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "attempt", attempt, "err", err)
				if attempt < p.MaxAttempts {
					if !smp.Sleep(ctx, backoff) {
						return ctx.Err()
					}
					backoff = min(backoff*2, p.MaxBackoff)
				}
			}
			return err
		}
	}
}
