package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"

	"smp"
)

// FraudReader is what the fraud endpoints read: the detector's decisions
// and, for an evidence bundle, the partner's top-ups and ledger entries.
type FraudReader interface {
	smp.FraudStore
	FindTopups(ctx context.Context, f smp.TopupFilter) ([]*smp.Topup, error)
	FindWalletEntries(ctx context.Context, f smp.WalletEntryFilter) ([]*smp.WalletEntry, error)
}

func (s *Server) fraudRoutes() {
	if s.d.Fraud == nil {
		return
	}
	m := s.mux
	// The runbook's triage call (INC-011), with a bearer JWT or SMP's own
	// token: the security and admin roles.
	m.HandleFunc("GET /internal/fraud-alerts/recent", s.can("fraud.view", s.handleFraudAlerts))
	m.HandleFunc("GET /admin/fraud/decisions", s.can("fraud.view", s.handleFraudDecisions))
	m.HandleFunc("GET /admin/fraud/export", s.can("fraud.view", s.handleFraudExport))
}

// FraudAlert is one flagged partner in the window: the runbook's
// "partner_id, txn_ids, signals matched".
type FraudAlert struct {
	PartnerID string           `json:"partner_id"`
	TxnIDs    []string         `json:"txn_ids"`
	Signals   []string         `json:"signals"`
	Severity  string           `json:"severity"`
	Outcome   smp.FraudOutcome `json:"outcome"`
	Score     int              `json:"score"` // the highest decision's
	Decisions []string         `json:"decisions"`
	LastAt    time.Time        `json:"last_at"`
}

// handleFraudAlerts is GET /internal/fraud-alerts/recent?hours=N (1 by
// default, 1 to 720): the partners whose top-ups hit a rule in the last N
// hours, the most recent first.
func (s *Server) handleFraudAlerts(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	hours := 1
	if v := r.URL.Query().Get("hours"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 720 {
			s.writeError(w, r, smp.Errorf(smp.EINVALID, "hours must be a whole number between 1 and 720"))
			return
		}
		hours = n
	}
	now := s.cfg.Now()
	since := now.Add(-time.Duration(hours) * time.Hour)
	ds, err := s.d.Fraud.FindFraudDecisions(r.Context(), smp.FraudDecisionFilter{Flagged: true, From: since, Limit: 10000})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	alerts := []*FraudAlert{}
	by := map[string]*FraudAlert{}
	for _, d := range ds { // newest first
		a := by[d.PartnerID]
		if a == nil {
			a = &FraudAlert{PartnerID: d.PartnerID, TxnIDs: []string{}, Signals: []string{}, Outcome: smp.FraudAllow, LastAt: d.CreatedAt}
			by[d.PartnerID] = a
			alerts = append(alerts, a)
		}
		for _, id := range d.Evidence.TxnIDs {
			if !slices.Contains(a.TxnIDs, id) {
				a.TxnIDs = append(a.TxnIDs, id)
			}
		}
		for _, sig := range d.Signals {
			if !slices.Contains(a.Signals, sig) {
				a.Signals = append(a.Signals, sig)
			}
		}
		if smp.SeverityRank(d.Severity) > smp.SeverityRank(a.Severity) {
			a.Severity = d.Severity
		}
		if d.Outcome.Rank() > a.Outcome.Rank() {
			a.Outcome = d.Outcome
		}
		a.Score = max(a.Score, d.Score)
		a.Decisions = append(a.Decisions, d.ID)
	}
	writeJSON(w, http.StatusOK, map[string]any{"hours": hours, "since": since.UTC(), "alerts": alerts})
}

// handleFraudDecisions is GET /admin/fraud/decisions?partner=&flagged=&limit=:
// the decisions, newest first, each with every rule's verdict.
func (s *Server) handleFraudDecisions(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	q := r.URL.Query()
	ds, err := s.d.Fraud.FindFraudDecisions(r.Context(), smp.FraudDecisionFilter{PartnerID: q.Get("partner"), Flagged: q.Get("flagged") == "true", Limit: limit})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ds == nil {
		ds = []*smp.FraudDecision{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"decisions": ds})
}

// FraudEvidence is the evidence bundle of one partner over a period
// (INC-011: "Preserve evidence: export logs, IP records, device
// fingerprints").
type FraudEvidence struct {
	PartnerID   string               `json:"partner_id"`
	From        time.Time            `json:"from"`
	To          time.Time            `json:"to"`
	GeneratedAt time.Time            `json:"generated_at"`
	GeneratedBy string               `json:"generated_by"`
	Decisions   []*smp.FraudDecision `json:"decisions"`
	// Topups are the partner's top-up requests with their IP, user agent
	// and device id.
	Topups   []*smp.Topup       `json:"topups"`
	Postings []*smp.WalletEntry `json:"postings"`
	Audit    []smp.AuditEntry   `json:"audit"`
}

// handleFraudExport is GET /admin/fraud/export?partner=P&from=&to= (RFC
// 3339 times; to defaults to now, from to 30 days before it): the
// partner's decisions, top-ups, ledger postings and audit entries in the
// period, as one JSON bundle (smp ctl fraud export writes it with CSVs).
func (s *Server) handleFraudExport(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	q := r.URL.Query()
	partner := q.Get("partner")
	if partner == "" {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "partner is required"))
		return
	}
	to, from := s.cfg.Now(), time.Time{}
	var err error
	if v := q.Get("to"); v != "" {
		if to, err = time.Parse(time.RFC3339, v); err != nil {
			s.writeError(w, r, smp.Errorf(smp.EINVALID, "to: %q is not an RFC 3339 time", v))
			return
		}
	}
	from = to.Add(-30 * 24 * time.Hour)
	if v := q.Get("from"); v != "" {
		if from, err = time.Parse(time.RFC3339, v); err != nil {
			s.writeError(w, r, smp.Errorf(smp.EINVALID, "from: %q is not an RFC 3339 time", v))
			return
		}
	}
	if !from.Before(to) {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "from must be before to"))
		return
	}
	ctx := r.Context()
	b := FraudEvidence{PartnerID: partner, From: from.UTC(), To: to.UTC(), GeneratedAt: s.cfg.Now().UTC(), GeneratedBy: p.Name}
	if b.Decisions, err = s.d.Fraud.FindFraudDecisions(ctx, smp.FraudDecisionFilter{PartnerID: partner, From: from, To: to, Limit: 10000}); err == nil {
		if b.Topups, err = smp.AllTopups(ctx, s.d.Fraud, smp.TopupFilter{PartnerID: partner, From: from, To: to}); err == nil {
			b.Postings, err = smp.AllWalletEntries(ctx, s.d.Fraud, smp.WalletEntryFilter{PartnerID: partner, From: from, To: to})
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, target := range []string{partner, "partner:" + partner} {
		es, err := s.d.Store.FindAudit(ctx, smp.AuditFilter{Target: target, Limit: 1000})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		for _, e := range es {
			if !e.At.Before(from) && e.At.Before(to) {
				b.Audit = append(b.Audit, e)
			}
		}
	}
	if b.Decisions == nil {
		b.Decisions = []*smp.FraudDecision{}
	}
	if b.Topups == nil {
		b.Topups = []*smp.Topup{}
	}
	if b.Postings == nil {
		b.Postings = []*smp.WalletEntry{}
	}
	if b.Audit == nil {
		b.Audit = []smp.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, b)
}
