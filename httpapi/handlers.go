package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"smp"
	"smp/dispatch"
)

// Customer-facing texts named by the runbook, with English equivalents.
var (
	msgManualDispatch = map[string]string{
		"vi": "Đang xử lý đơn của bạn, ops team sẽ liên hệ trong 15 phút",
		"en": "We are processing your order; our ops team will contact you within 15 minutes",
	}
)

// lang picks "en" or "vi" (the default) from Accept-Language.
func lang(r *http.Request) string {
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag := strings.ToLower(strings.TrimSpace(strings.SplitN(part, ";", 2)[0]))
		switch {
		case strings.HasPrefix(tag, "vi"):
			return "vi"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	return "vi"
}

func (s *Server) handleCities(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"cities": s.d.Cities()})
}

type createOrderRequest struct {
	City     *string  `json:"city"`
	Service  *string  `json:"service"`
	Lat      *float64 `json:"lat"`
	Lng      *float64 `json:"lng"`
	Address  string   `json:"address"`
	PriceVND *int64   `json:"price_vnd"`
}

func (req *createOrderRequest) toNewOrder() (smp.NewOrder, error) {
	for name, missing := range map[string]bool{"city": req.City == nil, "service": req.Service == nil, "lat": req.Lat == nil,
		"lng": req.Lng == nil, "price_vnd": req.PriceVND == nil} {
		if missing {
			return smp.NewOrder{}, smp.Errorf(smp.EINVALID, "%s is required", name)
		}
	}
	return smp.NewOrder{City: *req.City, Service: *req.Service, Lat: *req.Lat, Lng: *req.Lng, Address: req.Address, PriceVND: *req.PriceVND}, nil
}

func (s *Server) handleCreateOrder(w http.ResponseWriter, r *http.Request) {
	customerID, err := s.owner(r, "customer")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req createOrderRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := req.toNewOrder()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// With an Idempotency-Key, a retry gets the first answer again (see
	// smp.OrderService.CreateOrderOnce).
	o, replayed, err := s.d.Orders.CreateOrderOnce(r.Context(), customerID, r.Header.Get("Idempotency-Key"), n)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.Header().Set("Location", "/v1/orders/"+o.ID)
	writeJSON(w, http.StatusCreated, s.orderView(r, o, nil))
}

type orderView struct {
	*smp.Order
	StatusMessage string           `json:"status_message,omitempty"`
	Transitions   []smp.Transition `json:"transitions,omitempty"`
}

func (s *Server) orderView(r *http.Request, o *smp.Order, ts []smp.Transition) orderView {
	v := orderView{Order: o, Transitions: ts}
	if o.Stage == smp.StageDispatching && s.d.Flags != nil && !s.d.Flags.Enabled(smp.FlagEnableAutoDispatch) {
		v.StatusMessage = msgManualDispatch[lang(r)]
	}
	return v
}

// customerOrder loads an order the calling customer owns (ENOTFOUND otherwise).
func (s *Server) customerOrder(r *http.Request) (*smp.Order, string, error) {
	customerID, err := s.owner(r, "customer")
	if err != nil {
		return nil, "", err
	}
	o, err := s.d.Orders.FindOrderByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, "", err
	}
	if o.CustomerID != customerID {
		return nil, "", smp.Errorf(smp.ENOTFOUND, "order %s not found", r.PathValue("id"))
	}
	return o, customerID, nil
}

