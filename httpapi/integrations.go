package httpapi

import (
	"net/http"

	"smp"
	"smp/integrations"
)

// Integrations are the third-party clients the API uses (nil: not configured).
type Integrations struct {
	Inside *integrations.Inside
	WMS    *integrations.WMS
}

func (s *Server) clients() []*integrations.Client {
	var out []*integrations.Client
	if s.d.Integrations.Inside != nil {
		out = append(out, s.d.Integrations.Inside.Client)
	}
	if s.d.Integrations.WMS != nil {
		out = append(out, s.d.Integrations.WMS.Client)
	}
	return out
}

// handleBreakers is GET /admin/circuit-breaker.
func (s *Server) handleBreakers(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	var out []integrations.Status
	for _, c := range s.clients() {
		out = append(out, c.Status())
	}
	if out == nil {
		out = []integrations.Status{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"breakers": out})
}

type halfOpenRequest struct {
	Service string `json:"service"`
	Reason  string `json:"reason"`
}

// handleHalfOpen is POST /admin/circuit-breaker/half-open {"service":"inside"}:
// the next call probes the service and closes (or reopens) the breaker
// (ops.HalfOpen).
func (s *Server) handleHalfOpen(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req halfOpenRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.d.Actions.HalfOpen(r.Context(), p, req.Service, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleProfile is GET /v1/me/profile: the customer's info from inside,
// the last good copy (stale) while inside is unavailable.
func (s *Server) handleProfile(w http.ResponseWriter, r *http.Request) {
	id, err := s.owner(r, "customer")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.d.Integrations.Inside == nil {
		s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "inside is not configured"))
		return
	}
	s.writeRead(w, r, func() (integrations.Read, error) { return s.d.Integrations.Inside.Customer(r.Context(), id) })
}

// handleStock is GET /v1/stock/{sku}: wms stock, cached for 30 s, stale
// while wms is unavailable.
func (s *Server) handleStock(w http.ResponseWriter, r *http.Request) {
	// Any customer, technician or admin token.
	if err := s.auth.Known(r.Context(), bearer(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.d.Integrations.WMS == nil {
		s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "wms is not configured"))
		return
	}
	s.writeRead(w, r, func() (integrations.Read, error) { return s.d.Integrations.WMS.Stock(r.Context(), r.PathValue("sku")) })
}

// writeRead answers with a third party's read, fresh or stale.
func (s *Server) writeRead(w http.ResponseWriter, r *http.Request, read func() (integrations.Read, error)) {
	res, err := read()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// handlePay is POST /v1/orders/{id}/pay: asks inside to collect the
// order's price. A write: while inside is unavailable it fails at once
// (503), never pretends.
func (s *Server) handlePay(w http.ResponseWriter, r *http.Request) {
	o, _, err := s.customerOrder(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.d.Integrations.Inside == nil {
		s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "inside is not configured"))
		return
	}
	if o.PaymentStatus == smp.PaymentPaid || o.PaymentStatus == smp.PaymentRefunded {
		s.writeError(w, r, smp.Errorf(smp.ECONFLICT, "order %s is already %s", o.ID, o.PaymentStatus))
		return
	}
	if o.Stage == smp.StageCancelled {
		s.writeError(w, r, smp.Errorf(smp.ECONFLICT, "order %s is cancelled", o.ID))
		return
	}
	pr, err := s.d.Integrations.Inside.RequestPayment(r.Context(), o.ID, o.PriceVND)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, pr)
}
