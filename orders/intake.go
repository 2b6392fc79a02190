package orders

import (
	"context"

	"smp"
	"smp/bus"
)

// ConsumerGroup is the order service's group on orders.events.
const ConsumerGroup = "order-svc"

// IntakeConfig is what the order-svc consumer needs besides the service.
type IntakeConfig struct {
	// Queue receives each order the intake commits into 02_dispatching
	// (dispatch:queue:{CITY}), which the dispatch engine drains: while no
	// engine runs, the queue grows (the runbook's LLEN signal, INC-001).
	// Nil queues nothing (the engine's sweeper still finds the orders).
	Queue smp.DispatchQueue
	// Flags: with ENABLE_AUTO_DISPATCH off, orders wait in 02_dispatching
	// for manual dispatch and are not queued (INC-001 option D); turning
	// it back on makes the engine's sweeper queue them.
	Flags smp.FlagReader
}

// AddIntake adds the order service's consumer of orders.events to r: each
// order.created moves its order to 02_dispatching, idempotently (each
// event applied once, recorded in the same transaction as the order
// change, so a redelivered event is harmless), then queues it for the
// engine. A failed push is not retried here: the order is safe in the
// database as 02_dispatching and the engine's sweeper queues it once the
// queue takes writes again (Redis out of memory, INC-004).
func (s *Service) AddIntake(r *bus.Router, ic IntakeConfig) error {
	s.intakeCfg = ic
	return r.AddHandler(ConsumerGroup, []string{smp.TopicOrders}, bus.Events(s.intake), bus.Types(smp.EventOrderCreated), bus.Idempotent(s.store, s.cfg.Now))
}

func (s *Service) intake(ctx context.Context, ev smp.Event) (bus.Result, error) {
	if ev.Type != smp.EventOrderCreated {
		return bus.Skip, nil
	}
	o, err := s.StartDispatchFor(ctx, ev.AggregateID, ConsumerGroup, ev.ID)
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		return bus.Skip, nil // nothing to do for an order that does not exist
	}
	if err != nil {
		return bus.DoneRecorded, err
	}
	s.enqueue(ctx, o)
	return bus.DoneRecorded, nil
}

// enqueue hands an order in 02_dispatching to the engine's queue.
func (s *Service) enqueue(ctx context.Context, o *smp.Order) {
	ic := s.intakeCfg
	if ic.Queue == nil || o.Stage != smp.StageDispatching {
		return
	}
	if ic.Flags != nil && !ic.Flags.Enabled(smp.FlagEnableAutoDispatch) {
		s.cfg.Logger.Info("auto dispatch disabled; order waits for manual dispatch", "order_id", o.ID)
		return
	}
	if err := ic.Queue.Push(ctx, o.City, o.ID); err != nil {
		s.queueFailures.Inc()
		s.cfg.Logger.Warn("orders: queue push failed; the engine's sweeper will queue the order", "order_id", o.ID,
			"queue", smp.QueueKey(o.City), "err", err)
	}
}
