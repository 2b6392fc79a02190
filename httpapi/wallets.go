package httpapi

import (
	"net/http"

	"smp"
)

// The partners' wallets (docs/wallets.md): balances and states, and the
// ledger's verification (smp ctl wallets show|verify).

func (s *Server) walletRoutes() {
	if s.d.Wallets == nil {
		return
	}
	m := s.mux
	m.HandleFunc("GET /admin/wallets", s.can("view", s.handleWallets))
	m.HandleFunc("GET /admin/wallets/verify", s.can("wallets.verify", s.handleVerifyWallets))
	m.HandleFunc("GET /admin/partners/{id}/wallet", s.can("view", s.handlePartnerWallet))
}

// handleWallets is GET /admin/wallets: every partner wallet with its
// balance, floor and state.
func (s *Server) handleWallets(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	ws, err := s.d.Wallets.FindWallets(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"wallets": ws})
}

// handlePartnerWallet is GET /admin/partners/{id}/wallet:
// {"partner_id","balance_vnd","state",...}.
func (s *Server) handlePartnerWallet(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	wl, err := s.d.Wallets.FindWallet(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wl)
}

// handleVerifyWallets is GET /admin/wallets/verify: the hash chain and
// every balance against its entries. A ledger that fails is still 200
// with "ok": false and its problems (the check ran; the CLI exits 1).
func (s *Server) handleVerifyWallets(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	v, err := s.d.Wallets.Verify(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
