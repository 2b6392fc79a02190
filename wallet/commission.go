package wallet

import (
	"context"
	"encoding/json"

	"smp"
	"smp/bus"
)

// ConsumerGroup is the wallet's group on orders.events: it debits the
// commission of each completed order.
const ConsumerGroup = "wallet-commission"

// CommissionVND is SMP's commission on an order of priceVND at rate:
// price × basis points / 10,000, rounded down to the whole dong (the
// fraction, less than 1 VND, stays with the partner). Integers only.
func CommissionVND(priceVND int64, rate smp.BasisPoints) int64 {
	if priceVND <= 0 || rate <= 0 {
		return 0
	}
	return priceVND * int64(rate) / 10_000
}

// AddIntake adds the commission consumer of orders.events to r: each
// order.completed debits the commission from the wallet of the partner of
// the technician who did the job, exactly once however often the event is
// delivered (the event is recorded in processed_events, and the posting's
// id is commission:<order id>, in one transaction).
func (s *Service) AddIntake(r *bus.Router) error {
	return r.AddHandler(ConsumerGroup, []string{smp.TopicOrders}, bus.Events(s.HandleOrderEvent), bus.Types(smp.EventOrderCompleted), bus.Idempotent(s.store, s.cfg.Now))
}

// HandleOrderEvent is the commission consumer's effect for one event of
// orders.events (AddIntake runs it on the bus; the money-path simulation
// calls it directly): bus.Skip for other events, bus.ErrDuplicate for an
// event already recorded, bus.DoneRecorded once the commission (if any)
// and the event's record have committed, or were deferred to the commit
// of the batch's offset (bus.EffectTx).
func (s *Service) HandleOrderEvent(ctx context.Context, ev smp.Event) (bus.Result, error) {
	if ev.Type != smp.EventOrderCompleted {
		return bus.Skip, nil
	}
	var d smp.OrderEventData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return 0, smp.Errorf(smp.EINVALID, "schema mismatch: %v", err)
	}
	if d.OrderID == "" {
		d.OrderID = ev.AggregateID
	}
	p, err := s.commissionFor(ctx, d)
	if err != nil {
		return 0, err
	}
	// In a batch on the embedded log, the posting commits with the batch's
	// offset (bus.EffectTx).
	var posted Posted
	err = bus.EffectTx(ctx, s.store, func(ctx context.Context, tx smp.Tx) error {
		first, err := tx.MarkProcessed(ctx, ConsumerGroup, ev.ID, s.cfg.Now())
		if err != nil {
			return err
		}
		if !first {
			return bus.ErrDuplicate
		}
		if p == nil {
			return nil // no commission on this order (rate 0)
		}
		posted, err = s.PostTx(ctx, tx, *p, "")
		return err
	}, func(err error) {
		if p != nil && err == nil || smp.ErrorCode(err) == smp.ECONFLICT {
			s.count(smp.WalletCommission, err, posted.Duplicate)
		}
	})
	if err != nil {
		return 0, err
	}
	return bus.DoneRecorded, nil
}

// commissionFor returns the commission posting of a completed order, nil
// when there is none to take.
func (s *Service) commissionFor(ctx context.Context, d smp.OrderEventData) (*smp.Posting, error) {
	o, err := s.store.FindOrderByID(ctx, d.OrderID)
	if err != nil {
		return nil, err
	}
	tech := d.TechnicianID
	if tech == "" {
		tech = o.TechnicianID
	}
	t, err := s.store.FindTechnicianByID(ctx, tech)
	if err != nil {
		return nil, err
	}
	svc, err := s.store.FindServiceByCode(ctx, o.Service)
	if err != nil {
		return nil, err
	}
	vnd := CommissionVND(o.PriceVND, svc.Commission)
	if vnd == 0 {
		return nil, nil
	}
	return &smp.Posting{ID: "commission:" + o.ID, Type: smp.WalletCommission, PartnerID: t.PartnerID, AmountVND: -vnd, OrderID: o.ID,
		Actor: "system:" + ConsumerGroup, At: s.cfg.Now()}, nil
}

// OfferGate drops the candidates whose partner's wallet is below its
// floor: no new offers to that partner's technicians until a top-up (or
// an adjustment) brings it back. Dispatch calls it on every search.
func (s *Service) OfferGate(ctx context.Context, found []smp.Candidate) ([]smp.Candidate, error) {
	if len(found) == 0 {
		return found, nil
	}
	below, err := s.store.FindWalletsBelowFloor(ctx)
	if err != nil || len(below) == 0 {
		return found, err
	}
	blocked := map[string]bool{}
	for _, p := range below {
		blocked[p] = true
	}
	out := found[:0:0]
	for _, c := range found {
		t, err := s.store.FindTechnicianByID(ctx, c.TechnicianID)
		if err != nil {
			return nil, err
		}
		if !blocked[t.PartnerID] {
			out = append(out, c)
		}
	}
	return out, nil
}
