// Package wsapi is the technicians' WebSocket channel,
// GET /v1/technicians/ws: heartbeats, availability and location updates,
// offers pushed, accept/decline and delivery acknowledgements. A
// reconnect gets the technician's current job and open offers again.
package wsapi

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/internal/panics"
)

// Authenticator resolves a technician's bearer token to their id.
type Authenticator func(ctx context.Context, r *http.Request) (technicianID string, err error)

// Config of the hub.
type Config struct {
	// IdleTimeout closes a connection that sent nothing (not even a
	// heartbeat) for this long (default DefaultIdleTimeout).
	IdleTimeout time.Duration
	// Heartbeat is the interval the welcome asks the app to send
	// heartbeats at (heartbeat_ms): two thirds of IdleTimeout by default
	// (30 s of 45: a beat may be 15 s late), and always under it, so that
	// a beating app is never closed as idle.
	Heartbeat time.Duration
	// SendBuffer is the per-connection outgoing queue (default 64).
	SendBuffer int
	// MaxMessageBytes is the largest client message read (default 8 KiB);
	// a bigger one closes the connection with status 1009 (too big).
	MaxMessageBytes int64
	// MaxMalformed is how many malformed messages (not JSON, wrong field
	// types, unknown type, binary) a connection may send within a minute,
	// each answered with an error; one more closes it with status 1008
	// (policy violation). Default 20.
	MaxMalformed int
	// Sessions, when set, records each technician's newest connection
	// across processes (Redis session:{technician_id}): only that
	// connection gets messages and only its close marks them offline.
	Sessions Sessions
	// Process names this process in connection ids (default a random id).
	Process string
	// Now is the clock (default time.Now).
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Sessions records each technician's newest connection outside the
// process, shared by every process (redisstore.Sessions).
type Sessions interface {
	// Claim makes connID the technician's newest connection.
	Claim(ctx context.Context, technicianID, connID string) error
	// Touch refreshes connID's claim; held is false when a newer
	// connection holds it.
	Touch(ctx context.Context, technicianID, connID string) (held bool, err error)
	// Drop removes connID's claim unless a newer connection holds it.
	Drop(ctx context.Context, technicianID, connID string) error
	// Holder returns the technician's newest connection's id.
	Holder(ctx context.Context, technicianID string) (connID string, ok bool, err error)
}

// touch refreshes c's session at a heartbeat; a connection superseded by
// a newer one in another process is closed (the newest wins everywhere).
func (h *Hub) touch(ctx context.Context, c *conn) {
	if h.cfg.Sessions == nil {
		return
	}
	held, err := h.cfg.Sessions.Touch(ctx, c.techID, c.id)
	if err != nil {
		h.cfg.Logger.Warn("ws: session not recorded", "technician_id", c.techID, "err", err)
		return
	}
	if !held {
		h.superseded(c)
	}
}

// current reports whether c is its technician's newest connection across
// processes; false closes it. When the shared record cannot be read (or
// has expired), the local connection is trusted.
func (h *Hub) current(c *conn) bool {
	if h.cfg.Sessions == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	id, ok, err := h.cfg.Sessions.Holder(ctx, c.techID)
	if err != nil || !ok || id == c.id {
		return true
	}
	h.superseded(c)
	return false
}

func (h *Hub) superseded(c *conn) {
	h.cfg.Logger.Info("ws: connection superseded by a newer one; closing it", "technician_id", c.techID, "conn", c.id)
	c.closeFor(closedReplaced)
}

// Hub holds the open technician connections. It implements smp.Notifier.
type Hub struct {
	cfg     Config
	auth    Authenticator
	gateway smp.TechnicianGateway

	mu       sync.Mutex
	conns    map[string]*conn
	online   int                      // guarded by mu: conns through TechnicianConnected (Connections)
	replaced map[string]*replacements // guarded by mu
	// connecting orders a technician's connections' claims (striped).
	connecting [64]sync.Mutex
	wg         sync.WaitGroup

	gauge    prometheus.GaugeFunc
	messages *prometheus.CounterVec
	// in and out are messages' counters by type, resolved once: a
	// labelled counter's lookup hashes its labels at every message.
	in     map[string]prometheus.Counter // read-only after NewHub
	out    sync.Map                      // type → prometheus.Counter
	closed *prometheus.CounterVec
	panics *panics.Counter
}

// Why a connection closed (smp_websocket_closed_total{reason}).
const (
	closedIdle     = "idle"     // nothing received for IdleTimeout
	closedReplaced = "replaced" // the technician's newer connection, here or in another process
	closedClient   = "client"   // the client closed it, or the network failed
	closedSlow     = "slow"     // its send buffer was full
	closedRefused  = "refused"  // connecting failed (suspended, internal error)
	closedServer   = "server"   // the hub stopped, a logout, too many malformed messages
)

var _ smp.Notifier = (*Hub)(nil)

// DefaultIdleTimeout is how long a connection may send nothing, not even
// a heartbeat, before the hub closes it: a phone's heartbeat period must
// stay under it, or the phone is disconnected and reconnects every period.
const DefaultIdleTimeout = 45 * time.Second

// NewHub returns a hub; SetGateway must be called before it serves.
func NewHub(auth Authenticator, cfg Config) (*Hub, error) {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Heartbeat <= 0 || cfg.Heartbeat >= cfg.IdleTimeout {
		cfg.Heartbeat = cfg.IdleTimeout * 2 / 3
	}
	if cfg.SendBuffer <= 0 {
		cfg.SendBuffer = 64
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = 8 << 10
	}
	if cfg.MaxMalformed <= 0 {
		cfg.MaxMalformed = 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Process == "" {
		cfg.Process = "p-" + uuid.NewString()[:8]
	}
	h := &Hub{cfg: cfg, auth: auth, conns: map[string]*conn{}, replaced: map[string]*replacements{}, panics: panics.New(cfg.Registerer, cfg.Logger)}
	h.gauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "smp_websocket_connections", Help: "Open technician WebSocket connections."},
		func() float64 { return float64(h.Connections()) })
	h.messages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_websocket_messages_total", Help: "WebSocket messages by direction and type."},
		[]string{"direction", "type"})
	h.in = map[string]prometheus.Counter{}
	for t := range knownTypes {
		h.in[t] = h.messages.WithLabelValues("in", t)
	}
	h.in["malformed"] = h.messages.WithLabelValues("in", "malformed")
	h.closed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_websocket_closed_total",
		Help: "Technician WebSocket connections closed, by reason: idle (nothing received for the idle timeout), replaced (a newer connection of the technician), client (closed by the app or the network), slow (send buffer full), refused (connecting failed), server (stop, logout, abuse)."},
		[]string{"reason"})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{h.gauge, h.messages, h.closed} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return h, nil
}

