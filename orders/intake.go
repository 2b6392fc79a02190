package orders

import (
	"context"
	"log/slog"
	"time"

	"smp"
)

// ConsumerGroup is the order service's group on orders.events.
const ConsumerGroup = "order-svc"

// Consume runs the order service's intake until ctx is done: each
// order.created moves its order to 02_dispatching (idempotently, so a
// redelivered event is harmless).
func (s *Service) Consume(ctx context.Context, bus smp.EventBus, log *slog.Logger) {
	for ctx.Err() == nil {
		err := bus.Subscribe(ctx, ConsumerGroup, []string{smp.TopicOrders}, func(ctx context.Context, m smp.Message) error {
			ev, err := smp.DecodeEvent(m)
			if err != nil {
				return err
			}
			if ev.Type != smp.EventOrderCreated {
				return nil
			}
			_, err = s.StartDispatch(ctx, ev.AggregateID)
			if smp.ErrorCode(err) == smp.ENOTFOUND {
				return nil // nothing to do for an order that does not exist
			}
			return err
		})
		if ctx.Err() == nil {
			log.Error("orders: intake subscription ended; resubscribing", "err", err)
			smp.Sleep(ctx, time.Second)
		}
	}
}
