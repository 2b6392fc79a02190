package httpapi

import (
	"net/http"
	"strings"
	"time"

	"smp"
)

// alertmanagerPayload is Alertmanager's webhook body (version 4).
type alertmanagerPayload struct {
	Version  string `json:"version"`
	Status   string `json:"status"`
	Receiver string `json:"receiver"`
	Alerts   []struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		Fingerprint  string            `json:"fingerprint"`
		GeneratorURL string            `json:"generatorURL"`
	} `json:"alerts"`
	GroupKey          string            `json:"groupKey"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
}

// handleAlertmanager is POST /integrations/alertmanager/webhook:
// Alertmanager, with its own bearer token (SMP_ALERTMANAGER_TOKEN in its
// http_config.authorization, never an admin token), delivers firing and
// resolved alerts; ops records them all or nothing, bounded by the alert
// rules and audited (status.RecordAlerts). GET /admin/alerts lists them.
func (s *Server) handleAlertmanager(w http.ResponseWriter, r *http.Request) {
	p, err := s.auth.Alertmanager(r.Context(), bearer(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var body alertmanagerPayload
	// A group of up to status.MaxAlertsPerPost alerts: more than decode's 64 KiB.
	if err := decodeN(r, &body, bodyLimit("POST /integrations/alertmanager/webhook")); err != nil {
		s.writeError(w, r, err)
		return
	}
	alerts := make([]smp.Alert, 0, len(body.Alerts))
	for _, a := range body.Alerts {
		alerts = append(alerts, smp.Alert{Fingerprint: a.Fingerprint, Name: a.Labels["alertname"], Status: a.Status, Severity: a.Labels["severity"],
			Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: a.EndsAt})
	}
	n, err := s.d.Actions.RecordAlerts(r.Context(), p, alerts)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, a := range alerts {
		s.log.Info("alert received", "alert", a.Name, "status", a.Status, "severity", a.Severity, "fingerprint", a.Fingerprint)
	}
	writeJSON(w, http.StatusOK, map[string]any{"recorded": n})
}

// handleAlerts is GET /admin/alerts[?status=firing|resolved].
func (s *Server) handleAlerts(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	status := strings.TrimSpace(r.URL.Query().Get("status"))
	if status != "" && status != "firing" && status != "resolved" {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "status must be firing or resolved"))
		return
	}
	as, err := s.d.Store.FindAlerts(r.Context(), status, 200)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if as == nil {
		as = []*smp.Alert{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": as})
}
