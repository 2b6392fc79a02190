package smp

import (
	"context"
	"time"
)

// Alert is a Prometheus alert as Alertmanager delivered it to SMP.
type Alert struct {
	Fingerprint string            `json:"fingerprint"`
	Name        string            `json:"name"`
	Status      string            `json:"status"` // firing or resolved
	Severity    string            `json:"severity"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      time.Time         `json:"ends_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

// The sizes of an alert's fields, checked at the edge (400) and by the
// store (EINVALID on every backend).
const (
	MaxAlertFingerprint = 64
	MaxAlertName        = 128
	MaxAlertSeverity    = 32
)

// AlertRule is one alert of SMP's Prometheus rules
// (deploy/prometheus/alerts.yml): the Alertmanager receiver accepts only
// these alerts, with these labels, and annotations these templates
// produce.
type AlertRule struct {
	Name     string
	Incident string
	Severity string
	// Component is the status-page component a firing alert degrades
	// ("" for none).
	Component string
	// State is what it degrades it to: degraded, or outage when the
	// rule's status_state label says so.
	State ComponentState
	// Labels are the rule's own labels (severity, incident, component,
	// status_state); Annotations its annotation templates ({{ … }}
	// expanded by Prometheus).
	Labels      map[string]string
	Annotations map[string]string
}

// AlertStore keeps the alerts Alertmanager delivered, one per fingerprint.
type AlertStore interface {
	// FindAlerts lists alerts with status ("" for all), firing first then
	// most recently updated. A limit of 0, negative or above 1000 means
	// 100. No codes.
	FindAlerts(ctx context.Context, status string, limit int) ([]*Alert, error)
}

// AlertTx records alerts in a transaction, with the audit entries of
// their changes.
type AlertTx interface {
	// UpsertAlert records an alert by its fingerprint (the latest state
	// wins) and returns the status it had before ("" when new). No codes.
	UpsertAlert(ctx context.Context, a *Alert) (before string, err error)
}
