package bus

import (
	"context"
	"log/slog"
	"time"

	"smp"
)

// Publisher is what the poison middleware needs of a bus.
type Publisher interface {
	Publish(ctx context.Context, msgs ...smp.Message) error
}

// Poison turns a message whose handler still fails (after Retry, which it
// wraps) into a dead letter on <topic>.dlq (see DeadLetter) and
// acknowledges it, so its partition keeps flowing. The dead letter is
// published until it succeeds or ctx ends; in that case (and when ctx
// ended during the attempts) the error is returned and the message is not
// acknowledged.
func Poison(pub Publisher, log *slog.Logger) Middleware {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(h Handler) Handler {
		return func(ctx context.Context, m smp.Message) error {
			err := h(ctx, m)
			if err == nil || ctx.Err() != nil {
				return err
			}
			d := deliveryOf(ctx)
			dlq := DeadLetter(m, d.group, err.Error(), max(d.attempts, 1))
			for {
				perr := pub.Publish(ctx, dlq)
				if perr == nil {
					log.Error("event dead-lettered", "group", d.group, "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "dlq", dlq.Topic, "err", err)
					d.outcome = DeadLettered
					return nil
				}
				if ctx.Err() != nil {
					return err
				}
				log.Warn("dead-letter publish failed; retrying", "dlq", dlq.Topic, "err", perr)
				if !smp.Sleep(ctx, time.Second) {
					return err
				}
			}
		}
	}
}
