package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"smp"
)

// Idempotency-Keys of order creation (smp.IdempotencyStore,
// smp.IdempotencyTx), table idempotency_keys.

var _ smp.IdempotencyStore = (*DB)(nil)
var _ smp.IdempotencyTx = (*Tx)(nil)

// FindIdempotentRequest reads on the primary: a retry must see the first
// request's commit.
func (db *DB) FindIdempotentRequest(ctx context.Context, customerID, key string, since time.Time) (*smp.IdempotentRequest, error) {
	r := &smp.IdempotentRequest{}
	var at int64
	err := db.fresh().QueryRowContext(ctx, `SELECT customer_id, idem_key, request_hash, order_id, response, created_at FROM idempotency_keys
		WHERE customer_id = ? AND idem_key = ? AND created_at >= ?`, customerID, key, micros(since)).
		Scan(&r.CustomerID, &r.Key, &r.RequestHash, &r.OrderID, &r.Response, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "no request with this Idempotency-Key")
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: find idempotent request: %w", err)
	}
	r.CreatedAt = fromMicros(at)
	return r, nil
}

// RecordIdempotentRequest inserts r, or replaces an expired record of the
// same key, in one statement (recordIdempotentSQL). Two transactions
// recording one key: the second waits for the first's row lock (MySQL) or
// for the single writer (SQLite), then changes nothing and gets
// ECONFLICT; on MySQL the upsert takes the exclusive lock at once, so
// waiters do not deadlock as INSERT then DELETE would.
func (tx *Tx) RecordIdempotentRequest(ctx context.Context, r *smp.IdempotentRequest, expiredBefore time.Time) error {
	if err := checkSizes("record idempotent request",
		chars("customer_id", r.CustomerID, 64),
		chars("key", r.Key, smp.MaxIdempotencyKey),
		chars("request_hash", r.RequestHash, 64),
		chars("order_id", r.OrderID, 64),
		text("response", string(r.Response), maxText)); err != nil {
		return err
	}
	q, args := recordIdempotentSQL(tx.db.dialect, []any{r.CustomerID, r.Key, r.RequestHash, r.OrderID, r.Response, micros(r.CreatedAt)}, micros(expiredBefore))
	res, err := tx.tx.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("sqlstore: record idempotent request: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return smp.Errorf(smp.ECONFLICT, "Idempotency-Key %q is already used", r.Key)
	}
	return nil
}
