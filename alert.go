package smp

import "time"

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
