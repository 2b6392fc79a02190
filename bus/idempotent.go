package bus

import (
	"context"
	"errors"
	"time"

	"smp"
)

// Store is what the idempotent consumer needs of the system of record:
// the processed_events of each group, written in a transaction.
type Store interface {
	smp.Transactor
	smp.ProcessedStore
}

// ErrDuplicate is returned by a handler that found, inside its own
// transaction (tx.MarkProcessed), that the event was already applied.
var ErrDuplicate = errors.New("event already applied")

// Result of an EventHandler.
type Result int

const (
	// Skip: the event is not this group's business; nothing is recorded.
	Skip Result = iota
	// Done: the effect happened; Idempotent records the event.
	Done
	// DoneRecorded: the effect happened and the event was recorded in the
	// effect's own transaction (tx.MarkProcessed).
	DoneRecorded
)

// EventHandler is a consumer's effect for one event.
type EventHandler func(ctx context.Context, ev smp.Event) (Result, error)

// Events adapts an EventHandler to a Handler: the message is decoded (a
// message that is no event fails with EINVALID, "schema mismatch", and
// will be dead-lettered) and the result reported to the middleware.
func Events(apply EventHandler) Handler {
	return func(ctx context.Context, m smp.Message) error {
		d := deliveryOf(ctx)
		ev, err := decode(d, m)
		if err != nil {
			return err
		}
		res, err := apply(ctx, ev)
		if errors.Is(err, ErrDuplicate) {
			d.outcome = Duplicate
			return nil
		}
		if err != nil {
			return err
		}
		switch res {
		case Skip:
			d.outcome = Ignored
		case DoneRecorded:
			d.outcome = Applied
		}
		return nil
	}
}

func decode(d *delivery, m smp.Message) (smp.Event, error) {
	if d.event != nil {
		return *d.event, nil
	}
	ev, err := smp.DecodeEvent(m)
	if err == nil {
		d.event = &ev
	}
	return ev, err
}

// Idempotent makes the handler's group apply each event once: an event
// the group already recorded in processed_events is skipped (Duplicate);
// otherwise the handler runs, and, unless it recorded the event itself in
// its effect's transaction (DoneRecorded, ErrDuplicate) or skipped it, the
// event is recorded after it succeeds. A crash between the two re-applies
// the effect once, so effects outside the database must themselves be
// idempotent; effects in the database should record the event in their own
// transaction. A failed attempt is not recorded: the retry applies it.
// In a batch (see the package comment) the query is one per batch and the
// records of Done events one transaction per batch.
func Idempotent(store Store, now func() time.Time) Middleware {
	if now == nil {
		now = time.Now
	}
	return func(h Handler) Handler {
		return func(ctx context.Context, m smp.Message) error {
			d := deliveryOf(ctx)
			ev, err := decode(d, m)
			if err != nil {
				return err
			}
			if d.batch != nil {
				return idempotentInBatch(ctx, d, store, now, h, m, ev.ID)
			}
			done, err := store.IsProcessed(ctx, d.group, ev.ID)
			if ran, err := runUnlessDone(ctx, d, done, err, h, m); !ran || err != nil {
				return err
			}
			if d.outcome != "" {
				return nil // skipped, or recorded in the effect's transaction
			}
			var first bool
			if err := store.InTx(ctx, func(tx smp.Tx) error {
				var err error
				first, err = tx.MarkProcessed(ctx, d.group, ev.ID, now())
				return err
			}); err != nil {
				return err
			}
			if first {
				d.outcome = Applied
			} else {
				d.outcome = Duplicate
			}
			return nil
		}
	}
}

// idempotentInBatch is Idempotent for a message delivered in a batch: the
// batch's one query answers whether it was applied, and a Done event is
// recorded with the others of the batch in one transaction at its end
// (before the bus commits the offset). A crash between the effect and that
// transaction re-applies the effect once, as with a single message.
func idempotentInBatch(ctx context.Context, d *delivery, store Store, now func() time.Time, h Handler, m smp.Message, id string) error {
	b := d.batch
	done, err := b.processed(ctx, store, d.group, id)
	if ran, err := runUnlessDone(ctx, d, done, err, h, m); !ran || err != nil {
		return err
	}
	switch d.outcome {
	case "":
		d.outcome = Applied
		return b.recordLater(ctx, store, d.group, id, now)
	case Applied, Duplicate: // recorded in the effect's transaction
		b.applied(id)
	}
	return nil
}

// runUnlessDone is the step both paths share: after the lookup (done,
// lookupErr), an event the group applied is a Duplicate and h does not
// run; otherwise h runs with the outcome cleared (ran is true).
func runUnlessDone(ctx context.Context, d *delivery, done bool, lookupErr error, h Handler, m smp.Message) (ran bool, err error) {
	if lookupErr != nil {
		return false, lookupErr
	}
	if done {
		d.outcome = Duplicate
		return false, nil
	}
	d.outcome = ""
	return true, h(ctx, m)
}
