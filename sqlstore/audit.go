package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"smp"
)

// The audit log (smp.AuditStore, smp.AuditTx).

var _ smp.AuditStore = (*DB)(nil)
var _ smp.AuditTx = (*Tx)(nil)

// FindAudit lists audit entries, newest first.
func (db *DB) FindAudit(ctx context.Context, f smp.AuditFilter) ([]smp.AuditEntry, error) {
	var where []string
	var args []any
	if f.Target != "" {
		where, args = append(where, "target = ?"), append(args, f.Target)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	q := `SELECT id, at, actor, role, action, target, before_state, after_state, reason FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := db.reader().QueryContext(ctx, q+fmt.Sprintf(" ORDER BY id DESC LIMIT %d", limit), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find audit: %w", err)
	}
	defer rows.Close()
	var out []smp.AuditEntry
	for rows.Next() {
		var a smp.AuditEntry
		var at int64
		if err := rows.Scan(&a.ID, &at, &a.Actor, &a.Role, &a.Action, &a.Target, &a.Before, &a.After, &a.Reason); err != nil {
			return nil, err
		}
		a.At = fromMicros(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// AddAudit records a manual action.
func (tx *Tx) AddAudit(ctx context.Context, a smp.AuditEntry) error {
	if err := checkSizes("add audit",
		chars("actor", a.Actor, 200),
		chars("role", string(a.Role), 16),
		chars("action", a.Action, 64),
		chars("target", a.Target, 200),
		text("before", a.Before, maxText),
		text("after", a.After, maxText),
		chars("reason", a.Reason, 1000)); err != nil {
		return err
	}
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO audit_log (at, actor, role, action, target, before_state, after_state, reason) VALUES (?,?,?,?,?,?,?,?)`,
		micros(a.At), a.Actor, a.Role, a.Action, a.Target, a.Before, a.After, a.Reason)
	if err != nil {
		return fmt.Errorf("sqlstore: add audit: %w", err)
	}
	return nil
}
