package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"smp"
)

// Alerts received from Alertmanager (smp.AlertStore).

var _ smp.AlertStore = (*DB)(nil)
var _ smp.AlertTx = (*Tx)(nil)

// UpsertAlert records an alert by its fingerprint (the latest state wins)
// and returns its status before ("" when new).
func (tx *Tx) UpsertAlert(ctx context.Context, a *smp.Alert) (string, error) {
	labels, _ := json.Marshal(a.Labels)
	ann, _ := json.Marshal(a.Annotations)
	if err := checkSizes("upsert alert",
		chars("fingerprint", a.Fingerprint, smp.MaxAlertFingerprint),
		chars("name", a.Name, smp.MaxAlertName),
		chars("status", a.Status, 16),
		chars("severity", a.Severity, smp.MaxAlertSeverity),
		text("labels", string(labels), maxText),
		text("annotations", string(ann), maxText)); err != nil {
		return "", err
	}
	var before string
	err := tx.tx.QueryRowContext(ctx, `SELECT status FROM alerts WHERE fingerprint = ?`+tx.db.dialect.ForUpdate, a.Fingerprint).Scan(&before)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("sqlstore: read alert: %w", err)
	}
	_, err = tx.tx.ExecContext(ctx, tx.db.dialect.Upsert("alerts", []string{"fingerprint"},
		[]string{"fingerprint", "name", "status", "severity", "labels", "annotations", "starts_at", "ends_at", "updated_at"}),
		a.Fingerprint, a.Name, a.Status, a.Severity, string(labels), string(ann), micros(a.StartsAt), micros(a.EndsAt), micros(a.UpdatedAt))
	if err != nil {
		return before, fmt.Errorf("sqlstore: upsert alert: %w", err)
	}
	return before, nil
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