// SetGateway connects the hub to the dispatch engine.
func (h *Hub) SetGateway(g smp.TechnicianGateway) { h.gateway = g }

type conn struct {
	techID string
	id     string // unique across processes: Process/random
	ws     *websocket.Conn
	send   chan any
	done   chan struct{}
	once   sync.Once
	reason atomic.Pointer[string] // why it closed: the first reason given
	online bool                   // counted in Hub.online; guarded by Hub.mu
}

func (c *conn) close() { c.once.Do(func() { close(c.done) }) }

// closeFor closes c, recording why unless a reason was given before.
func (c *conn) closeFor(reason string) {
	c.reason.CompareAndSwap(nil, &reason)
	c.close()
}

// closedFor is why c closed (server when nobody said).
func (c *conn) closedFor() string {
	if r := c.reason.Load(); r != nil {
		return *r
	}
	return closedServer
}

// Connections returns the number of open connections whose technician
// is online: connected to the engine (TechnicianConnected) and not yet
// closed. A connection still connecting is not counted, so that a count
// of N means N technicians' connections have done their connecting work.
func (h *Hub) Connections() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.online
}

// Notify queues m for the technician's connection.
func (h *Hub) Notify(techID string, m smp.TechnicianMessage) bool {
	h.mu.Lock()
	c := h.conns[techID]
	h.mu.Unlock()
	if c == nil || !h.current(c) {
		return false // not here: the Broadcaster publishes it for the newest connection's process
	}
	return h.enqueue(c, m)
}

