package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/app"
	"smp/auth"
	"smp/sim"
)

// testApp is the whole platform in this process on a random port.
type testApp struct {
	*App
	t     testing.TB
	url   string
	admin string
	// am is Alertmanager's own token (app.Config.AlertmanagerToken).
	am string
	ds *sim.Dataset
}

func startApp(t *testing.T, mutate func(*Config)) *testApp {
	t.Helper()
	return startAppLogging(t, mutate, nil)
}

// startAppLogging is startApp with the platform's logs, as JSON at info
// level, written to logs (nil: discarded unless SMP_TEST_LOG is set).
func startAppLogging(t *testing.T, mutate func(*Config), logs io.Writer) *testApp {
	t.Helper()
	ctx := context.Background()
	cfg := Config{LogLevel: "error", LogFormat: "json", Config: app.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), AdminToken: "test-admin-token", AlertmanagerToken: "test-alertmanager-token",
		InvitationTTL: 5 * time.Second, RetryAfter: time.Second, StuckAfter: 5 * time.Minute, BackpressureThreshold: 100, Partitions: 4}}
	if mutate != nil {
		mutate(&cfg)
	}
	must(t, cfg.Validate())
	db, err := openStore(ctx, cfg, nil, nil)
	must(t, err)
	ds, err := sim.Seed(ctx, db, sim.SeedConfig{Partners: 3, Technicians: 30, Customers: 3, Seed: 7}, auth.HashToken)
	must(t, err)
	must(t, db.Close())
	log := slog.New(slog.DiscardHandler)
	if logs != nil {
		log = cfg.logger(logs)
	} else if os.Getenv("SMP_TEST_LOG") != "" { // to debug a test: SMP_TEST_LOG=1
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a := &App{Cfg: cfg.Config, Log: log}
	must(t, a.Open(ctx))
	t.Cleanup(func() { a.Close() })
	return &testApp{App: a, t: t, url: a.HTTP.URL(), admin: cfg.AdminToken, am: cfg.AlertmanagerToken, ds: ds}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type response struct {
	Status int
	Body   map[string]any
	Raw    string
}

func (a *testApp) do(method, path, token string, body any, hdr ...string) response {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, _ := json.Marshal(b)
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, a.url+path, rd)
	must(a.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	must(a.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{Status: resp.StatusCode, Raw: string(raw)}
	json.Unmarshal(raw, &r.Body)
	return r
}

func errCode(r response) string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (a *testApp) countOrders() int64 {
	counts, err := a.Store.CountOrdersByStage(context.Background())
	must(a.t, err)
	var n int64
	for _, v := range counts {
		n += v
	}
	return n
}

func TestCreateOrderRejectsBadInputAndWritesNothing(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	cust := a.ds.Customers[0].Token
	valid := `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":250000}`
	cases := []struct {
		name, body, token string
		status            int
		code, msg         string
	}{
		{"NoToken", valid, "", 401, smp.EUNAUTHORIZED, "token"},
		{"BadToken", valid, "nope", 401, smp.EUNAUTHORIZED, "invalid token"},
		{"TechnicianToken", valid, a.ds.Technicians[0].Token, 403, smp.EFORBIDDEN, "customer"},
		{"Malformed", `{"city":`, cust, 400, smp.EINVALID, "malformed"},
		{"NotAnObject", `[1,2]`, cust, 400, smp.EINVALID, "malformed"},
		{"UnknownField", `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":1,"tip":5}`, cust, 400, smp.EINVALID, "tip"},
		{"MissingLat", `{"city":"HCMC","service":"plumbing","lng":106.7,"price_vnd":250000}`, cust, 400, smp.EINVALID, "lat is required"},
		{"MissingPrice", `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7}`, cust, 400, smp.EINVALID, "price_vnd is required"},
		{"UnknownCity", `{"city":"SGN","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":250000}`, cust, 400, smp.EINVALID, "unknown city"},
		{"UnknownService", `{"city":"HCMC","service":"massage","lat":10.78,"lng":106.7,"price_vnd":250000}`, cust, 400, smp.EINVALID, "unknown service"},
		{"OutsideCity", `{"city":"HCMC","service":"plumbing","lat":21.0,"lng":105.8,"price_vnd":250000}`, cust, 400, smp.EINVALID, "outside HCMC"},
		{"ZeroPrice", `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":0}`, cust, 400, smp.EINVALID, "positive"},
		{"NegativePrice", `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":-5}`, cust, 400, smp.EINVALID, "positive"},
		{"FractionalPrice", `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":1.5}`, cust, 400, smp.EINVALID, "malformed"},
		{"StringLat", `{"city":"HCMC","service":"plumbing","lat":"10.78","lng":106.7,"price_vnd":250000}`, cust, 400, smp.EINVALID, "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := a.do("POST", "/v1/orders", c.token, c.body)
			if r.Status != c.status || errCode(r) != c.code || !strings.Contains(r.Raw, c.msg) {
				t.Fatalf("got %d %s, want %d %s containing %q", r.Status, r.Raw, c.status, c.code, c.msg)
			}
		})
	}
	if n := a.countOrders(); n != 0 {
		t.Fatalf("%d orders written by rejected requests", n)
	}
	if r := a.do("POST", "/v1/orders", cust, valid); r.Status != 201 || r.Body["stage"] != string(smp.StageDispatching) || r.Body["payment_status"] != "pending" {
		t.Fatalf("valid order: %d %s", r.Status, r.Raw)
	}
}

func TestAdminAuthRoles(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	ctx := context.Background()
	must(t, a.Store.PutToken(ctx, auth.HashToken("fin-token"), "admin", "fiona", smp.RoleFinance))
	must(t, a.Store.PutToken(ctx, auth.HashToken("ops-token"), "admin", "olga", smp.RoleOps))
	cases := []struct {
		method, path, token string
		body                any
		status              int
	}{
		{"GET", "/admin/stats", "", nil, 401},
		{"GET", "/admin/stats", "wrong", nil, 401},
		{"GET", "/admin/stats", a.ds.Customers[0].Token, nil, 403},
		{"GET", "/admin/stats", "fin-token", nil, 200},
		{"GET", "/admin/audit", "ops-token", nil, 200},
		{"PUT", "/admin/flags/ENABLE_AUTO_DISPATCH", "fin-token", map[string]any{"value": false, "reason": "x y z"}, 403},
		{"PUT", "/admin/flags/ENABLE_AUTO_DISPATCH", "ops-token", map[string]any{"value": true, "reason": "no change"}, 200},
		{"PUT", "/admin/flags/NO_SUCH_FLAG", "ops-token", map[string]any{"value": true, "reason": "typo"}, 404},
		{"PUT", "/admin/flags/ENABLE_AUTO_DISPATCH", "ops-token", map[string]any{"reason": "missing value"}, 400},
		{"POST", "/admin/orders/nope/assign", "fin-token", map[string]any{"technician_id": "T0001", "reason": "x y z"}, 403},
		{"POST", "/admin/orders/nope/assign", a.admin, map[string]any{"technician_id": "T0001", "reason": "x y z"}, 404},
		{"GET", "/admin/orders/nope/dispatch-trace", "ops-token", nil, 404},
	}
	for _, c := range cases {
		r := a.do(c.method, c.path, c.token, c.body)
		if r.Status != c.status {
			t.Errorf("%s %s with %q: %d %s, want %d", c.method, c.path, c.token, r.Status, r.Raw, c.status)
		}
		if r.Status >= 400 && errCode(r) == "" {
			t.Errorf("%s %s: error body without code: %s", c.method, c.path, r.Raw)
		}
	}
}

func TestHealthAndMetrics(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	r := a.do("GET", "/health", "", nil)
	if r.Status != 200 || r.Body["status"] != "ok" {
		t.Fatalf("health: %d %s", r.Status, r.Raw)
	}
	a.do("POST", "/v1/orders", a.ds.Customers[0].Token, `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":250000}`)
	resp, err := http.Get(a.url + "/metrics")
	must(t, err)
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"dispatch_engine_up 1", "order_stuck_in_stage_02_count 0", `smp_order_transitions_total{to="01_created"} 1`,
		`smp_dispatch_queue_length{city="HCMC"}`, `smp_dispatch_offers_total{outcome="sent"}`, `smp_dispatch_offers_total{outcome="accepted"}`,
		"smp_dispatch_latency_seconds_bucket", "smp_websocket_connections", "smp_outbox_backlog", `smp_orders{stage="02_dispatching"}`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// A failing dependency turns /health into 503 and dispatch_engine_up to 0.
	a.Engine.Stop(context.Background())
	r = a.do("GET", "/health", "", nil)
	checks, _ := r.Body["checks"].(map[string]any)
	de, _ := checks["dispatch_engine"].(map[string]any)
	if r.Status != 503 || r.Body["status"] != "fail" || de["status"] != "fail" {
		t.Fatalf("health with the engine stopped: %d %s", r.Status, r.Raw)
	}
	resp, err = http.Get(a.url + "/metrics")
	must(t, err)
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(raw), "dispatch_engine_up 0") {
		t.Fatal("dispatch_engine_up is not 0 with the engine stopped")
	}
}

