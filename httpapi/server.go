// Package httpapi is SMP's HTTP transport: the customer and technician
// APIs under /v1, the admin API under /admin (bearer tokens with roles),
// /health and /metrics.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"smp"
	"smp/auth"
	"smp/catalog"
	"smp/dispatch"
	"smp/flags"
	"smp/internal/panics"
	"smp/internal/startstop"
	"smp/masterdata"
	"smp/ops"
	"smp/payments"
	"smp/pricing"
	"smp/readmodel"
	"smp/recon"
	"smp/status"
	"smp/wallet"
)

// Check is one dependency check of /health.
type Check struct {
	Name string
	// Critical checks make /health and /readyz answer 503 (this process
	// cannot serve); others only "degraded".
	Critical bool
	// Live checks make /livez answer 503: the process is stuck in a way
	// a restart cures (a failed module, hung engine workers). A database
	// outage is not one: restarting every pod would not bring it back.
	Live bool
	Fn   func(ctx context.Context) error
}

// Config of the server.
type Config struct {
	Addr string
	// AdminToken, when set, is accepted as an admin-role token.
	AdminToken string
	// AlertmanagerToken, when set, is the only credential the Alertmanager
	// receiver (POST /integrations/alertmanager/webhook) accepts; without
	// it the receiver refuses every post.
	AlertmanagerToken string
	// JWT, when set, verifies bearer JWTs accepted besides SMP's tokens
	// on the admin routes (roles from its role claim).
	JWT        *auth.JWTVerifier
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// SampleEvery is how often the dashboard's history is sampled (5s);
	// it keeps 720 samples (an hour at 5s).
	SampleEvery time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnServeError, when set, is told that the server stopped serving on
	// its own (the listener failed): the process cannot go on.
	OnServeError func(error)
	// ReadTimeout, WriteTimeout and IdleTimeout bound a request's reading
	// (body included), its answer, and a keep-alive connection's wait for
	// the next request (defaults in limits.go; WebSockets are exempt).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// MaxConnsPerIP caps the connections open at once from one client
	// address, WebSockets included (0: no cap).
	MaxConnsPerIP int
}

// Store is what the HTTP API reads of the system of record, with the
// tokens it hands to auth: it writes nothing itself (admin changes go
// through Deps.Actions, the others through the services).
type Store interface {
	smp.TokenStore
	smp.AuditStore
	smp.AlertStore
	// FindFlagChanges is smp.FlagStore's (who set each flag, when).
	FindFlagChanges(ctx context.Context) (map[string]smp.FlagChange, error)
	// FindOrderByID, FindOrders and FindTransitions are smp.OrderStore's.
	FindOrderByID(ctx context.Context, id string) (*smp.Order, error)
	FindOrders(ctx context.Context, f smp.OrderFilter) ([]*smp.Order, error)
	FindTransitions(ctx context.Context, orderID string) ([]smp.Transition, error)
	// FindInboxEvents and CountInboxEvents are smp.InboxStore's.
	FindInboxEvents(ctx context.Context, f smp.InboxFilter) ([]*smp.InboxEvent, error)
	CountInboxEvents(ctx context.Context) (map[smp.InboxStatus]int64, error)
}

