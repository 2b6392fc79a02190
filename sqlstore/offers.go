package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"smp"
	"smp/internal/sqldb"
)

// The dispatch trace is written behind: waves (AddDispatchWave), sent
// offers (AddOffers) and the offer states that only describe what
// happened (an offer delivered, withdrawn or expired) queue here and are
// written in one transaction at most offerFlushDelay later, so a round's
// trace costs no fsync of its own (at high order rates offer states alone
// were a third of the engine's fsync'd transactions, docs/performance.md).
// Accepted and declined are written at once, after the pending batch, so
// the record keeps the order things happened in. Readers of the trace
// (FindDispatchTrace, pruning) flush first, and Close flushes; a crash
// loses at most the last offerFlushDelay of trace, never an order's state.
type offerBatch struct {
	mu      sync.Mutex
	pending []traceWrite
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	flushMu sync.Mutex // one flush at a time, in order
}

type offerUpdate struct {
	id    string
	state smp.InvitationState
	at    time.Time
}

// traceWrite is one pending write of the trace: a wave, sent offers, or
// an offer's state.
type traceWrite struct {
	wave   *smp.DispatchWave
	offers []smp.OfferRecord
	state  offerUpdate
}

func (w traceWrite) write(ctx context.Context, tx *sql.Tx, d Dialect) error {
	switch {
	case w.wave != nil:
		return writeWave(ctx, tx, d, *w.wave)
	case w.offers != nil:
		return writeOffers(ctx, tx, w.offers)
	}
	return w.state.write(ctx, tx)
}

// behind queues w for the next flush.
func (db *DB) behind(w traceWrite) {
	b := &db.offers
	b.mu.Lock()
	b.pending = append(b.pending, w)
	b.mu.Unlock()
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// offerFlushDelay is how long an update may wait to share a transaction.
const offerFlushDelay = 20 * time.Millisecond

func (db *DB) startOffers() {
	b := &db.offers
	b.kick, b.stop, b.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(b.done)
		for {
			select {
			case <-b.stop:
				db.flushOffers(context.Background())
				return
			case <-b.kick:
			}
			t := time.NewTimer(offerFlushDelay)
			select {
			case <-b.stop:
				t.Stop()
				db.flushOffers(context.Background())
				return
			case <-t.C:
			}
			if err := db.flushOffers(context.Background()); err != nil && db.cfg.Logger != nil {
				db.cfg.Logger.Warn("sqlstore: offer states not written yet, retrying", "err", err)
			}
		}
	}()
}

func (db *DB) stopOffers() {
	if db.offers.stop == nil {
		return
	}
	close(db.offers.stop)
	<-db.offers.done
}

// UpdateOffer records an offer's state change: delivered sets
// delivered_at (only over "sent"), a final state sets responded_at.
// Delivered, withdrawn and expired are batched (see offerBatch).
func (db *DB) UpdateOffer(ctx context.Context, invitationID string, state smp.InvitationState, at time.Time) error {
	u := offerUpdate{invitationID, state, at}
	switch state {
	case smp.InvitationDelivered, smp.InvitationWithdrawn, smp.InvitationExpired:
		db.behind(traceWrite{state: u})
		return nil
	}
	if err := db.flushOffers(ctx); err != nil {
		return err
	}
	return db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error { return u.write(ctx, tx) })
}

// flushOffers writes the pending trace in one transaction; on failure it
// stays pending, in order, for the next flush.
func (db *DB) flushOffers(ctx context.Context) error {
	b := &db.offers
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	if err := db.writeTrace(ctx, batch); err != nil {
		b.mu.Lock()
		b.pending = append(batch, b.pending...)
		b.mu.Unlock()
		return err
	}
	return nil
}

// writeTrace writes ws in one transaction. A write the database refuses
// for a constraint (an invitation recorded twice) would otherwise block
// the trace for good: then the batch is written again with a savepoint
// around each write, and the refused ones are dropped and logged.
func (db *DB) writeTrace(ctx context.Context, ws []traceWrite) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, w := range ws {
			if err := w.write(ctx, tx, db.dialect); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || !sqldb.IsConstraintViolation(err) {
		return err
	}
	return db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, w := range ws {
			if _, err := tx.ExecContext(ctx, "SAVEPOINT smp_trace"); err != nil {
				return err
			}
			if err := w.write(ctx, tx, db.dialect); err != nil {
				if !sqldb.IsConstraintViolation(err) {
					return err
				}
				if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT smp_trace"); err != nil {
					return err
				}
				db.cfg.Logger.Warn("sqlstore: dispatch trace write refused, dropped", "err", err)
			}
			if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT smp_trace"); err != nil {
				return err
			}
		}
		return nil
	})
}

func (u offerUpdate) write(ctx context.Context, tx *sql.Tx) error {
	var q string
	switch u.state {
	case smp.InvitationDelivered:
		q = `UPDATE dispatch_offers SET state = ?, delivered_at = ? WHERE invitation_id = ? AND state = 'sent'`
	case smp.InvitationWithdrawn, smp.InvitationExpired:
		// Never over an answer the technician gave.
		q = `UPDATE dispatch_offers SET state = ?, responded_at = ? WHERE invitation_id = ? AND state IN ('sent', 'delivered')`
	default:
		q = `UPDATE dispatch_offers SET state = ?, responded_at = ? WHERE invitation_id = ?`
	}
	if _, err := tx.ExecContext(ctx, q, u.state, micros(u.at), u.id); err != nil {
		return fmt.Errorf("sqlstore: update offer: %w", err)
	}
	return nil
}
