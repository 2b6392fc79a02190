package httpapi

import (
	"net/http"
	"time"

	"smp"
	"smp/ops"
)

// Enforcement on partners' wallets (runbook INC-011): freeze, unfreeze,
// soft block and its lift, the release or reversal of a held top-up
// (security; ops.*), the controls and held top-ups, the guard rails (readable by all, changeable by nobody), the
// large-value reports and the partners' IP allowlists.

func (s *Server) enforcementRoutes() {
	if s.d.Wallets == nil {
		return
	}
	m := s.mux
	m.HandleFunc("POST /admin/partners/{id}/wallet/freeze", s.can("wallets.freeze", s.handleFreeze))
	m.HandleFunc("POST /admin/partners/{id}/wallet/unfreeze", s.can("wallets.freeze", s.handleUnfreeze))
	m.HandleFunc("POST /admin/partners/{id}/wallet/soft-block", s.can("wallets.soft_block", s.handleSoftBlock))
	m.HandleFunc("POST /admin/partners/{id}/wallet/lift-soft-block", s.can("wallets.soft_block", s.handleLiftSoftBlock))
	m.HandleFunc("POST /admin/partners/{id}/wallet/held/{txn}/release", s.can("wallets.held", s.handleReleaseHeld))
	m.HandleFunc("POST /admin/partners/{id}/wallet/held/{txn}/reverse", s.can("wallets.held", s.handleReverseHeld))
	m.HandleFunc("GET /admin/wallets/held", s.can("view", s.handleHeldTopups))
	m.HandleFunc("GET /admin/partners/{id}/wallet/control", s.can("view", s.handleWalletControl))
	m.HandleFunc("GET /admin/wallets/controls", s.can("view", s.handleWalletControls))
	m.HandleFunc("GET /admin/wallets/guard-rails", s.can("view", s.handleGuardRails))
	m.HandleFunc("PUT /admin/wallets/guard-rails", s.can("view", s.handleChangeGuardRails))
	m.HandleFunc("GET /admin/compliance/reports", s.can("compliance.view", s.handleComplianceReports))
	m.HandleFunc("GET /admin/partners/{id}/ip-allowlist", s.can("partners.view", s.handleIPAllowlist))
	m.HandleFunc("PUT /admin/partners/{id}/ip-allowlist", s.can("partners.ip_allowlist", s.handleSetIPAllowlist))
}

type controlRequest struct {
	Reason string `json:"reason"`
	Note   string `json:"note"`
}

func (s *Server) control(act func(r *http.Request, p smp.Principal, partner string, req controlRequest) (any, error)) adminHandler {
	return func(w http.ResponseWriter, r *http.Request, p smp.Principal) {
		var req controlRequest
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		if s.d.Actions == nil {
			s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "operator actions are not served in this process"))
			return
		}
		out, err := act(r, p, r.PathValue("id"), req)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// handleFreeze is POST /admin/partners/{id}/wallet/freeze {"reason"}.
func (s *Server) handleFreeze(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	s.control(func(r *http.Request, p smp.Principal, partner string, req controlRequest) (any, error) {
		return s.d.Actions.FreezeWallet(r.Context(), p, partner, req.Reason)
	})(w, r, p)
}

// handleUnfreeze is POST /admin/partners/{id}/wallet/unfreeze {"note"}.
func (s *Server) handleUnfreeze(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	s.control(func(r *http.Request, p smp.Principal, partner string, req controlRequest) (any, error) {
		note := req.Note
		if note == "" {
			note = req.Reason
		}
		return s.d.Actions.UnfreezeWallet(r.Context(), p, partner, note)
	})(w, r, p)
}

// handleSoftBlock is POST /admin/partners/{id}/wallet/soft-block {"reason"}.
func (s *Server) handleSoftBlock(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	s.control(func(r *http.Request, p smp.Principal, partner string, req controlRequest) (any, error) {
		return s.d.Actions.SoftBlockWallet(r.Context(), p, partner, req.Reason)
	})(w, r, p)
}

// handleLiftSoftBlock is POST /admin/partners/{id}/wallet/lift-soft-block {"reason"}.
func (s *Server) handleLiftSoftBlock(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	s.control(func(r *http.Request, p smp.Principal, partner string, req controlRequest) (any, error) {
		return s.d.Actions.LiftSoftBlock(r.Context(), p, partner, req.Reason)
	})(w, r, p)
}