func (h *Hub) enqueue(c *conn, m any) bool {
	select {
	case c.send <- m:
		return true
	case <-c.done:
		return false
	default:
		// A connection that cannot keep up is closed; the app reconnects
		// and gets its open offers again.
		h.cfg.Logger.Warn("ws: send buffer full; closing connection", "technician_id", c.techID)
		c.closeFor(closedSlow)
		return false
	}
}

// connect claims c's session and marks its technician online through it,
// unless a newer connection replaced c meanwhile (current false). A
// technician's connections connect one at a time in this process, so an
// older one can never claim after a newer one.
func (h *Hub) connect(ctx context.Context, c *conn) (resume []smp.TechnicianMessage, current bool, err error) {
	mu := &h.connecting[fnv32(c.techID)%uint32(len(h.connecting))]
	mu.Lock()
	defer mu.Unlock()
	h.mu.Lock()
	current = h.conns[c.techID] == c
	h.mu.Unlock()
	if !current {
		return nil, false, nil
	}
	if h.cfg.Sessions != nil {
		if err := h.cfg.Sessions.Claim(ctx, c.techID, c.id); err != nil {
			h.cfg.Logger.Warn("ws: session not recorded", "technician_id", c.techID, "err", err)
		}
	}
	resume, err = h.gateway.TechnicianConnected(ctx, c.techID, c.id)
	return resume, true, err
}

func fnv32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// Start does nothing: connections arrive through ServeHTTP. It is there
// so that the hub has the lifecycle of every long-running part.
func (h *Hub) Start(context.Context) error { return nil }

// Stop closes every connection and waits for their goroutines until ctx
// ends; safe to call twice.
func (h *Hub) Stop(ctx context.Context) error {
	h.mu.Lock()
	for _, c := range h.conns {
		c.closeFor(closedServer)
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ws: connections still open: %w", ctx.Err())
	}
}

// ClientMessage is what a technician's app sends.
type ClientMessage struct {
	Type      string  `json:"type"` // heartbeat, availability, location, ack, accept, decline
	OrderID   string  `json:"order_id,omitempty"`
	Available *bool   `json:"available,omitempty"`
	Lat       float64 `json:"lat,omitempty"`
	Lng       float64 `json:"lng,omitempty"`
	Reason    string  `json:"reason,omitempty"`
	// Ref is echoed in the reply so the app can match it.
	Ref string `json:"ref,omitempty"`
}

// Reply answers a client message.
type Reply struct {
	Type       string     `json:"type"` // welcome, heartbeat_ack, ok, accept_result, error
	Ref        string     `json:"ref,omitempty"`
	OrderID    string     `json:"order_id,omitempty"`
	Accepted   *bool      `json:"accepted,omitempty"`
	Code       string     `json:"code,omitempty"`
	Message    string     `json:"message,omitempty"`
	ServerTime *time.Time `json:"server_time,omitempty"`
	TechID     string     `json:"technician_id,omitempty"`
	// HeartbeatMs (welcome): send a heartbeat at least this often (the
	// server closes a connection silent for its IdleTimeout, longer).
	HeartbeatMs int64 `json:"heartbeat_ms,omitempty"`
}

