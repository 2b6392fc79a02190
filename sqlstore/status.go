package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"smp"
)

// Status-page states set by ops (smp.StatusStore, smp.StatusTx).

var _ smp.StatusStore = (*DB)(nil)
var _ smp.StatusTx = (*Tx)(nil)

// FindComponentStatuses lists the status-page states ops set.
func (db *DB) FindComponentStatuses(ctx context.Context) ([]smp.ComponentStatus, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT component, state, message, updated_by, updated_at FROM status_components ORDER BY component`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find component statuses: %w", err)
	}
	defer rows.Close()
	var out []smp.ComponentStatus
	for rows.Next() {
		var cs smp.ComponentStatus
		var at int64
		if err := rows.Scan(&cs.Component, &cs.State, &cs.Message, &cs.UpdatedBy, &at); err != nil {
			return nil, err
		}
		cs.UpdatedAt = fromMicros(at)
		out = append(out, cs)
	}
	return out, rows.Err()
}

// SetComponentStatus sets a component's state, returning the previous one.
func (tx *Tx) SetComponentStatus(ctx context.Context, cs smp.ComponentStatus) (smp.ComponentStatus, error) {
	if err := checkSizes("set component status",
		chars("component", cs.Component, 32),
		chars("state", string(cs.State), 16),
		text("message", cs.Message, maxText),
		chars("updated_by", cs.UpdatedBy, 128)); err != nil {
		return smp.ComponentStatus{}, err
	}
	before := smp.ComponentStatus{Component: cs.Component, State: smp.StateOperational}
	var at int64
	err := tx.tx.QueryRowContext(ctx, `SELECT state, message, updated_by, updated_at FROM status_components WHERE component = ?`+tx.db.dialect.ForUpdate, cs.Component).
		Scan(&before.State, &before.Message, &before.UpdatedBy, &at)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return before, fmt.Errorf("sqlstore: read component status: %w", err)
	}
	before.UpdatedAt = fromMicros(at)
	_, err = tx.tx.ExecContext(ctx, tx.db.dialect.Upsert("status_components", []string{"component"}, []string{"component", "state", "message", "updated_by", "updated_at"}),
		cs.Component, cs.State, cs.Message, cs.UpdatedBy, micros(cs.UpdatedAt))
	if err != nil {
		return before, fmt.Errorf("sqlstore: set component status: %w", err)
	}
	return before, nil
}
