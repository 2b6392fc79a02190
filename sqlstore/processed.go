package sqlstore

import (
	"context"
	"fmt"
	"strings"
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
		chars("event_id", eventID, smp.MaxEventID)); err != nil {
		return false, err
	}
	res, err := tx.tx.ExecContext(ctx, tx.db.dialect.InsertIgnore+` INTO processed_events (consumer, event_id, at) VALUES (?,?,?)`, consumer, eventID, micros(at))
	if err != nil {
		return false, fmt.Errorf("sqlstore: mark processed: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ProcessedAmong reports which of eventIDs consumer already handled, in one
// query (on the primary, as IsProcessed).
func (db *DB) ProcessedAmong(ctx context.Context, consumer string, eventIDs []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(eventIDs) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(eventIDs)+1)
	args = append(args, consumer)
	for _, id := range eventIDs {
		args = append(args, id)
	}
	rows, err := db.fresh().QueryContext(ctx, `SELECT event_id FROM processed_events WHERE consumer = ? AND event_id IN (`+
		strings.TrimSuffix(strings.Repeat("?,", len(eventIDs)), ",")+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: processed among: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlstore: processed among: %w", err)
		}
		out[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: processed among: %w", err)
	}
	return out, nil
}
