package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"smp"
)

var _ smp.Locker = (*DB)(nil)

// TryLock takes a lease in the database (for singleton workers such as the
// outbox relay, which must not depend on Redis being writable).
func (db *DB) TryLock(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	now := db.now()
	exp := now.Add(ttl).UnixMilli()
	var cur string
	err := db.onWriter(ctx, func(ctx context.Context, w dbtx) error {
		if _, err := w.ExecContext(ctx, db.dialect.InsertIgnore+` INTO leases (name, owner, expires_at) VALUES (?,?,?)`, key, owner, exp); err != nil {
			return err
		}
		if _, err := w.ExecContext(ctx, `UPDATE leases SET owner = ?, expires_at = ? WHERE name = ? AND (owner = ? OR expires_at < ?)`,
			owner, exp, key, owner, now.UnixMilli()); err != nil {
			return err
		}
		return w.QueryRowContext(ctx, `SELECT owner FROM leases WHERE name = ?`, key).Scan(&cur)
	})
	return cur == owner, err
}

// Renew extends owner's unexpired lease.
func (db *DB) Renew(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	now := db.now()
	exp := now.Add(ttl).UnixMilli()
	var cur string
	var until int64
	err := db.onWriter(ctx, func(ctx context.Context, w dbtx) error {
		if _, err := w.ExecContext(ctx, `UPDATE leases SET expires_at = ? WHERE name = ? AND owner = ? AND expires_at >= ?`,
			exp, key, owner, now.UnixMilli()); err != nil {
			return err
		}
		// Rows affected differ between drivers when nothing changed: read back.
		return w.QueryRowContext(ctx, `SELECT owner, expires_at FROM leases WHERE name = ?`, key).Scan(&cur, &until)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil && cur == owner && until >= exp, err
}

// Unlock releases the lease if owner holds it.
func (db *DB) Unlock(ctx context.Context, key, owner string) error {
	_, err := db.execWrite(ctx, `UPDATE leases SET expires_at = 0 WHERE name = ? AND owner = ?`, key, owner)
	return err
}
