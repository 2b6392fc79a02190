package orders

import (
	"context"
	"log/slog"
	"time"

	"smp"
	"smp/consumer"
)

// ConsumerGroup is the order service's group on orders.events.
const ConsumerGroup = "order-svc"

// Consume runs the order service's intake until ctx is done: each
// order.created moves its order to 02_dispatching (idempotently, so a
// redelivered event is harmless: each event is applied once, recorded in
// the same transaction as the order change).
func (s *Service) Consume(ctx context.Context, bus smp.EventBus, m *consumer.Metrics, log *slog.Logger) {
	h := consumer.Idempotent(s.store, ConsumerGroup, m, s.cfg.Now, func(ctx context.Context, ev smp.Event) (consumer.Result, error) {
		if ev.Type != smp.EventOrderCreated {
			return consumer.Skip, nil
		}
		_, err := s.StartDispatchFor(ctx, ev.AggregateID, ConsumerGroup, ev.ID)
		if smp.ErrorCode(err) == smp.ENOTFOUND {
			return consumer.Skip, nil // nothing to do for an order that does not exist
		}
		return consumer.DoneRecorded, err
	})
	for ctx.Err() == nil {
		err := bus.Subscribe(ctx, ConsumerGroup, []string{smp.TopicOrders}, h)
		if ctx.Err() == nil {
			log.Error("orders: intake subscription ended; resubscribing", "err", err)
			smp.Sleep(ctx, time.Second)
		}
	}
}
