package sqlstore

import (
	"context"
	"fmt"
	"time"

	"smp"
)

// Events each consumer group applied (smp.ProcessedStore, smp.ProcessedTx).

var _ smp.ProcessedStore = (*DB)(nil)
var _ smp.ProcessedTx = (*Tx)(nil)

// IsProcessed reports whether consumer already handled eventID (read on
// the primary: a replica could answer no for an event just handled).
func (db *DB) IsProcessed(ctx context.Context, consumer, eventID string) (bool, error) {
	var n int
	err := db.fresh().QueryRowContext(ctx, `SELECT COUNT(*) FROM processed_events WHERE consumer = ? AND event_id = ?`, consumer, eventID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlstore: is processed: %w", err)
	}
	return n > 0, nil
}

// MarkProcessed records a consumer's handling of an event.
func (tx *Tx) MarkProcessed(ctx context.Context, consumer, eventID string, at time.Time) (bool, error) {
	if err := checkSizes("mark processed",
		chars("consumer", consumer, 64),
		chars("event_id", eventID, 64)); err != nil {
		return false, err
	}
	res, err := tx.tx.ExecContext(ctx, tx.db.dialect.InsertIgnore+` INTO processed_events (consumer, event_id, at) VALUES (?,?,?)`, consumer, eventID, micros(at))
	if err != nil {
		return false, fmt.Errorf("sqlstore: mark processed: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
