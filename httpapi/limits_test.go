package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"smp/httpapi"
	"smp/internal/wait"
	"smp/sqlstore"
)

// startLimited serves the API on a port with cfg's limits (and a WebSocket
// echo at /v1/technicians/ws) until the test ends.
func startLimited(t *testing.T, cfg httpapi.Config) *httpapi.Server {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := prometheus.NewRegistry()
	cfg.Addr, cfg.AdminToken, cfg.Registerer, cfg.Gatherer = "127.0.0.1:0", "admin-token", reg, reg
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, b); err != nil {
				return
			}
		}
	})
	srv, err := httpapi.New(cfg, httpapi.Deps{Store: db, PublicAPI: true, WS: echo})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
	})
	return srv
}

func dialServer(t *testing.T, srv *httpapi.Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(srv.URL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d (whatever it
// wrote before).
func closedWithin(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout()) // EOF or a reset: closed by the server
}

// TestBodyOverRouteLimitIs413: a body over its route's limit is 413 with
// the JSON error, whether its length is declared (refused before the
// handler runs) or not (chunked: refused when the handler reads past it).
func TestBodyOverRouteLimitIs413(t *testing.T) {
	t.Parallel()
	srv := startLimited(t, httpapi.Config{})
	big := `{"pattern":"` + strings.Repeat("x", 100<<10) + `"}`
	for _, chunked := range []bool{false, true} {
		var body io.Reader = strings.NewReader(big)
		if chunked {
			body = io.MultiReader(strings.NewReader(big)) // unknown length: sent chunked
		}
		req, _ := http.NewRequest("POST", srv.URL()+"/admin/redis/flush-cache", body)
		req.Header.Set("Authorization", "Bearer admin-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct{ Code, Message string }
		}
		err = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || err != nil || e.Error.Code != "invalid" || !strings.Contains(e.Error.Message, "64 KiB") {
			t.Fatalf("chunked=%v: %d %+v %v, want 413 with the JSON error", chunked, resp.StatusCode, e, err)
		}
	}
}

// TestSlowAndIdleConnectionsAreClosed: a client trickling its body is cut
// at the read timeout, an idle keep-alive connection at the idle timeout.
func TestSlowAndIdleConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	srv := startLimited(t, httpapi.Config{ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	slow := dialServer(t, srv)
	fmt.Fprintf(slow, "POST /admin/redis/flush-cache HTTP/1.1\r\nHost: smp\r\nAuthorization: Bearer admin-token\r\nContent-Length: 1000\r\n\r\n{\"pat")
	idle := dialServer(t, srv)
	fmt.Fprintf(idle, "GET /health HTTP/1.1\r\nHost: smp\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health on the keep-alive connection: %v %v", resp, err)
	}
	resp.Body.Close()
	if !closedWithin(slow, 5*time.Second) {
		t.Error("a slow body's connection is still open after 5 s (read timeout 300 ms)")
	}
	if !closedWithin(idle, 5*time.Second) {
		t.Error("an idle keep-alive connection is still open after 5 s (idle timeout 300 ms)")
	}
}

// TestConnectionsPerIPAreCapped: past MaxConnsPerIP, a client address's
// connection is answered 503 (JSON) and closed; a slot freed is usable
// again.
func TestConnectionsPerIPAreCapped(t *testing.T) {
	t.Parallel()
	srv := startLimited(t, httpapi.Config{MaxConnsPerIP: 3})
	var held []net.Conn
	for range 3 {
		held = append(held, dialServer(t, srv))
	}
	over := dialServer(t, srv)
	over.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("fourth connection: %v %v, want 503", resp, err)
	}
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `"code":"unavailable"`) || !closedWithin(over, 5*time.Second) {
		t.Fatalf("fourth connection: %s, want the JSON error and a close", b)
	}
	for _, c := range held {
		fmt.Fprintf(c, "GET /health HTTP/1.1\r\nHost: smp\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("a connection within the cap: %v %v", resp, err)
		}
	}
	held[0].Close()
	wait.Until(t, 5*time.Second, "a freed slot taken again", func() bool {
		resp, err := http.Get(srv.URL() + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// TestWebSocketOutlivesTimeouts: a WebSocket is exempt from the read and
// write timeouts (net/http clears them when the handler hijacks the
// connection).
func TestWebSocketOutlivesTimeouts(t *testing.T) {
	t.Parallel()
	srv := startLimited(t, httpapi.Config{ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, IdleTimeout: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL(), "http")+"/v1/technicians/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	<-time.After(600 * time.Millisecond) // three times every timeout
	if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.Read(ctx); err != nil || string(b) != "ping" {
		t.Fatalf("echo after the timeouts: %q %v", b, err)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}
