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

// handleAlertmanager is POST /integrations/alertmanager/webhook: firing
// and resolved alerts are recorded (GET /admin/alerts). Alertmanager
// authenticates with an admin bearer token (http_config.authorization).
func (s *Server) handleAlertmanager(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	var p alertmanagerPayload
	if err := decode(r, &p); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(p.Alerts) == 0 {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "no alerts in the payload"))
		return
	}
	now := s.cfg.Now().UTC()
	for _, a := range p.Alerts {
		if a.Fingerprint == "" || a.Labels["alertname"] == "" || (a.Status != "firing" && a.Status != "resolved") {
			s.writeError(w, r, smp.Errorf(smp.EINVALID, "each alert needs a fingerprint, an alertname label and status firing or resolved"))
			return
		}
	}
	for _, a := range p.Alerts {
		al := &smp.Alert{Fingerprint: a.Fingerprint, Name: a.Labels["alertname"], Status: a.Status, Severity: a.Labels["severity"],
			Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt, EndsAt: a.EndsAt, UpdatedAt: now}
		if err := s.d.Store.UpsertAlert(r.Context(), al); err != nil {
			s.writeError(w, r, err)
			return
		}
		s.log.Info("alert received", "alert", al.Name, "status", al.Status, "severity", al.Severity, "summary", a.Annotations["summary"])
	}
	if s.d.Status != nil {
		s.d.Status.Invalidate() // the page shows firing alerts
	}
	writeJSON(w, http.StatusOK, map[string]any{"recorded": len(p.Alerts)})
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