// Deps of the server. Engine may be nil when this process does not run
// the dispatch engine.
type Deps struct {
	Store  Store
	Orders smp.OrderService
	Cities func() []*smp.City
	Engine *dispatch.Engine
	Flags  *flags.Service
	WS     http.Handler
	Checks []Check
	// PublicAPI serves /v1 (customers, technicians) in this process.
	PublicAPI bool
	// Payments, when set, serves the admin event endpoints and mark-paid;
	// with Integration also inside's webhook.
	Payments    *payments.Service
	Integration bool
	// Integrations: inside and wms clients (either may be nil).
	Integrations Integrations
	// Ops: the bus and replica views for /admin/bus and /admin/replica.
	Ops Ops
	// Actions are the operator actions (ops): every admin write goes
	// through them. Without, they answer 503 (nothing is wired to act on).
	Actions *ops.Service
	// Status, when set, serves /status, /v1/banners and /admin/status.
	Status *status.Service
	// Heartbeat, when set, makes /admin/stats cluster-wide: the engine's
	// state and every process's WebSocket connections, from shared state.
	Heartbeat *dispatch.Heartbeat
	// Wallets, when set, serves the partners' wallets under /admin.
	Wallets *wallet.Service
	// Recon, when set, serves the wallets' reconciliation runs
	// (recon.go).
	Recon *recon.Service
	// Catalog onboards cities, services, partners, technicians and
	// customers (admin_catalog.go); without, those routes answer 503.
	Catalog *catalog.Service
	// MasterData, when set, serves /admin/masterdata (issue 21).
	MasterData *masterdata.Service
	// Pricing, when set, serves the price screen (/v1/prices) and
	// invoices (/v1/orders/{id}/invoice, /admin/orders/{id}/invoice).
	Pricing *pricing.Service
	// Fraud, when set, serves the fraud detector's alerts, decisions and
	// evidence (/internal/fraud-alerts/recent, /admin/fraud/…).
	Fraud FraudReader
	// ReadModel, when set, serves GET /admin/orders/search and
	// /admin/readmodel (INC-009); without, they answer 503.
	ReadModel *readmodel.Service
	// Logins, when set, serves /v1/auth (one-time codes by SMS, session
	// tokens), and /v1 and the WebSocket accept its session tokens.
	// Sessions is its store, listed at /admin/sessions.
	Logins   *auth.Logins
	Sessions smp.SessionStore
	// SMSOutbox, when set, is the simulated SMS provider's outbox
	// (GET /admin/sms/outbox).
	SMSOutbox func() any
}

// Server serves the HTTP API.
type Server struct {
	cfg  Config
	d    Deps
	log  *slog.Logger
	ln   net.Listener
	srv  *http.Server
	mux  *http.ServeMux
	auth *auth.Authenticator
	hist *history
	startstop.Base
	panics *panics.Counter

	requests *prometheus.CounterVec
	refused  prometheus.Counter
}

// New builds the server; Open binds it.
func New(cfg Config, d Deps) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, d: d, log: cfg.Logger.With("service", "http"), mux: http.NewServeMux(), hist: &history{max: 720}}
	s.auth = auth.NewAuthenticator(d.Store, cfg.AdminToken).WithAlertmanager(cfg.AlertmanagerToken).WithJWT(cfg.JWT)
	if d.Logins != nil {
		s.auth.UseSessions(d.Logins)
	}
	if d.Actions == nil {
		// Nothing to act on: every action answers 503 (tests that only read).
		st, _ := d.Store.(ops.Store)
		var err error
		if s.d.Actions, err = ops.New(ops.Config{Store: st, Logger: cfg.Logger}); err != nil {
			return nil, err
		}
	}
	s.panics = panics.New(cfg.Registerer, cfg.Logger)
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_http_requests_total", Help: "HTTP requests by route and status code."},
		[]string{"route", "code"})
	s.refused = prometheus.NewCounter(prometheus.CounterOpts{Name: "smp_http_connections_refused_total",
		Help: "Connections closed at accept because their client address already held --http-max-conns-per-ip."})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.requests); err != nil {
			return nil, err
		}
		if err := cfg.Registerer.Register(s.refused); err != nil {
			return nil, err
		}
	}
	s.routes()
	s.srv = &http.Server{Handler: s}
	configureLimits(s.srv, cfg)
	return s, nil
}

// Handler returns the routes (for tests with httptest).
func (s *Server) Handler() http.Handler { return s }

// Start binds the address synchronously (a bad port fails here), then
// serves and samples the dashboard's history until Stop; idempotent.
func (s *Server) Start(ctx context.Context) error {
	ctx, ok := s.StartInit(ctx)
	if !ok {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		s.Abort()
		return fmt.Errorf("http: listen %s: %w", s.cfg.Addr, err)
	}
	s.ln = newPerIPListener(ln, s.cfg.MaxConnsPerIP, s.refused)
	s.Go(func() { s.sample(ctx, s.cfg.SampleEvery) })
	s.Go(func() {
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http: serve", "err", err)
			if s.cfg.OnServeError != nil {
				s.cfg.OnServeError(err)
			}
		}
	})
	s.MarkStarted()
	return nil
}

