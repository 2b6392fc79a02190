package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"smp"
)

// event_log: provider webhooks, stored before they are acknowledged and
// processed later (the runbook's MongoDB event_log, kept in SQL so that a
// payment and its event commit together): smp.InboxStore, smp.InboxTx.

var _ smp.InboxStore = (*DB)(nil)
var _ smp.InboxTx = (*Tx)(nil)

const inboxCols = `event_id, provider, event_type, order_id, amount_vnd, occurred_at, body_sha256, body, status, attempts,
	last_error, received_at, next_attempt_at, processed_at`

func scanInbox(row scanner) (*smp.InboxEvent, error) {
	var e smp.InboxEvent
	var occurred, received, next int64
	var processed sql.NullInt64
	if err := row.Scan(&e.EventID, &e.Provider, &e.EventType, &e.OrderID, &e.AmountVND, &occurred, &e.BodyHash, &e.Body, &e.Status,
		&e.Attempts, &e.LastError, &received, &next, &processed); err != nil {
		return nil, err
	}
	e.OccurredAt, e.ReceivedAt, e.NextAttemptAt = fromMicros(occurred), fromMicros(received), fromMicros(next)
	if processed.Valid {
		t := fromMicros(processed.Int64)
		e.ProcessedAt = &t
	}
	return &e, nil
}

// InsertInboxEvent stores a received provider event. If one with the same
// id exists it is returned with inserted false (the caller compares body
// hashes: same body is a duplicate, another body a conflict).
func (db *DB) InsertInboxEvent(ctx context.Context, e *smp.InboxEvent) (existing *smp.InboxEvent, inserted bool, err error) {
	if inserted, err = insertInbox(ctx, execFunc(db.execWrite), db.dialect, e); err != nil || inserted {
		return nil, inserted, err
	}
	existing, err = db.FindInboxEvent(ctx, e.EventID)
	return existing, false, err
}

// AddInboxEvent stores a provider event in the transaction (see
// InsertInboxEvent).
func (tx *Tx) AddInboxEvent(ctx context.Context, e *smp.InboxEvent) (existing *smp.InboxEvent, inserted bool, err error) {
	if inserted, err = insertInbox(ctx, tx.tx, tx.db.dialect, e); err != nil || inserted {
		return nil, inserted, err
	}
	existing, err = scanInbox(tx.tx.QueryRowContext(ctx, `SELECT `+inboxCols+` FROM event_log WHERE event_id = ?`+tx.db.dialect.ForUpdate, e.EventID))
	if err != nil {
		return nil, false, fmt.Errorf("sqlstore: read event_log: %w", err)
	}
	return existing, false, nil
}

type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func insertInbox(ctx context.Context, x execer, d Dialect, e *smp.InboxEvent) (bool, error) {
	if err := checkSizes("insert event_log",
		chars("event_id", e.EventID, 64),
		chars("provider", e.Provider, 32),
		chars("event_type", e.EventType, 64),
		chars("order_id", e.OrderID, 64),
		chars("body_sha256", e.BodyHash, 64),
		text("body", e.Body, maxMediumText),
		chars("status", string(e.Status), 16),
		text("last_error", e.LastError, maxText)); err != nil {
		return false, err
	}
	var processed any
	if e.ProcessedAt != nil {
		processed = micros(*e.ProcessedAt)
	}
	res, err := x.ExecContext(ctx, d.InsertIgnore+` INTO event_log (`+inboxCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		e.EventID, e.Provider, e.EventType, e.OrderID, e.AmountVND, micros(e.OccurredAt), e.BodyHash, e.Body, e.Status, e.Attempts,
		e.LastError, micros(e.ReceivedAt), micros(e.NextAttemptAt), processed)
	if err != nil {
		return false, fmt.Errorf("sqlstore: insert event_log: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// FindInboxEvent reads one event (primary: it may have just been written).
func (db *DB) FindInboxEvent(ctx context.Context, eventID string) (*smp.InboxEvent, error) {
	e, err := scanInbox(db.fresh().QueryRowContext(ctx, `SELECT `+inboxCols+` FROM event_log WHERE event_id = ?`, eventID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "event %s not found", eventID)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: read event_log: %w", err)
	}
	return e, nil
}

// DueInboxEvents lists received events whose next attempt is due.
func (db *DB) DueInboxEvents(ctx context.Context, now time.Time, limit int) ([]*smp.InboxEvent, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	return db.queryInbox(ctx, db.fresh(), `SELECT `+inboxCols+` FROM event_log WHERE status = ? AND next_attempt_at <= ? ORDER BY next_attempt_at, received_at LIMIT ?`,
		smp.InboxReceived, micros(now), limit)
}

// FindInboxEvents lists events by status, type and order, newest first.
func (db *DB) FindInboxEvents(ctx context.Context, f smp.InboxFilter) ([]*smp.InboxEvent, error) {
	var where []string
	var args []any
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.EventType != "" {
		where, args = append(where, "event_type = ?"), append(args, f.EventType)
	}
	if f.OrderID != "" {
		where, args = append(where, "order_id = ?"), append(args, f.OrderID)
	}
	q := `SELECT ` + inboxCols + ` FROM event_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 10000 {
		limit = 100
	}
	return db.queryInbox(ctx, db.fresh(), q+fmt.Sprintf(" ORDER BY received_at DESC LIMIT %d", limit), args...)
}

func (db *DB) queryInbox(ctx context.Context, q *sql.DB, query string, args ...any) ([]*smp.InboxEvent, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: query event_log: %w", err)
	}
	defer rows.Close()
	var out []*smp.InboxEvent
	for rows.Next() {
		e, err := scanInbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// CountInboxEvents counts events per status.
func (db *DB) CountInboxEvents(ctx context.Context) (map[smp.InboxStatus]int64, error) {
	rows, err := db.reader().QueryContext(ctx, `SELECT status, COUNT(*) FROM event_log GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: count event_log: %w", err)
	}
	defer rows.Close()
	out := map[smp.InboxStatus]int64{}
	for rows.Next() {
		var s smp.InboxStatus
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// InboxEventForUpdate reads and locks an event for the rest of the tx.
func (tx *Tx) InboxEventForUpdate(ctx context.Context, eventID string) (*smp.InboxEvent, error) {
	e, err := scanInbox(tx.tx.QueryRowContext(ctx, `SELECT `+inboxCols+` FROM event_log WHERE event_id = ?`+tx.db.dialect.ForUpdate, eventID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "event %s not found", eventID)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: read event_log: %w", err)
	}
	return e, nil
}

// UpdateInboxEvent writes an event's processing state.
func (tx *Tx) UpdateInboxEvent(ctx context.Context, e *smp.InboxEvent) error {
	if err := checkSizes("update event_log",
		chars("status", string(e.Status), 16),
		text("last_error", e.LastError, maxText)); err != nil {
		return err
	}
	var processed any
	if e.ProcessedAt != nil {
		processed = micros(*e.ProcessedAt)
	}
	_, err := tx.tx.ExecContext(ctx, `UPDATE event_log SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ?, processed_at = ? WHERE event_id = ?`,
		e.Status, e.Attempts, e.LastError, micros(e.NextAttemptAt), processed, e.EventID)
	if err != nil {
		return fmt.Errorf("sqlstore: update event_log: %w", err)
	}
	return nil
}
