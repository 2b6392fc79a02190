package httpapi

import (
	"errors"
	"io"
	"net/http"

	"smp"
	"smp/payments"
)

// handleInsideWebhook is POST /integrations/inside/payment-webhook: the
// event is verified and committed to event_log before the 2xx, so inside
// may retry anything that did not get one.
func (s *Server) handleInsideWebhook(w http.ResponseWriter, r *http.Request) {
	code := http.StatusOK
	defer func() { s.d.Payments.CountRequest(code) }()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, payments.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			code = http.StatusRequestEntityTooLarge
			writeJSON(w, code, map[string]any{"error": map[string]string{"code": smp.EINVALID, "message": "body larger than 64 KiB"}})
			return
		}
		code = http.StatusBadRequest
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "reading the body: %v", err))
		return
	}
	res, err := s.d.Payments.Ingest(r.Context(), r.Header.Get(payments.SignatureHeader), body)
	if err != nil {
		code = ErrorStatus(smp.ErrorCode(err))
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, code, res)
}

// handleEvents is GET /admin/events?status=dlq&event_type=...&order_id=...&limit=...
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	q := r.URL.Query()
	f := smp.InboxFilter{Status: smp.InboxStatus(q.Get("status")), EventType: q.Get("event_type"), OrderID: q.Get("order_id")}
	switch f.Status {
	case "", smp.InboxReceived, smp.InboxProcessed, smp.InboxDLQ:
	default:
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "status must be received, processed or dlq"))
		return
	}
	limit, err := atoi(q.Get("limit"), 100)
	if err != nil || limit < 1 || limit > 10000 {
		s.writeError(w, r, smp.Errorf(smp.EINVALID, "limit must be between 1 and 10000"))
		return
	}
	f.Limit = limit
	evs, err := s.d.Store.FindInboxEvents(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if evs == nil {
		evs = []*smp.InboxEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs, "count": len(evs)})
}

// decodeOptional decodes a JSON body if there is one (the runbook's
// replay curl sends none).
func decodeOptional(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	return decode(r, v)
}

// handleReplay is POST /admin/events/{id}/replay (admin role, audited,
// idempotent).
func (s *Server) handleReplay(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req reasonRequest
	if err := decodeOptional(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ev, replayed, err := s.d.Actions.ReplayEvent(r.Context(), p, r.PathValue("id"), req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"replayed": replayed, "event": ev})
}

type bulkReplayRequest struct {
	EventType string `json:"event_type"`
	OrderID   string `json:"order_id"`
	Limit     int    `json:"limit"`
	Reason    string `json:"reason"`
}

// handleBulkReplay is POST /admin/events/replay: every dlq event matching
// the filter (admin role, each replay audited).
func (s *Server) handleBulkReplay(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req bulkReplayRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.d.Actions.ReplayEvents(r.Context(), p, smp.InboxFilter{EventType: req.EventType, OrderID: req.OrderID, Limit: req.Limit}, req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"replayed": n})
}

// handleMarkPaid is POST /admin/orders/{id}/mark-paid (finance role,
// audited): the runbook's INC-002 option B.
func (s *Server) handleMarkPaid(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req reasonRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	o, changed, err := s.d.Actions.MarkPaid(r.Context(), p, r.PathValue("id"), req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"changed": changed, "order": o})
}