// URL is the server's base URL once open.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Stop stops accepting requests and waits for in-flight ones and the
// sampler until ctx ends; safe before Start and twice.
func (s *Server) Stop(ctx context.Context) error {
	if !s.Running() {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	return errors.Join(err, s.Base.Stop(ctx))
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
)

type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	w.code, w.wrote = code, true
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (and the WebSocket upgrade) reach
// the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP adds a request id, recovers a panicking handler (500 with the
// JSON error body; logged once with the stack and counted in
// smp_panics_total{component="http"}), counts and logs the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.cfg.Now()
	rid := r.Header.Get("X-Request-ID")
	if rid == "" || len(rid) > 64 {
		rid = uuid.NewString()
	}
	w.Header().Set("X-Request-ID", rid)
	r = r.WithContext(context.WithValue(r.Context(), keyRequestID, rid))
	sw := &statusWriter{ResponseWriter: w, code: 200}
	_, pattern := s.mux.Handler(r)
	if s.limitBody(sw, r, pattern) {
		s.serveRecovering(sw, r)
	}
	if pattern == "" {
		pattern = "unmatched"
	}
	s.requests.WithLabelValues(pattern, fmt.Sprint(sw.code)).Inc()
	s.log.Debug("http request", "request_id", rid, "method", r.Method, "path", r.URL.Path, "status", sw.code, "duration_ms", s.cfg.Now().Sub(start).Milliseconds())
}

func (s *Server) serveRecovering(sw *statusWriter, r *http.Request) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v == http.ErrAbortHandler {
			panic(v) // net/http's way to abort a response: not a bug
		}
		s.panics.Record("http", v)
		if !sw.wrote {
			writeJSON(sw, http.StatusInternalServerError, map[string]any{"error": map[string]string{"code": smp.EINTERNAL, "message": "internal error"}})
		}
		sw.code = http.StatusInternalServerError
	}()
	s.mux.ServeHTTP(sw, r)
}