// ServeHTTP upgrades an authenticated technician's request.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	techID, err := h.auth(r.Context(), r)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": smp.EUNAUTHORIZED, "message": "a valid technician token is required"}})
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept wrote the response
	}
	c := &conn{techID: techID, id: h.cfg.Process + "/" + uuid.NewString()[:13], ws: ws, send: make(chan any, h.cfg.SendBuffer), done: make(chan struct{})}
	h.mu.Lock()
	if old := h.conns[techID]; old != nil {
		old.closeFor(closedReplaced) // the newest connection wins
		h.noteReplacedLocked(techID)
	}
	h.conns[techID] = c
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		select {
		case <-c.done:
		case <-r.Context().Done():
		}
		cancel() // ends a read in progress
	}()
	defer func() { <-watchDone }() // after the cleanup below has closed c
	defer func() {
		h.mu.Lock()
		if c.online {
			c.online = false
			h.online--
		}
		if h.conns[techID] == c {
			delete(h.conns, techID)
			h.mu.Unlock()
			// Both only if c is still the newest connection anywhere: a
			// reconnect to another process keeps the technician online.
			h.gateway.TechnicianDisconnected(context.Background(), techID, c.id)
			if h.cfg.Sessions != nil {
				h.cfg.Sessions.Drop(context.Background(), techID, c.id)
			}
		} else {
			h.mu.Unlock()
		}
		c.close()
		h.closed.WithLabelValues(c.closedFor()).Inc()
		ws.Close(websocket.StatusNormalClosure, "bye")
	}()

	now := h.cfg.Now().UTC()
	resume, current, err := h.connect(ctx, c)
	if !current {
		return // replaced by a newer connection before it connected
	}
	if err != nil {
		c.reason.CompareAndSwap(nil, ptr(closedRefused))
		if ctx.Err() != nil {
			// Replaced by a newer connection (or the client left) while
			// connecting: not a failure; the replacement is logged once.
			return
		}
		if smp.ErrorCode(err) == smp.EFORBIDDEN { // suspended: not a failure of ours
			ws.Close(websocket.StatusPolicyViolation, smp.ErrorMessage(err))
			return
		}
		h.cfg.Logger.Error("ws: connect", "technician_id", techID, "err", err)
		ws.Close(websocket.StatusInternalError, "internal error")
		return
	}
	h.mu.Lock()
	if h.conns[techID] == c {
		c.online = true
		h.online++
	}
	h.mu.Unlock()
	h.enqueue(c, Reply{Type: "welcome", TechID: techID, ServerTime: &now, HeartbeatMs: h.cfg.Heartbeat.Milliseconds()})
	for _, m := range resume {
		h.enqueue(c, m)
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		// A panic ends this connection (the app reconnects), not the process.
		defer c.close()
		h.panics.Go("websocket", func() { h.writeLoop(ctx, c) })
	}()
	h.readLoop(ctx, c)
	c.close()
	<-writerDone
}

func (h *Hub) writeLoop(ctx context.Context, c *conn) {
	// A write that takes over writeTimeout closes the connection: one
	// timer for the connection's life, armed around each write (not a
	// context with a deadline per message).
	stuck := time.AfterFunc(time.Hour, func() { c.closeFor(closedSlow) })
	stuck.Stop()
	defer stuck.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.send:
			stuck.Reset(writeTimeout)
			err := wsjson.Write(ctx, c.ws, m)
			stuck.Stop()
			if err != nil {
				c.closeFor(closedClient)
				return
			}
			typ := typeOf(m)
			h.countOut(typ)
			if typ == smp.MessageLoggedOut {
				// The session was revoked: the app is told, then the
				// connection ends (reconnecting needs a valid session).
				c.reason.CompareAndSwap(nil, ptr(closedServer))
				c.ws.Close(websocket.StatusPolicyViolation, "logged out")
				c.close()
				return
			}
		}
	}
}

// writeTimeout bounds one message's write to a connection.
const writeTimeout = 10 * time.Second

// countOut counts a message sent, by type.
func (h *Hub) countOut(typ string) {
	ctr, ok := h.out.Load(typ)
	if !ok {
		ctr, _ = h.out.LoadOrStore(typ, h.messages.WithLabelValues("out", typ))
	}
	ctr.(prometheus.Counter).Inc()
}

func ptr(s string) *string { return &s }

func typeOf(m any) string {
	switch v := m.(type) {
	case smp.TechnicianMessage:
		return v.Type
	case Reply:
		return v.Type
	}
	return "other"
}

