package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"smp"
)

// Feature flags (smp.FlagStore, smp.FlagTx).

var _ smp.FlagStore = (*DB)(nil)
var _ smp.FlagTx = (*Tx)(nil)

// FindFlags returns every flag's value, defaults included.
func (db *DB) FindFlags(ctx context.Context) (map[string]bool, error) {
	out := make(map[string]bool, len(smp.DefaultFlags))
	for k, v := range smp.DefaultFlags {
		out[k] = v
	}
	rows, err := db.fresh().QueryContext(ctx, `SELECT name, value FROM feature_flags`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find flags: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var v bool
		if err := rows.Scan(&name, &v); err != nil {
			return nil, err
		}
		out[name] = v
	}
	return out, rows.Err()
}

// FindFlagChanges returns each set flag's last change.
func (db *DB) FindFlagChanges(ctx context.Context) (map[string]smp.FlagChange, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT name, updated_at, updated_by FROM feature_flags`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find flag changes: %w", err)
	}
	defer rows.Close()
	out := map[string]smp.FlagChange{}
	for rows.Next() {
		var name, by string
		var at int64
		if err := rows.Scan(&name, &at, &by); err != nil {
			return nil, err
		}
		out[name] = smp.FlagChange{UpdatedAt: fromMicros(at), UpdatedBy: by}
	}
	return out, rows.Err()
}

// SetFlag sets a feature flag, returning its previous value.
func (tx *Tx) SetFlag(ctx context.Context, name string, value bool, actor string, at time.Time) (bool, error) {
	if err := checkSizes("set flag",
		chars("name", name, 64),
		chars("updated_by", actor, 200)); err != nil {
		return false, err
	}
	var before bool
	err := tx.tx.QueryRowContext(ctx, `SELECT value FROM feature_flags WHERE name = ?`+tx.db.dialect.ForUpdate, name).Scan(&before)
	if errors.Is(err, sql.ErrNoRows) {
		def, known := smp.DefaultFlags[name]
		if !known {
			return false, smp.Errorf(smp.ENOTFOUND, "unknown feature flag %q", name)
		}
		before = def
	} else if err != nil {
		return false, fmt.Errorf("sqlstore: read flag: %w", err)
	}
	_, err = tx.tx.ExecContext(ctx, tx.db.dialect.Upsert("feature_flags", []string{"name"}, []string{"name", "value", "updated_at", "updated_by"}),
		name, value, micros(at), actor)
	if err != nil {
		return false, fmt.Errorf("sqlstore: set flag: %w", err)
	}
	return before, nil
}
