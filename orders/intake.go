package orders

import (
	"context"

	"smp"
	"smp/bus"
)

// ConsumerGroup is the order service's group on orders.events.
const ConsumerGroup = "order-svc"

// AddIntake adds the order service's consumer of orders.events to r: each
// order.created moves its order to 02_dispatching, idempotently (each
// event applied once, recorded in the same transaction as the order
// change, so a redelivered event is harmless).
func (s *Service) AddIntake(r *bus.Router) error {
	return r.AddHandler(ConsumerGroup, []string{smp.TopicOrders}, bus.Events(s.intake), bus.Idempotent(s.store, s.cfg.Now))
}

func (s *Service) intake(ctx context.Context, ev smp.Event) (bus.Result, error) {
	if ev.Type != smp.EventOrderCreated {
		return bus.Skip, nil
	}
	_, err := s.StartDispatchFor(ctx, ev.AggregateID, ConsumerGroup, ev.ID)
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		return bus.Skip, nil // nothing to do for an order that does not exist
	}
	return bus.DoneRecorded, err
}
