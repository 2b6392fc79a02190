package orders

import (
	"context"
	"encoding/json"

	"smp"
	"smp/bus"
)

// ConsumerGroup is the order service's group on orders.events.
const ConsumerGroup = "order-svc"

// IntakeConfig is what the order-svc consumer needs besides the service.
type IntakeConfig struct {
	// Queue receives each order committed into 02_dispatching, by
	// CreateOrder or the intake (dispatch:queue:{CITY}), which the dispatch engine drains: while no
	// engine runs, the queue grows (the runbook's LLEN signal, INC-001).
	// Nil queues nothing (the engine's sweeper still finds the orders).
	Queue smp.DispatchQueue
	// Flags: with ENABLE_AUTO_DISPATCH off, orders wait in 02_dispatching
	// for manual dispatch and are not queued (INC-001 option D); turning
	// it back on makes the engine's sweeper queue them.
	Flags smp.FlagReader
}

// SetDispatch sets where committed orders go for dispatch: each order
// CreateOrder commits (in 02_dispatching) is pushed on ic.Queue right after
// the commit, unless ENABLE_AUTO_DISPATCH is off. Set it only where the
// queue is drained (a shared Redis queue, or this process runs the
// engine); without it the engine's sweeper finds the orders.
func (s *Service) SetDispatch(ic IntakeConfig) {
	if ic.Queue == nil {
		s.dispatchTo.Store(nil)
		return
	}
	s.dispatchTo.Store(&ic)
}

// AddIntake adds the order service's consumer of orders.events to r, the
// fallback of dispatch on commit: each order.created whose order is still
// in 01_created (written by an older version, say) moves it to
// 02_dispatching, idempotently (each event applied once, recorded in the
// same transaction as the order change, so a redelivered event is
// harmless), then queues it for the engine. An order already past 01 (the
// usual case: created in 02) costs one read and records nothing. A failed
// push is not retried here: the order is safe in the database as
// 02_dispatching and the engine's sweeper queues it once the queue takes
// writes again (Redis out of memory, INC-004). ic.Queue, when set, is also
// SetDispatch's.
func (s *Service) AddIntake(r *bus.Router, ic IntakeConfig) error {
	if ic.Queue != nil {
		s.SetDispatch(ic)
	}
	return r.AddHandler(ConsumerGroup, []string{smp.TopicOrders}, bus.Events(s.intake), bus.Types(smp.EventOrderCreated), dispatchedOnCommit,
		bus.Idempotent(s.store, s.cfg.Now))
}

// dispatchedOnCommit ignores, before Idempotent's deduplication query, the
// order.created of an order committed straight into 02_dispatching (its
// event's Next says so): the fallback has nothing to do for it, and asked
// the store twice to learn that (the deduplication and the order's read).
func dispatchedOnCommit(h bus.Handler) bus.Handler {
	return func(ctx context.Context, m smp.Message) error {
		if ev, err := smp.DecodeEvent(m); err == nil && ev.Type == smp.EventOrderCreated {
			var d smp.OrderEventData
			if json.Unmarshal(ev.Data, &d) == nil && d.Next == smp.StageDispatching {
				bus.Report(ctx, bus.Ignored)
				return nil
			}
		}
		return h(ctx, m)
	}
}

func (s *Service) intake(ctx context.Context, ev smp.Event) (bus.Result, error) {
	if ev.Type != smp.EventOrderCreated {
		return bus.Skip, nil
	}
	// Created in 02 with dispatch on commit: nothing left to do, and
	// nothing to record (the stage is the record).
	if o, err := s.store.FindOrderByID(ctx, ev.AggregateID); smp.ErrorCode(err) == smp.ENOTFOUND || err == nil && o.Stage != smp.StageCreated {
		return bus.Skip, nil
	}
	// The move to 02 and the event's record: on the embedded log in the
	// transaction of the batch's offset (bus.EffectTx); the queue push
	// follows the commit.
	c := s.startDispatch()
	c.once = &processed{ConsumerGroup, ev.ID}
	var o *smp.Order
	var changed bool
	err := bus.EffectTx(ctx, s.store, func(ctx context.Context, tx smp.Tx) error {
		var err error
		o, changed, err = s.applyTx(ctx, tx, ev.AggregateID, c)
		return err
	}, func(err error) {
		if err == nil {
			s.applied(c, o, changed)
			s.enqueue(context.WithoutCancel(ctx), o)
		}
	})
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		return bus.Skip, nil // nothing to do for an order that does not exist
	}
	return bus.DoneRecorded, err
}

// enqueue hands an order in 02_dispatching to the engine's queue.
func (s *Service) enqueue(ctx context.Context, o *smp.Order) {
	ic := s.dispatchTo.Load()
	if ic == nil || o.Stage != smp.StageDispatching {
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
