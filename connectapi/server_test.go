package connectapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"smp"
	"smp/auth"
	"smp/connect"
	"smp/connectapi"
	"smp/internal/wait"
	"smp/sqlstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// source is a connector class whose tasks run until stopped, or fail when
// the test sends on fail.
type source struct{ fail chan error }

func (s source) Type() string                         { return "source" }
func (s source) Validate(cfg map[string]string) error { return nil }
func (s source) Tasks(string, map[string]string) ([]connect.Task, error) {
	return []connect.Task{task(s)}, nil
}

type task source

func (t task) Run(ctx context.Context, offs connect.Offsets) error {
	if err := offs.Commit(ctx, []connect.Offset{{Partition: map[string]any{"server": "smp"}, Offset: map[string]any{"pos": 5}}}); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-t.fail:
		return err
	}
}

const class = "io.debezium.connector.mysql.MySqlConnector"

type env struct {
	t    *testing.T
	url  string
	fail chan error
}

func start(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.PutToken(ctx, auth.HashToken("fin"), auth.KindAdmin, "fiona", smp.RoleFinance); err != nil {
		t.Fatal(err)
	}
	fail := make(chan error, 1)
	w, err := connect.New(connect.Config{WorkerID: "127.0.0.1:8083", Plugins: map[string]connect.Plugin{class: source{fail}}, Offsets: db})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := connectapi.New(connectapi.Config{Addr: "127.0.0.1:0", Worker: w, Auth: auth.NewAuthenticator(db, "adm")})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []interface{ Start(context.Context) error }{w, srv} {
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		srv.Stop(ctx)
		w.Stop(ctx)
	})
	return &env{t: t, url: srv.URL(), fail: fail}
}

// call makes a request with token and returns the status and the decoded
// body (nil when empty).
func (e *env) call(method, path, token, body string) (int, any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			e.t.Fatalf("%s %s: body %q is not JSON", method, path, raw)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			e.t.Fatalf("%s %s: Content-Type %q", method, path, ct)
		}
	}
	return resp.StatusCode, v
}

