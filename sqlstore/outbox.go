package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"smp"
)

// The transactional outbox (smp.OutboxStore, smp.OutboxTx).

var _ smp.OutboxStore = (*DB)(nil)
var _ smp.OutboxTx = (*Tx)(nil)

// AddEvent appends an event to the outbox. With the event log in the
// same database (SetOutboxLog) the event is also appended to the log in
// this transaction (at its end, with its other events) and its outbox row
// is written published: the relay has nothing to copy, and the row stays
// for change capture and audit until retention prunes it.
func (tx *Tx) AddEvent(ctx context.Context, e smp.Event) error {
	if err := checkSizes("add event",
		chars("event_id", e.ID, smp.MaxEventID),
		chars("event_type", e.Type, 64),
		chars("aggregate_id", e.AggregateID, 64)); err != nil {
		return err
	}
	payload, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("sqlstore: encode event: %w", err)
	}
	direct, err := tx.logDirect(ctx)
	if err != nil {
		return err
	}
	if direct {
		_, err = tx.tx.ExecContext(ctx, `INSERT INTO outbox (event_id, event_type, aggregate_id, payload, created_at, published_at) VALUES (?,?,?,?,?,?)`,
			e.ID, e.Type, e.AggregateID, string(payload), micros(e.OccurredAt), micros(tx.db.now()))
	} else {
		_, err = tx.tx.ExecContext(ctx, `INSERT INTO outbox (event_id, event_type, aggregate_id, payload, created_at) VALUES (?,?,?,?,?)`,
			e.ID, e.Type, e.AggregateID, string(payload), micros(e.OccurredAt))
	}
	if err != nil {
		return fmt.Errorf("sqlstore: add outbox event: %w", err)
	}
	if !direct {
		tx.events++
		return nil
	}
	// The message exactly as the relay sends it (outbox.messages): the
	// stored bytes, the event's id and type in headers.
	tx.pending = append(tx.pending, smp.Message{Topic: e.Topic(), Key: e.AggregateID, Value: payload,
		Headers: map[string]string{"event_id": e.ID, "event_type": e.Type}})
	return nil
}

// FetchOutbox returns unpublished events in commit order.
func (db *DB) FetchOutbox(ctx context.Context, limit int) ([]smp.OutboxRecord, error) {
	return db.FetchOutboxAfter(ctx, 0, limit)
}

// FetchOutboxAfter returns unpublished events with an id above afterID in
// commit order (the index outbox_unpublished (published_at, id) serves both).
func (db *DB) FetchOutboxAfter(ctx context.Context, afterID int64, limit int) ([]smp.OutboxRecord, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	rows, err := db.fresh().QueryContext(ctx, `SELECT id, payload, created_at FROM outbox WHERE published_at IS NULL AND id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: fetch outbox: %w", err)
	}
	defer rows.Close()
	var out []smp.OutboxRecord
	for rows.Next() {
		var r smp.OutboxRecord
		var payload string
		var at int64
		if err := rows.Scan(&r.ID, &payload, &at); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(payload), &r.Event); err != nil {
			return nil, fmt.Errorf("sqlstore: outbox %d: %w", r.ID, err)
		}
		r.Payload = []byte(payload)
		r.CreatedAt = fromMicros(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// MarkOutboxPublished marks events as handed to the bus.
func (db *DB) MarkOutboxPublished(ctx context.Context, ids []int64, at time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	args := []any{micros(at)}
	for _, id := range ids {
		args = append(args, id)
	}
	_, err := db.execWrite(ctx, `UPDATE outbox SET published_at = ? WHERE id IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("sqlstore: mark published: %w", err)
	}
	return nil
}

// OutboxBacklog returns the number of unpublished events and the oldest one's time.
func (db *DB) OutboxBacklog(ctx context.Context) (int64, time.Time, error) {
	var n int64
	var oldest sql.NullInt64
	err := db.reader().QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM outbox WHERE published_at IS NULL`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("sqlstore: outbox backlog: %w", err)
	}
	return n, fromMicros(oldest.Int64), nil
}