func (s *Server) handleGetOrder(w http.ResponseWriter, r *http.Request) {
	o, _, err := s.customerOrder(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ts, err := s.d.Store.FindTransitions(r.Context(), o.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.orderView(r, o, ts))
}

type reasonRequest struct {
	Reason string `json:"reason"`
}

func (s *Server) handleCancelOrder(w http.ResponseWriter, r *http.Request) {
	_, customerID, err := s.customerOrder(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req reasonRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	o, err := s.d.Orders.Cancel(r.Context(), r.PathValue("id"), smp.Actor{Kind: "customer", ID: customerID}, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.orderView(r, o, nil))
}

func (s *Server) handleJob(start bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		techID, err := s.owner(r, "technician")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var o *smp.Order
		if start {
			o, err = s.d.Orders.StartJob(r.Context(), r.PathValue("id"), techID)
		} else {
			o, err = s.d.Orders.CompleteJob(r.Context(), r.PathValue("id"), techID)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, o)
	}
}

func (s *Server) engine(w http.ResponseWriter, r *http.Request) bool {
	if s.d.Engine == nil {
		s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "the dispatch engine does not run in this process"))
		return false
	}
	return true
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	if !s.engine(w, r) {
		return
	}
	st, err := s.stats(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// stats is the engine's stats made cluster-wide by the heartbeats.
func (s *Server) stats(ctx context.Context) (dispatch.Stats, error) {
	st, err := s.d.Engine.Stats(ctx)
	if err == nil && s.d.Heartbeat != nil {
		err = s.d.Heartbeat.Aggregate(ctx, &st)
	}
	return st, err
}

func (s *Server) handleFlags(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	fs := s.d.Flags.All()
	changes, err := s.d.Store.FindFlagChanges(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for i := range fs {
		c := changes[fs[i].Name]
		fs[i].UpdatedAt, fs[i].UpdatedBy = c.UpdatedAt, c.UpdatedBy
	}
	writeJSON(w, http.StatusOK, map[string]any{"flags": fs})
}

type setFlagRequest struct {
	Value  *bool  `json:"value"`
	Reason string `json:"reason"`
}

func (s *Server) handleSetFlag(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req setFlagRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Value == nil {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "value (true or false) is required"))
		return
	}
	f, err := s.d.Actions.SetFlag(r.Context(), p, r.PathValue("name"), *req.Value, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func atoi(v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, smp.Errorf(smp.EINVALID, "%q is not a valid number", v)
	}
	return n, nil
}

// limitParam reads ?limit=: def when absent, EINVALID outside 1..max
// (rather than quietly answering fewer than asked).
func limitParam(r *http.Request, def, max int) (int, error) {
	v := r.URL.Query().Get("limit")
	n, err := atoi(v, def)
	if err != nil || n < 1 || n > max {
		return 0, smp.Errorf(smp.EINVALID, "limit must be between 1 and %d", max)
	}
	return n, nil
}

// The largest ?limit= of each listing: what the store returns at most.
const (
	maxOrdersLimit     = 1000
	maxAuditLimit      = 1000
	maxCandidatesLimit = 200
)

func (s *Server) handleAdminOrders(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	q := r.URL.Query()
	limit, err := limitParam(r, 100, maxOrdersLimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f := smp.OrderFilter{Stage: smp.Stage(q.Get("stage")), City: q.Get("city"), CustomerID: q.Get("customer_id"), TechnicianID: q.Get("technician_id"),
		PaymentStatus: smp.PaymentStatus(q.Get("payment")), Limit: limit}
	if f.Stage != "" && !validStage(f.Stage) {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "unknown stage %q", f.Stage))
		return
	}
	if f.PaymentStatus != "" && !smp.ValidPaymentStatus(f.PaymentStatus) {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "unknown payment status %q (pending, failed, paid, refund_required, refunded)", f.PaymentStatus))
		return
	}
	if v := q.Get("older_than"); v != "" {
		// The stage's age: orders whose stage changed more than this ago.
		age, err := parseSeconds(v)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		f.ChangedBefore = s.cfg.Now().Add(-age)
	}
	if v := q.Get("after"); v != "" {
		c, err := parseOrderCursor(v)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		f.After = c
	}
	// One more than asked, to say whether there is a next page.
	f.Limit = min(limit+1, maxOrdersLimit)
	var orders []*smp.Order
	if v := q.Get("stuck_after"); v != "" {
		// err is the function's, not a new one: the stuck-orders query's
		// failure must reach the check below (staticcheck SA4006).
		var after time.Duration
		after, err = parseSeconds(v)
		if err == nil && (f.Stage != "" || f.CustomerID != "" || f.TechnicianID != "") {
			err = smp.Errorf(smp.EINVALID, "stuck_after combines only with city and limit")
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		orders, err = s.stuckOrders(r.Context(), after, f.City, limit)
	} else {
		orders, err = s.d.Store.FindOrders(r.Context(), f)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if orders == nil {
		orders = []*smp.Order{}
	}
	out := map[string]any{"orders": orders}
	if q.Get("stuck_after") == "" && (len(orders) > limit || (f.Limit == limit && len(orders) == limit)) {
		// More match: the next page starts after the last one shown.
		orders = orders[:limit]
		last := orders[limit-1]
		out["orders"], out["next"] = orders, fmt.Sprintf("%d:%s", last.CreatedAt.UnixMicro(), last.ID)
	}
	writeJSON(w, http.StatusOK, out)
}

// parseOrderCursor reads a "next" of GET /admin/orders ("<micros>:<id>").
func parseOrderCursor(v string) (*smp.OrderCursor, error) {
	at, id, ok := strings.Cut(v, ":")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || id == "" {
		return nil, smp.Errorf(smp.EINVALID, "after %q is not a cursor from a previous page's next", v)
	}
	return &smp.OrderCursor{CreatedAt: time.UnixMicro(n).UTC(), ID: id}, nil
}

func validStage(st smp.Stage) bool {
	for _, s := range smp.Stages {
		if s == st {
			return true
		}
	}
	return false
}

func (s *Server) handleAdminOrder(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	o, err := s.d.Store.FindOrderByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ts, err := s.d.Store.FindTransitions(r.Context(), o.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, orderView{Order: o, Transitions: ts})
}

type assignRequest struct {
	TechnicianID string `json:"technician_id"`
	Reason       string `json:"reason"`
	// Override assigns a technician who does not fit (offline, another
	// city, no skill); the audit entry says so.
	Override bool `json:"override"`
}

// handleAssign is POST /admin/orders/{id}/assign: manual dispatch, the
// runbook's INC-001 option C (ops.Assign).
func (s *Server) handleAssign(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req assignRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	o, err := s.d.Actions.Assign(r.Context(), p, r.PathValue("id"), req.TechnicianID, req.Reason, req.Override)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

func (s *Server) handleCandidates(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	if !s.engine(w, r) {
		return
	}
	limit, err := limitParam(r, 20, maxCandidatesLimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.d.Engine.Candidates(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"candidates": c})
}

func (s *Server) handleTrace(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	if !s.engine(w, r) {
		return
	}
	tr, err := s.d.Engine.Trace(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tr)
}

func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	q := r.URL.Query()
	limit, err := limitParam(r, 100, maxAuditLimit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	entries, err := s.d.Store.FindAudit(r.Context(), smp.AuditFilter{Target: q.Get("target"), Action: q.Get("action"), Limit: limit})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if entries == nil {
		entries = []smp.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": entries})
}
