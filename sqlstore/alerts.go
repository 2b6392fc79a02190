package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"

	"smp"
)

// Alerts received from Alertmanager (smp.AlertStore).

var _ smp.AlertStore = (*DB)(nil)

// UpsertAlert records an alert by its fingerprint (the latest state wins).
func (db *DB) UpsertAlert(ctx context.Context, a *smp.Alert) error {
	labels, _ := json.Marshal(a.Labels)
	ann, _ := json.Marshal(a.Annotations)
	if err := checkSizes("upsert alert",
		chars("fingerprint", a.Fingerprint, 64),
		chars("name", a.Name, 128),
		chars("status", a.Status, 16),
		chars("severity", a.Severity, 32),
		text("labels", string(labels), maxText),
		text("annotations", string(ann), maxText)); err != nil {
		return err
	}
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