func TestStuckOrdersMetric(t *testing.T) {
	t.Parallel()
	a := startApp(t, func(c *Config) { c.StuckAfter = 200 * time.Millisecond })
	ops := a.admin
	if r := a.do("PUT", "/admin/flags/ENABLE_AUTO_DISPATCH", ops, map[string]any{"value": false, "reason": "INC-001 drill"}); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	for i := 0; i < 12; i++ {
		a.do("POST", "/v1/orders", a.ds.Customers[0].Token, `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":250000}`)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(a.url + "/metrics")
		must(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(raw), "order_stuck_in_stage_02_count 12") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("order_stuck_in_stage_02_count never reached 12 (the runbook's > 10 alert)")
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

func TestCustomerViewManualDispatchMessage(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	a.do("PUT", "/admin/flags/ENABLE_AUTO_DISPATCH", a.admin, map[string]any{"value": false, "reason": "INC-001 option D"})
	cust := a.ds.Customers[0].Token
	r := a.do("POST", "/v1/orders", cust, `{"city":"HN","service":"plumbing","lat":21.0,"lng":105.8,"price_vnd":250000}`)
	id, _ := r.Body["id"].(string)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = a.do("GET", "/v1/orders/"+id, cust, nil)
		if r.Body["stage"] == string(smp.StageDispatching) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order never reached 02: %s", r.Raw)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r.Body["status_message"] != "Đang xử lý đơn của bạn, ops team sẽ liên hệ trong 15 phút" {
		t.Fatalf("vi message = %v", r.Body["status_message"])
	}
	r = a.do("GET", "/v1/orders/"+id, cust, nil, "Accept-Language", "en-US,en;q=0.9")
	if !strings.Contains(fmt.Sprint(r.Body["status_message"]), "within 15 minutes") {
		t.Fatalf("en message = %v", r.Body["status_message"])
	}
	ts, _ := r.Body["transitions"].([]any)
	if len(ts) != 2 {
		t.Fatalf("transitions = %v", ts)
	}
	// Another customer cannot see it.
	if r := a.do("GET", "/v1/orders/"+id, a.ds.Customers[1].Token, nil); r.Status != 404 {
		t.Fatalf("other customer: %d", r.Status)
	}
	// Cancel, then cancelling again conflicts.
	if r := a.do("POST", "/v1/orders/"+id+"/cancel", cust, nil); r.Status != 200 || r.Body["stage"] != string(smp.StageCancelled) {
		t.Fatalf("cancel: %d %s", r.Status, r.Raw)
	}
	if r := a.do("POST", "/v1/orders/"+id+"/cancel", cust, nil); r.Status != 409 {
		t.Fatalf("second cancel: %d %s", r.Status, r.Raw)
	}
}
