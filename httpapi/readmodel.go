package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"smp"
	"smp/auth"
	"smp/readmodel"
)

// The read model (INC-009): the orders' search, the runbook's health
// views and spot check, and its operations (through ops, audited).

func (s *Server) readModel(w http.ResponseWriter, r *http.Request) *readmodel.Service {
	if s.d.ReadModel == nil {
		s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "the read model is not served in this process (it runs with the Connect worker: smp connect, or serve --connect-addr)"))
		return nil
	}
	return s.d.ReadModel
}

// parseDay reads a date (2026-12-01, Vietnam's day) or an RFC 3339 time;
// end makes a date its day's last instant.
func parseDay(name, v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := time.ParseInLocation("2006-01-02", v, smp.VietnamTime)
	if err != nil {
		return time.Time{}, smp.Errorf(smp.EINVALID, "%s %q: a date (2026-12-01) or an RFC 3339 time", name, v)
	}
	if end {
		d = d.Add(24*time.Hour - time.Microsecond)
	}
	return d, nil
}

// handleOrderSearch is GET /admin/orders/search?q=…: the orders' read
// model by customer phone, address, technician, stage (in q, or phone=,
// technician_id=, stage=, city=) and creation dates (from=, to=), newest
// first (limit=, offset=). Searching by phone reads the customers' phones,
// which only people.view may (as the customer pages).
func (s *Server) handleOrderSearch(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	rm := s.readModel(w, r)
	if rm == nil {
		return
	}
	q := r.URL.Query()
	f := readmodel.OrderSearch{Q: q.Get("q"), Phone: q.Get("phone"), TechnicianID: q.Get("technician_id"), Stage: q.Get("stage"), City: q.Get("city")}
	var err error
	if f.From, err = parseDay("from", q.Get("from"), false); err == nil {
		f.To, err = parseDay("to", q.Get("to"), true)
	}
	if err == nil {
		f.Limit, err = limitParam(r, 50, 200)
	}
	if err == nil && q.Get("offset") != "" {
		if f.Offset, err = strconv.Atoi(q.Get("offset")); err != nil {
			err = smp.Errorf(smp.EINVALID, "offset %q is not a number", q.Get("offset"))
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if f.Phone != "" || readmodelPhone(f.Q) {
		if err := auth.Check(p, "people.view"); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	hits, err := rm.SearchOrders(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, hits)
}

func readmodelPhone(q string) bool {
	q = strings.TrimSpace(q)
	if q == "" {
		return false
	}
	_, err := smp.ParsePhone(q)
	return err == nil
}

// handleReadModelView is GET /admin/readmodel/{view}: health, indices,
// allocation (_cluster/health, _cat/indices, _cat/allocation), lag.
func (s *Server) handleReadModelView(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	rm := s.readModel(w, r)
	if rm == nil {
		return
	}
	var out any
	var err error
	switch r.PathValue("view") {
	case "health":
		out, err = rm.Health(r.Context())
	case "indices":
		out, err = rm.Indices(r.Context())
	case "allocation":
		out, err = rm.Allocation(r.Context())
	case "lag":
		var lag float64
		lag, err = rm.Lag(r.Context())
		out = map[string]float64{"es_sink_lag_seconds": lag}
	default:
		err = smp.Errorf(smp.ENOTFOUND, "no read-model view %q (health, indices, allocation, lag)", r.PathValue("view"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handleReadModelCompare is GET /admin/readmodel/compare?order=ID: the
// runbook's Resolve spot check.
func (s *Server) handleReadModelCompare(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	rm := s.readModel(w, r)
	if rm == nil {
		return
	}
	id := r.URL.Query().Get("order")
	if id == "" {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "order is required"))
		return
	}
	c, err := rm.Compare(r.Context(), r.URL.Query().Get("table"), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

type readModelRequest struct {
	Reason string `json:"reason"`
	// Reindex: the mapping file's name (<table>-v<N>.json) and content.
	File    string          `json:"file"`
	Mapping json.RawMessage `json:"mapping"`
	// Check: repair what it finds.
	Repair bool `json:"repair"`
}

// handleReadModelAction is POST /admin/readmodel/{action}: reindex,
// resync, check.
func (s *Server) handleReadModelAction(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req readModelRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.d.Actions == nil {
		s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "operator actions are not served here"))
		return
	}
	var out any
	var err error
	switch r.PathValue("action") {
	case "reindex":
		out, err = s.d.Actions.ReindexReadModel(r.Context(), p, req.File, req.Mapping, req.Reason)
	case "resync":
		out, err = s.d.Actions.ResyncReadModel(r.Context(), p, req.Reason)
	case "check":
		out, err = s.d.Actions.CheckReadModel(r.Context(), p, req.Repair, req.Reason)
	default:
		err = smp.Errorf(smp.ENOTFOUND, "no read-model action %q (reindex, resync, check)", r.PathValue("action"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