// handleReleaseHeld is POST
// /admin/partners/{id}/wallet/held/{txn}/release {"reason"} (security):
// the held top-up is credited, or refused by the ledger (403, the rule
// named) and left held.
func (s *Server) handleReleaseHeld(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	s.control(func(r *http.Request, p smp.Principal, partner string, req controlRequest) (any, error) {
		return s.d.Actions.ReleaseHeldTopup(r.Context(), p, partner, r.PathValue("txn"), req.Reason)
	})(w, r, p)
}

// handleReverseHeld is POST
// /admin/partners/{id}/wallet/held/{txn}/reverse {"reason"} (security):
// the held top-up is refunded to its payer through VNPay (503 when VNPay
// failed: the top-up shows refund_error; retry).
func (s *Server) handleReverseHeld(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	s.control(func(r *http.Request, p smp.Principal, partner string, req controlRequest) (any, error) {
		return s.d.Actions.ReverseHeldTopup(r.Context(), p, partner, r.PathValue("txn"), req.Reason)
	})(w, r, p)
}

// handleHeldTopups is GET /admin/wallets/held[?partner=]: the top-ups
// held or being reversed.
func (s *Server) handleHeldTopups(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	ts, err := s.d.Wallets.FindHeld(r.Context(), r.URL.Query().Get("partner"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"held": ts})
}

// handleWalletControl is GET /admin/partners/{id}/wallet/control: the
// control in force, the held top-ups and the admin users' notes.
func (s *Server) handleWalletControl(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	v, err := s.d.Wallets.FindControl(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// handleWalletControls is GET /admin/wallets/controls.
func (s *Server) handleWalletControls(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	cs, err := s.d.Wallets.FindControls(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"controls": cs})
}

// handleGuardRails is GET /admin/wallets/guard-rails: the compiled limits.
func (s *Server) handleGuardRails(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	g := smp.CompiledGuardRails()
	writeJSON(w, http.StatusOK, map[string]any{"guard_rails": g, "large_value_vnd": s.d.Wallets.LargeValueVND()})
}

type guardRailRequest struct {
	ops.GuardRailChange
	Reason string `json:"reason"`
}

// handleChangeGuardRails is PUT /admin/wallets/guard-rails: always 403,
// whoever asks (ops.ChangeGuardRails), the attempt audited.
func (s *Server) handleChangeGuardRails(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req guardRailRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.d.Actions == nil {
		s.writeError(w, r, smp.Errorf(smp.EFORBIDDEN, "the velocity guard rails are compiled in"))
		return
	}
	s.writeError(w, r, s.d.Actions.ChangeGuardRails(r.Context(), p, req.GuardRailChange, req.Reason))
}

// handleComplianceReports is GET /admin/compliance/reports
// [?partner=&from=&to=&limit=]: the large-value reports.
func (s *Server) handleComplianceReports(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	q := r.URL.Query()
	f := smp.ComplianceFilter{PartnerID: q.Get("partner")}
	for _, x := range []struct {
		name string
		to   *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(x.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				s.writeError(w, r, smp.Errorf(smp.EINVALID, "%s: an RFC 3339 time", x.name))
				return
			}
			*x.to = t
		}
	}
	n, err := limitParam(r, 1000, 10000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f.Limit = n
	rs, err := s.d.Wallets.FindComplianceReports(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"reports": rs, "threshold_vnd": s.d.Wallets.LargeValueVND()})
}

// handleIPAllowlist is GET /admin/partners/{id}/ip-allowlist.
func (s *Server) handleIPAllowlist(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	l, err := s.d.Wallets.FindIPAllowlist(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"partner_id": r.PathValue("id"), "allowlist": l})
}

type allowlistRequest struct {
	Allowlist []string `json:"allowlist"`
	Reason    string   `json:"reason"`
}

// handleSetIPAllowlist is PUT /admin/partners/{id}/ip-allowlist
// {"allowlist": ["203.0.113.0/24", …], "reason"} (security): an empty
// list allows any address.
func (s *Server) handleSetIPAllowlist(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req allowlistRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.d.Actions == nil {
		s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "operator actions are not served in this process"))
		return
	}
	l, err := s.d.Actions.SetPartnerIPAllowlist(r.Context(), p, r.PathValue("id"), req.Allowlist, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"partner_id": r.PathValue("id"), "allowlist": l})
}
