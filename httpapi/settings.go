package httpapi

import (
	"net/http"

	"smp"
)

// Technicians' own settings: working hours, days off, travel radius.

type settingsBody struct {
	WorkStart     string   `json:"work_start"`
	WorkEnd       string   `json:"work_end"`
	WeeklyDaysOff []string `json:"weekly_days_off"`
	DaysOff       []string `json:"days_off"`
	MaxRadiusKm   float64  `json:"max_radius_km"`
}

func (b settingsBody) settings(techID string) smp.TechnicianSettings {
	return smp.TechnicianSettings{TechnicianID: techID, WorkStart: b.WorkStart, WorkEnd: b.WorkEnd, WeeklyDaysOff: b.WeeklyDaysOff,
		DaysOff: b.DaysOff, MaxRadiusKm: b.MaxRadiusKm}
}

// handleMySettings is GET /v1/technicians/me/settings.
func (s *Server) handleMySettings(w http.ResponseWriter, r *http.Request) {
	techID, err := s.owner(r, smp.OwnerTechnician)
	if err == nil && !s.engine(w, r) {
		return
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.d.Engine.Settings(r.Context(), techID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleSetMySettings is PUT /v1/technicians/me/settings: the technician
// sets their own (not audited: it is their own choice, recorded as
// updated_by).
func (s *Server) handleSetMySettings(w http.ResponseWriter, r *http.Request) {
	techID, err := s.owner(r, smp.OwnerTechnician)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var body settingsBody
	if err := decode(r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.engine(w, r) {
		return
	}
	st, err := s.d.Engine.SetSettings(r.Context(), body.settings(techID), nil, "")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleTechnicianSettings is GET /admin/technicians/{id}/settings.
func (s *Server) handleTechnicianSettings(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	if !s.engine(w, r) {
		return
	}
	st, err := s.d.Engine.Settings(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

type adminSettingsBody struct {
	settingsBody
	Reason string `json:"reason"`
}

// handleSetTechnicianSettings is PUT /admin/technicians/{id}/settings
// {..., "reason"}: ops sets them on the technician's behalf, audited.
func (s *Server) handleSetTechnicianSettings(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var body adminSettingsBody
	if err := decode(r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.d.Actions.SetTechnicianSettings(r.Context(), p, body.settings(r.PathValue("id")), body.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
