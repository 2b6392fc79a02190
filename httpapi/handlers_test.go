package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"smp/httpapi"
	"smp/sqlstore"
)

// TestStuckOrdersAnswersDatabaseFailure: GET /admin/orders?stuck_after= (the
// runbook's INC-001 triage) answers a failing database with a 5xx error,
// logged once, never with 200 and an empty list (staticcheck SA4006).
func TestStuckOrdersAnswersDatabaseFailure(t *testing.T) {
	t.Parallel()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	db.Close() // every query fails from now on

	var logs bytes.Buffer
	srv, err := httpapi.New(httpapi.Config{AdminToken: "adm", Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, httpapi.Deps{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/admin/orders?stuck_after=60", "/admin/orders?stuck_after=60&city=HCMC", "/admin/orders"} {
		logs.Reset()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer adm")
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %d %s: %v", path, w.Code, w.Body.String(), err)
		}
		if w.Code < 500 || body.Error.Code == "" || body.Error.Message == "" {
			t.Fatalf("%s with the database down: %d %s", path, w.Code, w.Body.String())
		}
		if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 {
			t.Fatalf("%s: the failure was logged %d times: %s", path, n, logs.String())
		}
	}
}

// TestHonestEdges: a limit above the largest a listing returns is a 400
// (not a silent 100); the technicians' WebSocket route without an upgrade
// and a missing file under /admin/ui/ answer the JSON error every other
// route does.
func TestHonestEdges(t *testing.T) {
	t.Parallel()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusSwitchingProtocols) })
	srv, err := httpapi.New(httpapi.Config{AdminToken: "adm"}, httpapi.Deps{Store: db, PublicAPI: true, WS: ws})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string, hdr ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer adm")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		return w
	}
	jsonError := func(w *httptest.ResponseRecorder) string {
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Message == "" ||
			!strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			return ""
		}
		return body.Error.Code
	}
	for _, c := range []struct {
		path string
		code int
		hdr  []string
	}{
		{"/admin/orders?limit=1001", 400, nil},
		{"/admin/orders?limit=0", 400, nil},
		{"/admin/orders?stuck_after=60&limit=5000", 400, nil},
		{"/admin/audit?limit=1001", 400, nil},
		{"/v1/technicians/ws", 426, nil},
		{"/v1/technicians/ws", 426, []string{"Connection", "keep-alive"}},
		{"/admin/ui/missing.js", 404, nil},
		{"/admin/ui/", 404, nil},
	} {
		w := get(c.path, c.hdr...)
		if w.Code != c.code || jsonError(w) == "" {
			t.Errorf("GET %s: %d %q %s, want %d with the JSON error", c.path, w.Code, w.Header().Get("Content-Type"), w.Body.String(), c.code)
		}
	}
	for path, code := range map[string]int{"/admin/orders?limit=1000": 200, "/admin/audit?limit=1000": 200, "/admin/ui/app.js": 200} {
		if w := get(path); w.Code != code {
			t.Errorf("GET %s: %d, want %d", path, w.Code, code)
		}
	}
	if w := get("/v1/technicians/ws", "Connection", "keep-alive, Upgrade", "Upgrade", "websocket"); w.Code != http.StatusSwitchingProtocols {
		t.Errorf("a WebSocket handshake did not reach the hub: %d", w.Code)
	}
}
