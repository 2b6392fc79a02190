package wsapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"smp"
	"smp/wsapi"
)

// okGateway accepts every call; TechnicianConnected tells connecting (if
// set), then waits for release (if set) or for the connection's context
// to end.
type okGateway struct {
	buggyGateway
	connecting chan struct{}
	release    chan struct{}
}

func (g okGateway) TechnicianConnected(ctx context.Context, _, _ string) ([]smp.TechnicianMessage, error) {
	if g.connecting != nil {
		g.connecting <- struct{}{}
	}
	if g.release != nil {
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, nil
}
func (okGateway) Accept(context.Context, string, string) (*smp.Order, error) {
	return &smp.Order{}, nil
}

// records is a slog.Handler that keeps every record.
type records struct {
	mu  sync.Mutex
	all []slog.Record
}

func (h *records) Enabled(context.Context, slog.Level) bool { return true }
func (h *records) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.all = append(h.all, r)
	return nil
}
func (h *records) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *records) WithGroup(string) slog.Handler      { return h }
func (h *records) at(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.all {
		if r.Level == level {
			out = append(out, r.Message)
		}
	}
	return out
}

// startHub serves a hub for technician tech-1 and stops it (joining its
// goroutines) at the end of the test.
func startHub(t *testing.T, g smp.TechnicianGateway, cfg wsapi.Config) (*wsapi.Hub, string) {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) }
	}
	hub, err := wsapi.NewHub(func(context.Context, *http.Request) (string, error) { return "tech-1", nil }, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hub.SetGateway(g)
	srv := httptest.NewServer(hub)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hub.Stop(ctx); err != nil {
			t.Error(err)
		}
		srv.Close()
	})
	return hub, "ws" + srv.URL[len("http"):]
}