func (h *Hub) readLoop(ctx context.Context, c *conn) {
	c.ws.SetReadLimit(h.cfg.MaxMessageBytes)
	var bad malformed
	// One timer for the connection's life, pushed back by each message
	// (not a context with a deadline per read).
	idle := time.AfterFunc(h.cfg.IdleTimeout, func() { c.closeFor(closedIdle) })
	defer idle.Stop()
	for {
		typ, data, err := c.ws.Read(ctx)
		if err != nil {
			// The connection is gone, was closed (idle past IdleTimeout,
			// replaced, the hub stopping: ctx ends), or sent a message
			// over MaxMessageBytes (closed with 1009 by the library).
			c.closeFor(closedClient)
			return
		}
		idle.Reset(h.cfg.IdleTimeout)
		m, ref, err := parseClientMessage(typ, data)
		if err == nil && !knownTypes[m.Type] {
			err = fmt.Errorf("unknown message type %q", m.Type)
		}
		if err != nil {
			h.in["malformed"].Inc()
			if bad.add(h.cfg.Now(), h.cfg.MaxMalformed) {
				h.cfg.Logger.Warn("ws: too many malformed messages; closing the connection", "technician_id", c.techID, "limit_per_minute", h.cfg.MaxMalformed)
				c.reason.CompareAndSwap(nil, ptr(closedServer))
				c.ws.Close(websocket.StatusPolicyViolation, "too many malformed messages")
				return
			}
			h.enqueue(c, Reply{Type: "error", Ref: ref, Code: smp.EINVALID, Message: "malformed message: " + err.Error()})
			continue
		}
		h.in[m.Type].Inc() // a known type (above)
		var reply *Reply
		if err := h.panics.Recover("websocket", func() error { reply = h.handle(ctx, c, m); return nil }); err != nil {
			// Logged and counted once by Record; the connection goes on.
			reply = &Reply{Type: "error", Ref: m.Ref, Code: smp.EINTERNAL, Message: "internal error"}
		}
		if reply != nil {
			h.enqueue(c, *reply)
		}
	}
}

func (h *Hub) handle(ctx context.Context, c *conn, m ClientMessage) *Reply {
	techID := c.techID
	g := h.gateway
	// errReply answers an error; internal ones are logged here, once.
	errReply := func(ref string, err error) *Reply {
		if smp.ErrorCode(err) == smp.EINTERNAL {
			h.cfg.Logger.Error("ws: internal error", "technician_id", techID, "type", m.Type, "order_id", m.OrderID, "err", err)
		}
		return &Reply{Type: "error", Ref: ref, Code: smp.ErrorCode(err), Message: smp.ErrorMessage(err)}
	}
	switch m.Type {
	case "heartbeat":
		h.touch(ctx, c)
		now := h.cfg.Now().UTC()
		return &Reply{Type: "heartbeat_ack", Ref: m.Ref, ServerTime: &now}
	case "availability":
		if m.Available == nil {
			return errReply(m.Ref, smp.Errorf(smp.EINVALID, "availability needs \"available\": true|false"))
		}
		if err := g.SetAvailability(ctx, techID, *m.Available); err != nil {
			return errReply(m.Ref, err)
		}
	case "location":
		if err := g.UpdateLocation(ctx, techID, m.Lat, m.Lng); err != nil {
			return errReply(m.Ref, err)
		}
	case "ack":
		if err := g.Acknowledge(ctx, techID, m.OrderID); err != nil {
			return errReply(m.Ref, err)
		}
	case "accept":
		_, err := g.Accept(ctx, techID, m.OrderID)
		ok := err == nil
		r := &Reply{Type: "accept_result", Ref: m.Ref, OrderID: m.OrderID, Accepted: &ok}
		if err != nil {
			e := errReply(m.Ref, err)
			r.Code, r.Message = e.Code, e.Message
		}
		return r
	case "decline":
		if err := g.Decline(ctx, techID, m.OrderID, m.Reason); err != nil {
			return errReply(m.Ref, err)
		}
	default:
		return errReply(m.Ref, smp.Errorf(smp.EINVALID, "unknown message type %q", m.Type))
	}
	if m.Ref != "" {
		return &Reply{Type: "ok", Ref: m.Ref, OrderID: m.OrderID}
	}
	return nil
}
