package httpapi

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"

	"smp"
	"smp/auth"
)

// Logins of customers and technicians (a one-time code by SMS for a
// session token), ops' view and revocation of sessions, and the simulated
// SMS outbox.

type otpRequest struct {
	Phone string `json:"phone"`
	// As is "technician" or "customer": needed only when the number has
	// both accounts.
	As string `json:"as"`
}

type verifyRequest struct {
	Phone string `json:"phone"`
	Code  string `json:"code"`
	As    string `json:"as"`
}

// clientIP is the address rate limits count per: the peer's. (Behind a
// proxy, the proxy should limit; X-Forwarded-For is not trusted.)
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// writeLoginError adds Retry-After to a rate-limited answer (429).
func (s *Server) writeLoginError(w http.ResponseWriter, r *http.Request, err error) {
	var rl *auth.RateLimited
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", strconv.Itoa(int(rl.RetryAfter.Seconds())+1))
	}
	s.writeError(w, r, err)
}

// handleSendCode is POST /v1/auth/otp {"phone"}: a code by SMS. 202 for
// any well-formed number (registered or not: the answer tells nobody who
// has an account).
func (s *Server) handleSendCode(w http.ResponseWriter, r *http.Request) {
	var req otpRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ttl, err := s.d.Logins.SendCode(r.Context(), req.Phone, req.As, clientIP(r))
	if err != nil {
		s.writeLoginError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"sent": true, "expires_in_seconds": int(ttl.Seconds())})
}

// handleVerify is POST /v1/auth/verify {"phone","code"}: the session token.
func (s *Server) handleVerify(w http.ResponseWriter, r *http.Request) {
	var req verifyRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	token, sess, err := s.d.Logins.Verify(r.Context(), req.Phone, req.Code, req.As, clientIP(r))
	if err != nil {
		s.writeLoginError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "token_type": "Bearer", "session": sess})
}

// handleSession is GET /v1/auth/session: the caller's session.
func (s *Server) handleSession(w http.ResponseWriter, r *http.Request) {
	sess, err := s.d.Logins.Resolve(r.Context(), bearer(r))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sess)
}

// handleLogout is DELETE /v1/auth/session: the caller's session ends.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if err := s.d.Logins.Logout(r.Context(), bearer(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleSessions is GET /admin/sessions?owner=T0001[&kind=technician]:
// live sessions, newest first.
func (s *Server) handleSessions(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	if s.d.Sessions == nil {
		s.writeError(w, r, smp.Errorf(smp.EUNAVAILABLE, "logins are not served in this process"))
		return
	}
	q := r.URL.Query()
	limit, err := limitParam(r, 100, 1000)
	kind := q.Get("kind")
	if err == nil && kind != "" && kind != smp.OwnerTechnician && kind != smp.OwnerCustomer {
		err = smp.Errorf(smp.EINVALID, "kind must be %q or %q", smp.OwnerTechnician, smp.OwnerCustomer)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ss, err := s.d.Sessions.FindSessions(r.Context(), smp.SessionFilter{OwnerKind: kind, OwnerID: q.Get("owner"), Now: s.cfg.Now(), Limit: limit})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ss == nil {
		ss = []*smp.Session{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": ss})
}

// handleRevokeSession is DELETE /admin/sessions/{id} {"reason"} (or
// ?reason=): the session ends, audited.
func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	req := reasonRequest{Reason: r.URL.Query().Get("reason")}
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	sess, err := s.d.Actions.RevokeSession(r.Context(), p, r.PathValue("id"), req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": sess})
}

type revokeOwnerRequest struct {
	OwnerKind string `json:"owner_kind"`
	OwnerID   string `json:"owner_id"`
	Reason    string `json:"reason"`
}

// handleRevokeSessions is POST /admin/sessions/revoke
// {"owner_kind","owner_id","reason"}: every session of one owner ends.
func (s *Server) handleRevokeSessions(w http.ResponseWriter, r *http.Request, p smp.Principal) {
	var req revokeOwnerRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.d.Actions.RevokeSessions(r.Context(), p, strings.TrimSpace(req.OwnerKind), strings.TrimSpace(req.OwnerID), req.Reason)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": n})
}

// handleSMSOutbox is GET /admin/sms/outbox: what the simulated SMS
// provider delivered (the demo's and tests' phones).
func (s *Server) handleSMSOutbox(w http.ResponseWriter, r *http.Request, _ smp.Principal) {
	if s.d.SMSOutbox == nil {
		s.writeError(w, r, smp.Errorf(smp.ENOTFOUND, "SMS goes to a real provider: there is no simulated outbox"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": s.d.SMSOutbox()})
}