// ErrorStatus maps an error code to an HTTP status.
func ErrorStatus(code string) int {
	switch code {
	case smp.EINVALID:
		return http.StatusBadRequest
	case smp.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case smp.EFORBIDDEN:
		return http.StatusForbidden
	case smp.ENOTFOUND:
		return http.StatusNotFound
	case smp.ECONFLICT:
		return http.StatusConflict
	case smp.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case smp.ETOOMANY:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// writeError answers with {"error":{"code","message"}}; internal errors
// are logged here, once, and their detail is not shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if tl := asTooLarge(err); tl != nil {
		writeTooLarge(w, tl)
		return
	}
	code := smp.ErrorCode(err)
	rid, _ := r.Context().Value(keyRequestID).(string)
	if r.Context().Err() != nil {
		// The client went away (or timed out): not a failure of ours.
		s.log.Debug("request abandoned by the client", "request_id", rid, "method", r.Method, "path", r.URL.Path, "err", err)
		code = smp.EUNAVAILABLE
		err = smp.Errorf(code, "request cancelled")
	} else if code == smp.EINTERNAL {
		s.log.Error("internal error", "request_id", rid, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, ErrorStatus(code), map[string]any{"error": map[string]string{"code": code, "message": smp.ErrorMessage(err)}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decode reads a JSON body strictly: one object, known fields, at most 64 KiB.
func decode(r *http.Request, v any) error { return decodeN(r, v, 64<<10) }

// decodeN is decode with a body of at most max bytes (a route whose body
// limit is larger than 64 KiB: bodyLimits).
func decodeN(r *http.Request, v any, max int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return smp.Errorf(smp.EINVALID, "Content-Type must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, max))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if tl := asTooLarge(err); tl != nil {
			return tl // 413, not 400
		}
		return smp.Errorf(smp.EINVALID, "malformed JSON body: %v", err)
	}
	if dec.More() {
		return smp.Errorf(smp.EINVALID, "malformed JSON body: more than one value")
	}
	return nil
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// principal resolves the caller's admin token.
func (s *Server) principal(r *http.Request) (smp.Principal, error) {
	return s.auth.Admin(r.Context(), bearer(r))
}

// owner resolves a customer's or technician's token.
func (s *Server) owner(r *http.Request, want string) (string, error) {
	tok := bearer(r)
	if tok == "" {
		tok = r.URL.Query().Get("access_token") // browsers cannot set headers on WebSockets
	}
	return s.auth.Owner(r.Context(), tok, want)
}

// TechnicianAuth authenticates WebSocket upgrades.
func (s *Server) TechnicianAuth(ctx context.Context, r *http.Request) (string, error) {
	return s.owner(r, "technician")
}

type adminHandler func(w http.ResponseWriter, r *http.Request, p smp.Principal)

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /health", s.handleHealth)
	m.HandleFunc("GET /livez", s.handleProbe(func(c Check) bool { return c.Live }))
	m.HandleFunc("GET /readyz", s.handleProbe(func(c Check) bool { return c.Critical }))
	if s.cfg.Gatherer != nil {
		// Serve whatever could be gathered: Kafka being down must not hide
		// dispatch_engine_up.
		m.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	}
	if s.d.PublicAPI {
		m.HandleFunc("GET /v1/cities", s.handleCities)
		m.HandleFunc("POST /v1/orders", s.handleCreateOrder)
		m.HandleFunc("GET /v1/orders/{id}", s.handleGetOrder)
		m.HandleFunc("POST /v1/orders/{id}/cancel", s.handleCancelOrder)
		m.HandleFunc("POST /v1/jobs/{id}/start", s.handleJob(true))
		m.HandleFunc("POST /v1/jobs/{id}/complete", s.handleJob(false))
		m.HandleFunc("GET /v1/me/profile", s.handleProfile)
		m.HandleFunc("GET /v1/stock/{sku}", s.handleStock)
		m.HandleFunc("POST /v1/orders/{id}/pay", s.handlePay)
		if s.d.WS != nil {
			m.Handle("GET /v1/technicians/ws", s.requireUpgrade(s.d.WS))
		}
		m.HandleFunc("GET /v1/technicians/me/settings", s.handleMySettings)
		m.HandleFunc("PUT /v1/technicians/me/settings", s.handleSetMySettings)
		if s.d.Logins != nil {
			m.HandleFunc("POST /v1/auth/otp", s.handleSendCode)
			m.HandleFunc("POST /v1/auth/verify", s.handleVerify)
			m.HandleFunc("GET /v1/auth/session", s.handleSession)
			m.HandleFunc("DELETE /v1/auth/session", s.handleLogout)
		}
	}

	m.HandleFunc("GET /admin/stats", s.can("view", s.handleStats))
	m.HandleFunc("GET /admin/flags", s.can("view", s.handleFlags))
	m.HandleFunc("PUT /admin/flags/{name}", s.can("flags.set", s.handleSetFlag))
	m.HandleFunc("GET /admin/orders", s.can("view", s.handleAdminOrders))
	m.HandleFunc("GET /admin/orders/{id}", s.can("view", s.handleAdminOrder))
	m.HandleFunc("GET /admin/orders/search", s.can("view", s.handleOrderSearch))
	m.HandleFunc("GET /admin/readmodel/compare", s.can("view", s.handleReadModelCompare))
	m.HandleFunc("GET /admin/readmodel/{view}", s.can("view", s.handleReadModelView))
	m.HandleFunc("POST /admin/readmodel/{action}", s.can("view", s.handleReadModelAction))
	m.HandleFunc("POST /admin/orders/{id}/assign", s.can("orders.assign", s.handleAssign))
	m.HandleFunc("GET /admin/orders/{id}/candidates", s.can("orders.candidates", s.handleCandidates))
	m.HandleFunc("GET /admin/orders/{id}/dispatch-trace", s.can("orders.trace", s.handleTrace))
	m.HandleFunc("GET /admin/audit", s.can("view", s.handleAudit))
	m.HandleFunc("POST /integrations/alertmanager/webhook", s.handleAlertmanager)
	m.HandleFunc("GET /admin/alerts", s.can("view", s.handleAlerts))
	m.HandleFunc("POST /admin/redis/flush-cache", s.can("redis.flush_cache", s.handleFlushCache))
	m.HandleFunc("GET /admin/replica", s.can("view", s.handleReplica))
	m.HandleFunc("GET /admin/bus/lag", s.can("view", s.handleBusLag))
	m.HandleFunc("GET /admin/bus/dlq", s.can("view", s.handleDLQ))
	m.HandleFunc("POST /admin/bus/dlq/replay", s.can("bus.dlq_replay", s.handleDLQReplay))
	m.HandleFunc("POST /admin/bus/reset-offsets", s.can("bus.reset_offsets", s.handleResetOffsets))
	m.HandleFunc("GET /admin/circuit-breaker", s.can("view", s.handleBreakers))
	m.HandleFunc("POST /admin/circuit-breaker/half-open", s.can("breaker.half_open", s.handleHalfOpen))
	m.HandleFunc("GET /admin/sessions", s.can("sessions.view", s.handleSessions))
	m.HandleFunc("DELETE /admin/sessions/{id}", s.can("sessions.revoke", s.handleRevokeSession))
	m.HandleFunc("POST /admin/sessions/revoke", s.can("sessions.revoke", s.handleRevokeSessions))
	m.HandleFunc("GET /admin/sms/outbox", s.can("sms.outbox", s.handleSMSOutbox))
	m.HandleFunc("GET /admin/technicians/{id}/settings", s.can("view", s.handleTechnicianSettings))
	m.HandleFunc("PUT /admin/technicians/{id}/settings", s.can("technicians.settings", s.handleSetTechnicianSettings))
	if s.d.Payments != nil {
		if s.d.Integration {
			m.HandleFunc("POST /integrations/inside/payment-webhook", s.handleInsideWebhook)
		}
		m.HandleFunc("GET /admin/events", s.can("view", s.handleEvents))
		m.HandleFunc("POST /admin/events/replay", s.can("events.replay", s.handleBulkReplay))
		m.HandleFunc("POST /admin/events/{id}/replay", s.can("events.replay", s.handleReplay))
		m.HandleFunc("POST /admin/orders/{id}/mark-paid", s.can("orders.mark_paid", s.handleMarkPaid))
	}
	s.walletRoutes()
	s.reconRoutes()
	s.masterDataRoutes()
	s.fraudRoutes()
	s.regionRoutes()
	s.pricingRoutes()
	s.catalogRoutes()
	s.portalRoutes()
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, smp.Errorf(smp.ENOTFOUND, "no route %s %s", r.Method, r.URL.Path))
	})
}