func dial(t *testing.T, ctx context.Context, url string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

func readReply(t *testing.T, ctx context.Context, ws *websocket.Conn) wsapi.Reply {
	t.Helper()
	var r wsapi.Reply
	if err := wsjson.Read(ctx, ws, &r); err != nil {
		t.Fatalf("read: %v", err)
	}
	return r
}

// readUntilClosed reads until the server closes the connection and
// returns the close status.
func readUntilClosed(ctx context.Context, ws *websocket.Conn) websocket.StatusCode {
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// TestMalformedMessagesAreAnswered: bad JSON, a field of the wrong type,
// an unknown type, a missing type and a binary frame are each answered
// with an error (carrying the ref when it could be read) and the
// connection goes on.
func TestMalformedMessagesAreAnswered(t *testing.T) {
	t.Parallel()
	_, url := startHub(t, okGateway{}, wsapi.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := dial(t, ctx, url)
	if r := readReply(t, ctx, ws); r.Type != "welcome" {
		t.Fatalf("welcome: %+v", r)
	}
	for _, tc := range []struct {
		name, frame, ref, says string
		binary                 bool
	}{
		{name: "bad JSON", frame: `{"type":"heartbeat",`, says: "not a JSON object"},
		{name: "not an object", frame: `[1,2]`, says: "not a JSON object"},
		{name: "wrong field type", frame: `{"type":"location","lat":"ten","lng":106.7,"ref":"r1"}`, ref: "r1", says: `"lat"`},
		{name: "wrong type of type", frame: `{"type":7,"ref":"r2"}`, ref: "r2", says: `"type"`},
		{name: "unknown type", frame: `{"type":"selfdestruct","ref":"r3"}`, ref: "r3", says: "unknown message type"},
		{name: "no type", frame: `{"ref":"r4"}`, ref: "r4", says: "type"},
		{name: "binary", frame: `{"type":"heartbeat"}`, binary: true, says: "binary"},
	} {
		typ := websocket.MessageText
		if tc.binary {
			typ = websocket.MessageBinary
		}
		must(t, ws.Write(ctx, typ, []byte(tc.frame)))
		r := readReply(t, ctx, ws)
		if r.Type != "error" || r.Code != smp.EINVALID || r.Ref != tc.ref || !strings.Contains(r.Message, tc.says) {
			t.Fatalf("%s: reply %+v, want an invalid error with ref %q saying %q", tc.name, r, tc.ref, tc.says)
		}
	}
	must(t, wsjson.Write(ctx, ws, wsapi.ClientMessage{Type: "heartbeat", Ref: "h1"}))
	if r := readReply(t, ctx, ws); r.Type != "heartbeat_ack" || r.Ref != "h1" {
		t.Fatalf("the connection goes on: %+v", r)
	}
}

// TestGarbageFloodCloses: past MaxMalformed malformed messages in a
// minute the connection is closed with 1008 (policy violation).
func TestGarbageFloodCloses(t *testing.T) {
	t.Parallel()
	log := &records{}
	_, url := startHub(t, okGateway{}, wsapi.Config{MaxMalformed: 5, Logger: slog.New(log)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := dial(t, ctx, url)
	if r := readReply(t, ctx, ws); r.Type != "welcome" {
		t.Fatalf("welcome: %+v", r)
	}
	for i := range 5 {
		must(t, ws.Write(ctx, websocket.MessageText, []byte("garbage")))
		if r := readReply(t, ctx, ws); r.Type != "error" {
			t.Fatalf("garbage %d: %+v, want an error reply", i, r)
		}
	}
	must(t, ws.Write(ctx, websocket.MessageText, []byte("garbage")))
	if got := readUntilClosed(ctx, ws); got != websocket.StatusPolicyViolation {
		t.Fatalf("close status %v, want %v", got, websocket.StatusPolicyViolation)
	}
	if errs := log.at(slog.LevelError); len(errs) != 0 {
		t.Fatalf("ERROR lines for a client's garbage: %q", errs)
	}
}

// TestOversizedMessageCloses: a message over MaxMessageBytes (8 KiB by
// default) closes the connection with 1009 (message too big).
func TestOversizedMessageCloses(t *testing.T) {
	t.Parallel()
	_, url := startHub(t, okGateway{}, wsapi.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := dial(t, ctx, url)
	if r := readReply(t, ctx, ws); r.Type != "welcome" {
		t.Fatalf("welcome: %+v", r)
	}
	big := `{"type":"heartbeat","reason":"` + strings.Repeat("x", 16<<10) + `"}`
	must(t, ws.Write(ctx, websocket.MessageText, []byte(big)))
	if got := readUntilClosed(ctx, ws); got != websocket.StatusMessageTooBig {
		t.Fatalf("close status %v, want %v", got, websocket.StatusMessageTooBig)
	}
}

// TestManyConnectionsKeepTheNewest: one technician opening ten
// connections, each replacing the previous one while it is still
// connecting, keeps one (the newest); the replacements are logged once at
// WARN, never at ERROR.
func TestManyConnectionsKeepTheNewest(t *testing.T) {
	t.Parallel()
	log := &records{}
	connecting, release := make(chan struct{}), make(chan struct{})
	hub, url := startHub(t, okGateway{connecting: connecting, release: release}, wsapi.Config{Logger: slog.New(log)})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var conns []*websocket.Conn
	for range 10 {
		conns = append(conns, dial(t, ctx, url))
		select { // registered and connecting: the next one replaces it
		case <-connecting:
		case <-ctx.Done():
			t.Fatal("the connection never reached the gateway")
		}
	}
	close(release)
	newest := conns[len(conns)-1]
	if r := readReply(t, ctx, newest); r.Type != "welcome" {
		t.Fatalf("newest connection: %+v", r)
	}
	for i, ws := range conns[:len(conns)-1] {
		if got := readUntilClosed(ctx, ws); got == -1 {
			t.Fatalf("connection %d: not closed by the server", i)
		}
	}
	if n := hub.Connections(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	must(t, wsjson.Write(ctx, newest, wsapi.ClientMessage{Type: "heartbeat", Ref: "h"}))
	if r := readReply(t, ctx, newest); r.Type != "heartbeat_ack" {
		t.Fatalf("newest connection: %+v", r)
	}
	if errs := log.at(slog.LevelError); len(errs) != 0 {
		t.Fatalf("%d ERROR lines for one technician's reconnects: %q", len(errs), errs)
	}
	if warns := log.at(slog.LevelWarn); len(warns) != 1 {
		t.Fatalf("WARN lines %q, want one about the replaced connections", warns)
	}
}
