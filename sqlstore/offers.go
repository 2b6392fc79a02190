package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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
// Accepted is queued too (the assignment itself is the order's own
// transaction; its trace state was a write transaction and an fsync of its
// own). Declined is written at once, after the pending batch, so the
// record keeps the order things happened in and a decline is never lost
// (the next wave leaves the decliner out). Readers of the trace
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
// Delivered, accepted, withdrawn and expired are batched (see
// offerBatch).
func (db *DB) UpdateOffer(ctx context.Context, invitationID string, state smp.InvitationState, at time.Time) error {
	u := offerUpdate{invitationID, state, at}
	switch state {
	case smp.InvitationDelivered, smp.InvitationAccepted, smp.InvitationWithdrawn, smp.InvitationExpired:
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
		for i := 0; i < len(ws); {
			if ws[i].wave != nil || ws[i].offers != nil {
				if err := ws[i].write(ctx, tx, db.dialect); err != nil {
					return err
				}
				i++
				continue
			}
			// A run of one state (a wave's offers delivered, the losers
			// withdrawn) is one statement.
			run := []offerUpdate{ws[i].state}
			ids := map[string]bool{ws[i].state.id: true}
			for i++; i < len(ws) && ws[i].wave == nil && ws[i].offers == nil && ws[i].state.state == run[0].state && !ids[ws[i].state.id]; i++ {
				run = append(run, ws[i].state)
				ids[ws[i].state.id] = true
			}
			if err := writeStates(ctx, tx, run); err != nil {
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

// stateSQL is what an offer state's update sets and over which states.
func stateSQL(state smp.InvitationState) (col, over string) {
	switch state {
	case smp.InvitationDelivered:
		return "delivered_at", ` AND state = 'sent'`
	case smp.InvitationWithdrawn, smp.InvitationExpired:
		// Never over an answer the technician gave.
		return "responded_at", ` AND state IN ('sent', 'delivered')`
	}
	return "responded_at", ""
}

func (u offerUpdate) write(ctx context.Context, tx *sql.Tx) error {
	return writeStates(ctx, tx, []offerUpdate{u})
}

// writeStates writes updates to one state of distinct invitations in one
// statement, each with its own time.
func writeStates(ctx context.Context, tx *sql.Tx, us []offerUpdate) error {
	col, over := stateSQL(us[0].state)
	var q string
	args := []any{us[0].state}
	if len(us) == 1 {
		q = `UPDATE dispatch_offers SET state = ?, ` + col + ` = ? WHERE invitation_id = ?` + over
		args = append(args, micros(us[0].at), us[0].id)
	} else {
		var b strings.Builder
		b.WriteString(`UPDATE dispatch_offers SET state = ?, ` + col + ` = CASE invitation_id`)
		for _, u := range us {
			b.WriteString(` WHEN ? THEN ?`)
			args = append(args, u.id, micros(u.at))
		}
		b.WriteString(` END WHERE invitation_id IN (?` + strings.Repeat(`, ?`, len(us)-1) + `)` + over)
		for _, u := range us {
			args = append(args, u.id)
		}
		q = b.String()
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("sqlstore: update offer: %w", err)
	}
	return nil
}