// requireUpgrade answers a request that is not a WebSocket handshake with
// 426 and the JSON error, as every other error (the WebSocket library
// would answer in plain text).
func (s *Server) requireUpgrade(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") {
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "websocket")
			writeJSON(w, http.StatusUpgradeRequired, map[string]any{"error": map[string]string{"code": smp.EINVALID,
				"message": "this is the technicians' WebSocket: connect with a WebSocket client (Connection: Upgrade, Upgrade: websocket)"}})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headerHas reports whether a comma-separated header holds token (case
// insensitive).
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// handleProbe answers Kubernetes' probes: 200 while every check that
// counts for it passes, else 503 naming the failed ones. /livez (liveness:
// restart me) counts the Live checks only, /readyz (readiness: send me
// traffic) the Critical ones, so a database outage takes pods out of the
// Service without restarting them all.
func (s *Server) handleProbe(counts func(Check) bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		failed := map[string]string{}
		for _, c := range s.d.Checks {
			if !counts(c) {
				continue
			}
			if err := c.Fn(ctx); err != nil {
				failed[c.Name] = err.Error()
			}
		}
		if len(failed) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "fail", "failed": failed})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	}
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	type result struct {
		Status string `json:"status"`
		Error  string `json:"error,omitempty"`
	}
	checks := map[string]result{}
	status, code := "ok", http.StatusOK
	for _, c := range s.d.Checks {
		if err := c.Fn(ctx); err != nil {
			checks[c.Name] = result{Status: "fail", Error: err.Error()}
			if c.Critical {
				status, code = "fail", http.StatusServiceUnavailable
			} else if status == "ok" {
				status = "degraded"
			}
			continue
		}
		checks[c.Name] = result{Status: "ok"}
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": checks})
}
