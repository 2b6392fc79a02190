package httpapi

import (
	"net"
	"net/http"
	"time"

	"smp"
	"smp/auth"
	"smp/catalog"
	"smp/ops"
	"smp/wallet"
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
	m.HandleFunc("POST /admin/partners/{id}/wallet/adjustments", s.can("wallets.adjust", s.handleAdjustWallet))
	m.HandleFunc("PUT /admin/partners/{id}/wallet/floor", s.can("wallets.set_floor", s.handleSetWalletFloor))
	m.HandleFunc("POST /admin/wallets/replay-webhooks", s.can("wallets.replay", s.handleReplayWebhooks))
	if s.d.PublicAPI {
		m.HandleFunc("POST /v1/partners/{id}/topups", s.handleCreateTopup)
	}
	if s.d.Integration {
		m.HandleFunc("GET /integrations/vnpay/ipn", s.handleVNPayIPN)
	}
	s.enforcementRoutes()
}

// partnerWithWallet is a partner as GET /admin/partners shows it: its
// record, its wallet's balance and floor, and both states (the partner's
// status, active or inactive; the wallet's, active or below_floor).
type partnerWithWallet struct {
	*smp.Partner
	BalanceVND  int64  `json:"balance_vnd"`
	FloorVND    *int64 `json:"floor_vnd"`
	WalletState string `json:"wallet_state"`
}

// withWallets adds each partner's wallet to what h answers (a page of
// partners, or one), where this process serves the wallets.
func (s *Server) withWallets(h catalogHandler) catalogHandler {
	return func(c *catalog.Service, r *http.Request, p smp.Principal) (any, int, error) {
		v, status, err := h(c, r, p)
		if err != nil || s.d.Wallets == nil {
			return v, status, err
		}
		wallets, err := s.d.Wallets.FindWallets(r.Context())
		if err != nil {
			return nil, 0, err
		}
		byPartner := map[string]*wallet.Wallet{}
		for _, w := range wallets {
			byPartner[w.PartnerID] = w
		}
		add := func(item any) any {
			pt, ok := item.(*smp.Partner)
			if !ok {
				return item
			}
			out := partnerWithWallet{Partner: pt, WalletState: smp.WalletActive}
			if w := byPartner[pt.ID]; w != nil {
				out.BalanceVND, out.FloorVND, out.WalletState = w.BalanceVND, w.FloorVND, w.State
			}
			return out
		}
		switch x := v.(type) {
		case map[string]any:
			if items, ok := x["partners"].([]any); ok {
				for i := range items {
					items[i] = add(items[i])
				}
			}
		default:
			v = add(v)
		}
		return v, status, nil
	}
}

type topupRequest struct {
	AmountVND int64 `json:"amount_vnd"`
}

// handleCreateTopup is POST /v1/partners/{id}/topups {"amount_vnd": N}
// with the partner's own token, or an admin token with the admin or
// finance role: {"topup_id","txn_ref","payment_url"}.
func (s *Server) handleCreateTopup(w http.ResponseWriter, r *http.Request) {
	partner := r.PathValue("id")
	if err := s.canTopup(r, partner); err != nil {
		s.writeError(w, r, err)
		return
	}
	var req topupRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	out, err := s.d.Wallets.CreateTopupFrom(r.Context(), partner, req.AmountVND,
		wallet.Client{IP: ip, UserAgent: r.UserAgent(), DeviceID: r.Header.Get("X-Device-Id")})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// canTopup: the partner's own token, or an admin principal allowed
// wallets.topup.
func (s *Server) canTopup(r *http.Request, partner string) error {
	tok := bearer(r)
	owner, err := s.auth.Owner(r.Context(), tok, auth.KindPartner)
	if err == nil {
		if owner != partner {
			return smp.Errorf(smp.EFORBIDDEN, "a partner may top up only its own wallet")
		}
		// The partner's own admin action: from its allowlisted
		// addresses only (refusals audited).
		return s.d.Wallets.CheckPartnerIP(r.Context(), partner, clientIP(r), "topup", ops.AllowedIP)
	}
	if c := smp.ErrorCode(err); c != smp.EFORBIDDEN && c != smp.EUNAUTHORIZED {
		return err
	}
	// Not a partner's token: an admin's (the configured admin token is
	// not in the token table), or the partner-token error stands.
	p, aerr := s.auth.Admin(r.Context(), tok)
	if smp.ErrorCode(aerr) == smp.EUNAUTHORIZED && smp.ErrorCode(err) == smp.EFORBIDDEN {
		return err
	}
	err = aerr
	if err != nil {
		return err
	}
	return auth.Check(p, "wallets.topup")
}

// handleVNPayIPN is GET /integrations/vnpay/ipn: VNPay's payment
// notification, answered {"RspCode","Message"} with HTTP 200 whatever the
// code (the protocol's shape, not SMP's error body). An internal failure
// (99) is logged here, once, without the parameters.
func (s *Server) handleVNPayIPN(w http.ResponseWriter, r *http.Request) {
	ans, err := s.d.Wallets.HandleIPN(r.Context(), r.URL.Query())
	if err != nil {
		s.log.Error("vnpay ipn: not applied", "rsp_code", ans.RspCode, "err", err)
	}
	writeJSON(w, http.StatusOK, ans)
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

type adjustRequest struct {
	ID              string `json:"id"`
	AmountVND       int64  `json:"amount_vnd"`
	Reason          string `json:"reason"`
	ExpectedDiffVND *int64 `json:"expected_diff_vnd"`
}

// handleAdjustWallet is POST /admin/partners/{id}/wallet/adjustments
// {"amount_vnd": ±N, "reason", "expected_diff_vnd"?, "id"?} (finance;
// ops.AdjustWallet): 201 with the entry, 200 for a repeated id.
func (s *Server) handleAdjustWallet(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req adjustRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := s.d.Actions.AdjustWallet(r.Context(), p, req.ID, r.PathValue("id"), req.AmountVND, req.Reason, req.ExpectedDiffVND)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if out.Duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, out)
}

type floorRequest struct {
	FloorVND *int64 `json:"floor_vnd"`
	Reason   string `json:"reason"`
}

// handleSetWalletFloor is PUT /admin/partners/{id}/wallet/floor
// {"floor_vnd", "reason"} (finance; ops.SetWalletFloor).
func (s *Server) handleSetWalletFloor(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req floorRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.FloorVND == nil {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "floor_vnd is required"))
		return
	}
	wl, err := s.d.Actions.SetWalletFloor(r.Context(), p, r.PathValue("id"), *req.FloorVND, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wl)
}

type replayRequest struct {
	Gateway string    `json:"gateway"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Reason  string    `json:"reason"`
}

// handleReplayWebhooks is POST /admin/wallets/replay-webhooks
// {"gateway":"vnpay","from","to"} (finance; ops.ReplayWebhooks): the
// counts of applied, already present, not paid and failed top-ups.
func (s *Server) handleReplayWebhooks(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req replayRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.d.Actions.ReplayWebhooks(r.Context(), p, req.Gateway, req.From, req.To, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
