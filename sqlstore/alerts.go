package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"smp"
)

// UpsertAlert records an alert by its fingerprint (the latest state wins).
func (db *DB) UpsertAlert(ctx context.Context, a *smp.Alert) error {
	labels, _ := json.Marshal(a.Labels)
	ann, _ := json.Marshal(a.Annotations)
	return db.exec(ctx, "upsert alert", db.dialect.Upsert("alerts", []string{"fingerprint"},
		[]string{"fingerprint", "name", "status", "severity", "labels", "annotations", "starts_at", "ends_at", "updated_at"}),
		a.Fingerprint, a.Name, a.Status, a.Severity, string(labels), string(ann), micros(a.StartsAt), micros(a.EndsAt), micros(a.UpdatedAt))
}

// FindAlerts lists alerts, firing first then newest; status "" means all.
func (db *DB) FindAlerts(ctx context.Context, status string, limit int) ([]*smp.Alert, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q := `SELECT fingerprint, name, status, severity, labels, annotations, starts_at, ends_at, updated_at FROM alerts`
	var args []any
	if status != "" {
		q += ` WHERE status = ?`
		args = append(args, status)
	}
	rows, err := db.fresh().QueryContext(ctx, q+fmt.Sprintf(` ORDER BY status = 'firing' DESC, updated_at DESC LIMIT %d`, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find alerts: %w", err)
	}
	defer rows.Close()
	var out []*smp.Alert
	for rows.Next() {
		var a smp.Alert
		var labels, ann string
		var starts, ends, updated int64
		if err := rows.Scan(&a.Fingerprint, &a.Name, &a.Status, &a.Severity, &labels, &ann, &starts, &ends, &updated); err != nil {
			return nil, err
		}
		json.Unmarshal([]byte(labels), &a.Labels)
		json.Unmarshal([]byte(ann), &a.Annotations)
		a.StartsAt, a.EndsAt, a.UpdatedAt = fromMicros(starts), fromMicros(ends), fromMicros(updated)
		out = append(out, &a)
	}
	return out, rows.Err()
}

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
