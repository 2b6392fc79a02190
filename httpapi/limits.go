package httpapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/payments"
)

// The server's defences against slow and greedy clients (issue 14.7):
// read, write and idle timeouts on every connection, a body limit per
// route, and a cap on the connections one client address holds.
//
// A WebSocket is exempt from the read and write timeouts: net/http
// clears a connection's deadlines when the handler hijacks it, and the
// hub then bounds its reads (IdleTimeout) and writes (10 s) itself. The
// cap counts a WebSocket until it closes.

// Defaults of Config's limits.
const (
	DefaultReadTimeout  = 30 * time.Second  // the whole request, body included
	DefaultWriteTimeout = 30 * time.Second  // from the end of the headers to the end of the answer
	DefaultIdleTimeout  = 120 * time.Second // a keep-alive connection between requests
	// DefaultBodyLimit is the body limit of every route but those in
	// bodyLimits.
	DefaultBodyLimit = 64 << 10
)

// bodyLimits are the routes whose body limit is not DefaultBodyLimit.
var bodyLimits = map[string]int64{
	"POST /integrations/inside/payment-webhook": payments.MaxBody,
	"POST /integrations/alertmanager/webhook":   1 << 20, // Alertmanager groups many alerts in one post
}

// countsItsOwn are the routes whose handler answers (and counts, in
// webhook_requests_total) a body over the limit itself: refused early,
// it would be missing from the runbook's webhook error rate.
var countsItsOwn = map[string]bool{"POST /integrations/inside/payment-webhook": true}

// bodyLimit returns the body limit of a route pattern.
func bodyLimit(pattern string) int64 {
	if n, ok := bodyLimits[pattern]; ok {
		return n
	}
	return DefaultBodyLimit
}

// tooLarge is a request body over its route's limit: 413 with the JSON
// error.
type tooLarge struct{ limit int64 }

func (e *tooLarge) Error() string {
	return fmt.Sprintf("request body larger than %d KiB", e.limit>>10)
}

// asTooLarge turns a body read's *http.MaxBytesError into a *tooLarge
// (nil for other errors).
func asTooLarge(err error) *tooLarge {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &tooLarge{limit: mbe.Limit}
	}
	var tl *tooLarge
	if errors.As(err, &tl) {
		return tl
	}
	return nil
}

func writeTooLarge(w http.ResponseWriter, e *tooLarge) {
	w.Header().Set("Connection", "close") // the rest of the body is not read
	writeJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"error": map[string]string{"code": smp.EINVALID, "message": e.Error()}})
}

// limitBody refuses a declared body over the route's limit before the
// handler runs (413, nothing read), and caps what the handler can read of
// an undeclared (chunked) one: reading past it fails with an
// *http.MaxBytesError, which decode and writeError answer with 413.
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request, pattern string) bool {
	limit := bodyLimit(pattern)
	if r.ContentLength > limit && !countsItsOwn[pattern] {
		writeTooLarge(w, &tooLarge{limit: limit})
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	return true
}

// configureLimits sets the timeouts of srv from cfg (defaults for zero).
func configureLimits(srv *http.Server, cfg Config) {
	srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = cfg.ReadTimeout, cfg.WriteTimeout, cfg.IdleTimeout
	if srv.ReadTimeout <= 0 {
		srv.ReadTimeout = DefaultReadTimeout
	}
	if srv.WriteTimeout <= 0 {
		srv.WriteTimeout = DefaultWriteTimeout
	}
	if srv.IdleTimeout <= 0 {
		srv.IdleTimeout = DefaultIdleTimeout
	}
	srv.ReadHeaderTimeout = min(10*time.Second, srv.ReadTimeout)
	srv.MaxHeaderBytes = 64 << 10
}

// perIPListener accepts at most max connections at once from one client
// address; a connection over the cap is answered 503 with the JSON error
// and closed at once, so it holds no descriptor and no goroutine.
type perIPListener struct {
	net.Listener
	max     int
	refused prometheus.Counter

	mu   sync.Mutex
	open map[string]int
}

func newPerIPListener(ln net.Listener, max int, refused prometheus.Counter) net.Listener {
	if max <= 0 {
		return ln
	}
	return &perIPListener{Listener: ln, max: max, refused: refused, open: map[string]int{}}
}

var overCap = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\nContent-Length: 96\r\n\r\n" +
	`{"error":{"code":"unavailable","message":"too many connections from your address; retry later"}}`)

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := c.RemoteAddr().String()
		if host, _, err := net.SplitHostPort(ip); err == nil {
			ip = host
		}
		l.mu.Lock()
		if l.open[ip] >= l.max {
			l.mu.Unlock()
			l.refused.Inc()
			c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			c.Write(overCap)
			c.Close()
			continue
		}
		l.open[ip]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *perIPListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

// countedConn gives its slot back when closed (by the server, or by the
// WebSocket that hijacked it).
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
