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

// AlertStore keeps the alerts Alertmanager delivered, one per fingerprint.
type AlertStore interface {
	// UpsertAlert records an alert by its fingerprint; the latest state
	// wins. No codes.
	UpsertAlert(ctx context.Context, a *Alert) error
	// FindAlerts lists alerts with status ("" for all), firing first then
	// most recently updated. A limit of 0, negative or above 1000 means
	// 100. No codes.
	FindAlerts(ctx context.Context, status string, limit int) ([]*Alert, error)
}