func (e *env) must(method, path, body string, want int) any {
	e.t.Helper()
	code, v := e.call(method, path, "adm", body)
	if code != want {
		e.t.Fatalf("%s %s: %d %v, want %d", method, path, code, v, want)
	}
	return v
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// wantError checks Connect's error body {"error_code","message"}.
func (e *env) wantError(method, path, token, body string, code int, msgPart string) {
	e.t.Helper()
	got, v := e.call(method, path, token, body)
	m, _ := v.(map[string]any)
	if got != code || m["error_code"] != float64(code) || !strings.Contains(js(m["message"]), msgPart) || len(m) != 2 {
		e.t.Fatalf("%s %s: %d %s, want %d with {error_code,message} containing %q", method, path, got, js(v), code, msgPart)
	}
}

const c = "/connectors/smp-mysql-connector"

func (e *env) status() map[string]any {
	e.t.Helper()
	return e.must("GET", c+"/status", "", 200).(map[string]any)
}

func (e *env) waitState(path, want string) {
	e.t.Helper()
	wait.Until(e.t, 5*time.Second, path+" "+want, func() bool {
		_, v := e.call("GET", path, "adm", "")
		m, _ := v.(map[string]any)
		if conn, ok := m["connector"].(map[string]any); ok {
			return conn["state"] == want
		}
		return m["state"] == want
	})
}

// TestAPI: every call's status code and body shape, in the order an
// on-call engineer meets them (runbook INC-008).
func TestAPI(t *testing.T) {
	t.Parallel()
	e := start(t)
	cfg := `{"connector.class":"` + class + `","tasks.max":"1","database.include.list":"smp_order"}`

	if got := e.must("GET", "/connectors", "", 200); js(got) != `[]` {
		t.Fatalf("GET /connectors on an empty worker: %s", js(got))
	}
	info := e.must("PUT", c+"/config", cfg, 201).(map[string]any)
	if js(info["tasks"]) != `[{"connector":"smp-mysql-connector","task":0}]` || info["name"] != "smp-mysql-connector" || info["type"] != "source" ||
		info["config"].(map[string]any)["name"] != "smp-mysql-connector" {
		t.Fatalf("PUT config (create): %s", js(info))
	}
	e.must("PUT", c+"/config", cfg, 200)
	if got := e.must("GET", "/connectors", "", 200); js(got) != `["smp-mysql-connector"]` {
		t.Fatalf("GET /connectors: %s", js(got))
	}
	if got := e.must("GET", c+"/config", "", 200).(map[string]any); got["database.include.list"] != "smp_order" || got["name"] != "smp-mysql-connector" {
		t.Fatalf("GET config: %s", js(got))
	}
	if got := e.must("GET", c, "", 200).(map[string]any); got["name"] != "smp-mysql-connector" || got["type"] != "source" {
		t.Fatalf("GET connector: %s", js(got))
	}

	e.waitState(c+"/tasks/0/status", "RUNNING")
	st := e.status()
	if js(st) != `{"connector":{"state":"RUNNING","worker_id":"127.0.0.1:8083"},"name":"smp-mysql-connector","tasks":[{"id":0,"state":"RUNNING","worker_id":"127.0.0.1:8083"}],"type":"source"}` {
		t.Fatalf("status: %s", js(st))
	}
	if ts := e.must("GET", c+"/tasks/0/status", "", 200); js(ts) != `{"id":0,"state":"RUNNING","worker_id":"127.0.0.1:8083"}` {
		t.Fatalf("task status: %s", js(ts))
	}

	// A failed task shows its trace; restart?includeTasks&onlyFailed
	// answers 202 with it RESTARTING, and it runs again.
	e.fail <- io.ErrUnexpectedEOF
	e.waitState(c+"/tasks/0/status", "FAILED")
	if ts := e.must("GET", c+"/tasks/0/status", "", 200).(map[string]any); ts["trace"] != "unexpected EOF" {
		t.Fatalf("failed task status: %s", js(ts))
	}
	st = e.must("POST", c+"/restart?includeTasks=true&onlyFailed=true", "", 202).(map[string]any)
	if js(st["connector"]) != `{"state":"RUNNING","worker_id":"127.0.0.1:8083"}` || js(st["tasks"]) != `[{"id":0,"state":"RESTARTING","worker_id":"127.0.0.1:8083"}]` {
		t.Fatalf("restart onlyFailed: %s", js(st))
	}
	e.waitState(c+"/tasks/0/status", "RUNNING")
	st = e.must("POST", c+"/restart?includeTasks=true", "", 202).(map[string]any)
	if st["connector"].(map[string]any)["state"] != "RESTARTING" || st["tasks"].([]any)[0].(map[string]any)["state"] != "RESTARTING" {
		t.Fatalf("restart includeTasks: %s", js(st))
	}
	e.waitState(c+"/status", "RUNNING")
	if v := e.must("POST", c+"/restart", "", 204); v != nil {
		t.Fatalf("restart: body %v", v)
	}
	if v := e.must("POST", c+"/tasks/0/restart", "", 204); v != nil {
		t.Fatalf("task restart: body %v", v)
	}
	e.waitState(c+"/tasks/0/status", "RUNNING")

	// Offsets: readable at any time, changed only while STOPPED.
	wait.Until(t, 5*time.Second, "offset committed", func() bool {
		_, v := e.call("GET", c+"/offsets", "adm", "")
		return js(v) == `{"offsets":[{"offset":{"pos":5},"partition":{"server":"smp"}}]}`
	})
	patch := `{"offsets":[{"partition":{"server":"smp"},"offset":{"pos":1}}]}`
	e.wantError("PATCH", c+"/offsets", "adm", patch, 400, "STOPPED state")
	e.wantError("DELETE", c+"/offsets", "adm", "", 400, "PUT' request to the '/connectors/smp-mysql-connector/stop'")

	e.must("PUT", c+"/pause", "", 202)
	if st = e.status(); js(st["connector"]) != `{"state":"PAUSED","worker_id":"127.0.0.1:8083"}` || st["tasks"].([]any)[0].(map[string]any)["state"] != "PAUSED" {
		t.Fatalf("paused: %s", js(st))
	}
	e.wantError("DELETE", c+"/offsets", "adm", "", 400, "STOPPED state")
	e.must("PUT", c+"/resume", "", 202)
	e.waitState(c+"/tasks/0/status", "RUNNING")

	e.must("PUT", c+"/stop", "", 204)
	if st = e.status(); js(st["connector"]) != `{"state":"STOPPED","worker_id":"127.0.0.1:8083"}` || js(st["tasks"]) != `[]` {
		t.Fatalf("stopped: %s", js(st))
	}
	if got := e.must("PATCH", c+"/offsets", patch, 200); js(got) != `{"message":"The offsets for this connector have been altered successfully"}` {
		t.Fatalf("PATCH offsets: %s", js(got))
	}
	if got := e.must("GET", c+"/offsets", "", 200); js(got) != `{"offsets":[{"offset":{"pos":1},"partition":{"server":"smp"}}]}` {
		t.Fatalf("offsets after PATCH: %s", js(got))
	}
	e.wantError("PATCH", c+"/offsets", "adm", `{"offsets":[{"offset":{"pos":1}}]}`, 400, "partition")
	e.wantError("PATCH", c+"/offsets", "adm", `{"offsets":`, 400, "JSON")
	if got := e.must("DELETE", c+"/offsets", "", 200); js(got) != `{"message":"The offsets for this connector have been reset successfully"}` {
		t.Fatalf("DELETE offsets: %s", js(got))
	}
	if got := e.must("GET", c+"/offsets", "", 200); js(got) != `{"offsets":[]}` {
		t.Fatalf("offsets after DELETE: %s", js(got))
	}
	e.must("PUT", c+"/resume", "", 202)
	e.waitState(c+"/tasks/0/status", "RUNNING")
}

// TestErrors: unknown connectors and tasks are 404, bad configurations and
// parameters 400, a second POST of a name 409; no token is 401, a role
// without the permission 403; each with Connect's error body.
func TestErrors(t *testing.T) {
	t.Parallel()
	e := start(t)
	for _, r := range [][2]string{{"GET", c + "/status"}, {"GET", c + "/config"}, {"GET", c + "/tasks/0/status"}, {"POST", c + "/restart"},
		{"POST", c + "/tasks/0/restart"}, {"PUT", c + "/pause"}, {"PUT", c + "/resume"}, {"PUT", c + "/stop"}, {"GET", c + "/offsets"}, {"DELETE", c}} {
		e.wantError(r[0], r[1], "adm", "", 404, "Connector smp-mysql-connector not found")
	}
	e.wantError("PUT", c+"/config", "adm", `{"connector.class":"no.Such"}`, 400, "Failed to find any class that implements Connector")
	e.wantError("PUT", c+"/config", "adm", `{"connector.class":`, 400, "JSON")
	e.wantError("PUT", c+"/config", "adm", `{"connector.class":"`+class+`","name":"other"}`, 400, "doesn't match")
	if got := e.must("GET", "/connectors", "", 200); js(got) != `[]` {
		t.Fatalf("refused configs created %s", js(got))
	}
	body := `{"name":"smp-mysql-connector","config":{"connector.class":"` + class + `"}}`
	e.must("POST", "/connectors", body, 201)
	e.wantError("POST", "/connectors", "adm", body, 409, "already exists")
	e.wantError("GET", c+"/tasks/7/status", "adm", "", 404, "not found")
	e.wantError("GET", c+"/tasks/x/status", "adm", "", 404, "not found")
	e.wantError("POST", c+"/restart?includeTasks=maybe", "adm", "", 400, "includeTasks")
	e.wantError("GET", "/nowhere", "adm", "", 404, "Not Found")

	e.wantError("GET", c+"/status", "", "", 401, "bearer token")
	e.wantError("GET", c+"/status", "wrong", "", 401, "")
	e.wantError("PUT", c+"/pause", "fin", "", 403, "may not")
	if code, _ := e.call("GET", c+"/status", "fin", ""); code != 200 {
		t.Fatalf("finance reading status: %d", code)
	}
	if st := e.status(); st["connector"].(map[string]any)["state"] != "RUNNING" {
		t.Fatalf("a refused pause changed the state: %s", js(st))
	}
	if v := e.must("GET", "/", "", 200).(map[string]any); v["version"] == nil {
		t.Fatalf("GET /: %s", js(v))
	}
	e.must("DELETE", c, "", 204)
	e.wantError("GET", c+"/status", "adm", "", 404, "not found")
}
