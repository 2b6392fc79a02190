package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"smp"
)

// Offer states that only describe what happened (an offer delivered,
// withdrawn or expired) are written in batches: at high order rates they
// were a third of the engine's fsync'd transactions (docs/performance.md).
// Accepted and declined are written at once, after the pending batch, so
// the record keeps the order things happened in. Readers of the trace
// flush first, and Close flushes.
type offerBatch struct {
	mu      sync.Mutex
	pending []offerUpdate
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
		b := &db.offers
		b.mu.Lock()
		b.pending = append(b.pending, u)
		b.mu.Unlock()
		select {
		case b.kick <- struct{}{}:
		default:
		}
		return nil
	}
	if err := db.flushOffers(ctx); err != nil {
		return err
	}
	return db.writeOffers(ctx, []offerUpdate{u})
}

// flushOffers writes the pending updates in one transaction; on failure
// they stay pending, in order, for the next flush.
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
	if err := db.writeOffers(ctx, batch); err != nil {
		b.mu.Lock()
		b.pending = append(batch, b.pending...)
		b.mu.Unlock()
		return err
	}
	return nil
}

func (db *DB) writeOffers(ctx context.Context, us []offerUpdate) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: update offers: %w", err)
	}
	defer tx.Rollback()
	for _, u := range us {
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
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: update offers: %w", err)
	}
	return nil
}
