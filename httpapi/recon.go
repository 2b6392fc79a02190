package httpapi

import (
	"net/http"

	"smp"
	"smp/recon"
)

// The wallets' reconciliation (runbook INC-010; recon-report reads these):
//
//	GET  /admin/wallets/recon/runs?date=&status=&limit=   the runs, newest first (no rows)
//	GET  /admin/wallets/recon/runs/{id}                   one run with its rows
//	POST /admin/wallets/recon/runs {"date","reason"}      run reconciliation now (finance; audited)
//
// date is yesterday, today or YYYY-MM-DD (Asia/Ho_Chi_Minh).

func (s *Server) reconRoutes() {
	if s.d.Recon == nil {
		return
	}
	m := s.mux
	m.HandleFunc("GET /admin/wallets/recon/runs", s.can("view", s.handleReconRuns))
	m.HandleFunc("GET /admin/wallets/recon/runs/{id}", s.can("view", s.handleReconRun))
	m.HandleFunc("POST /admin/wallets/recon/runs", s.can("wallets.reconcile", s.handleRunRecon))
}

// reconDay reads a date: yesterday, today or YYYY-MM-DD; "" stays "".
func (s *Server) reconDay(date string) (string, error) {
	switch date {
	case "":
		return "", nil
	case "yesterday":
		return recon.Yesterday(s.cfg.Now()), nil
	case "today":
		return recon.Today(s.cfg.Now()), nil
	}
	if _, _, err := recon.DayBounds(date); err != nil {
		return "", smp.Errorf(smp.EINVALID, "date %q: yesterday, today or YYYY-MM-DD", date)
	}
	return date, nil
}

func (s *Server) handleReconRuns(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	limit, err := limitParam(r, 30, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	day, err := s.reconDay(q.Get("date"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st := q.Get("status")
	switch st {
	case "", smp.ReconCompleted, smp.ReconRunInconclusive, smp.ReconFailed:
	default:
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "status %q: completed, inconclusive or failed", st))
		return
	}
	runs, err := s.d.Recon.FindRuns(r.Context(), smp.ReconRunFilter{Day: day, Status: st, Limit: limit})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
}

func (s *Server) handleReconRun(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	run, err := s.d.Recon.FindRun(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

type reconRequest struct {
	Date   string `json:"date"`
	Reason string `json:"reason"`
}

// handleRunRecon is POST /admin/wallets/recon/runs: the run with its rows
// (201), whatever its verdict.
func (s *Server) handleRunRecon(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req reconRequest
	if err := decodeOptional(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Date == "" {
		req.Date = "yesterday"
	}
	day, err := s.reconDay(req.Date)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	run, err := s.d.Actions.RunReconciliation(r.Context(), p, day, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, run)
}
