//go:build slow

package e2e

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"smp/internal/wait"
	"smp/sim"
)

// TestInsideDownOneMinute (INC-005): inside stops answering for a minute.
// The breaker opens within seconds; reads are served from the last good
// answer, flagged stale ("Đang cập nhật" when there is none); writes fail
// fast and say so; with INTEGRATION_BYPASS_CIRCUIT users see the real
// error; after recovery a forced half-open probe closes the breaker.
func TestInsideDownOneMinute(t *testing.T) {
	t.Parallel()
	inside := &sim.Inside{}
	wms := &sim.WMS{}
	insideSrv, wmsSrv := httptest.NewServer(inside), httptest.NewServer(wms)
	t.Cleanup(insideSrv.Close)
	t.Cleanup(wmsSrv.Close)
	a := startApp(t, func(c *Config) { c.InsideURL, c.WMSURL = insideSrv.URL, wmsSrv.URL })
	c0, c1 := a.ds.Customers[0].Token, a.ds.Customers[1].Token
	order := a.do("POST", "/v1/orders", c0, `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":300000}`)
	if order.Status != 201 {
		t.Fatalf("create: %s", order.Raw)
	}
	oid := order.Body["id"].(string)

	// Healthy: fresh reads, a payment request goes through.
	if r := a.do("GET", "/v1/me/profile", c0, nil); r.Status != 200 || r.Body["stale"] != false || r.Body["data"] == nil {
		t.Fatalf("profile: %d %s", r.Status, r.Raw)
	}
	if r := a.do("GET", "/v1/stock/FILTER-01", c0, nil); r.Status != 200 || r.Body["stale"] != false {
		t.Fatalf("stock: %d %s", r.Status, r.Raw)
	}
	if r := a.do("POST", "/v1/orders/"+oid+"/pay", c0, nil); r.Status != 201 || r.Body["payment_id"] == nil {
		t.Fatalf("pay: %d %s", r.Status, r.Raw)
	}
	if s := breakerState(t, a, "inside"); s != 0 {
		t.Fatalf("state %v before the outage", s)
	}

	inside.SetDown(true)
	outage := time.Now()
	// Users keep reading: the cached profile, flagged stale.
	wait.Until(t, 10*time.Second, "inside's breaker open", func() bool {
		r := a.do("GET", "/v1/me/profile", c0, nil)
		if r.Status != 200 || r.Body["stale"] != true || r.Body["data"] == nil || r.Body["message"] != "Đang cập nhật" {
			t.Fatalf("profile during the outage: %d %s", r.Status, r.Raw)
		}
		return breakerState(t, a, "inside") == 1
	})
	t.Logf("breaker open %s after inside went down", time.Since(outage).Round(time.Millisecond))
	// A customer never fetched: nothing to serve, "Đang cập nhật".
	if r := a.do("GET", "/v1/me/profile", c1, nil); r.Status != 200 || r.Body["stale"] != true || r.Body["data"] != nil || r.Body["message"] != "Đang cập nhật" {
		t.Fatalf("uncached profile: %d %s", r.Status, r.Raw)
	}
	// Writes fail fast and honestly.
	calls := inside.Calls()
	start := time.Now()
	r := a.do("POST", "/v1/orders/"+oid+"/pay", c0, nil)
	if r.Status != 503 || r.Body["error"] == nil {
		t.Fatalf("pay with the breaker open: %d %s", r.Status, r.Raw)
	}
	if d := time.Since(start); d > time.Second || inside.Calls() != calls {
		t.Fatalf("pay with the breaker open took %s and reached inside %d times: not failing fast", d, inside.Calls()-calls)
	}
	// wms is not affected.
	if r := a.do("GET", "/v1/stock/FILTER-01", c0, nil); r.Status != 200 || r.Body["stale"] != false {
		t.Fatalf("stock during inside's outage: %d %s", r.Status, r.Raw)
	}
	// Ops see it.
	if r := a.do("GET", "/admin/circuit-breaker", a.admin, nil); r.Status != 200 || !contains(r.Raw, `"state": "open"`) {
		t.Fatalf("admin breakers: %s", r.Raw)
	}
	// Bypass: calls go straight through and users see the real error.
	if r := a.do("PUT", "/admin/flags/INTEGRATION_BYPASS_CIRCUIT", a.admin, `{"value":true,"reason":"debugging inside"}`); r.Status != 200 {
		t.Fatalf("set bypass: %d %s", r.Status, r.Raw)
	}
	wait.Until(t, 10*time.Second, "bypass in effect", func() bool {
		return a.do("GET", "/v1/me/profile", c0, nil).Status == 503
	})
	if r := a.do("PUT", "/admin/flags/INTEGRATION_BYPASS_CIRCUIT", a.admin, `{"value":false,"reason":"done"}`); r.Status != 200 {
		t.Fatalf("unset bypass: %d %s", r.Status, r.Raw)
	}
	wait.Until(t, 10*time.Second, "bypass off", func() bool {
		return a.do("GET", "/v1/me/profile", c0, nil).Status == 200
	})

	// The rest of the minute: reads stay served, writes refused.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(outage) < time.Minute {
		<-tick.C
		if r := a.do("GET", "/v1/me/profile", c0, nil); r.Status != 200 || r.Body["stale"] != true {
			t.Fatalf("profile at %s into the outage: %d %s", time.Since(outage).Round(time.Second), r.Status, r.Raw)
		}
	}

	inside.SetDown(false)
	// Ops force half-open (runbook INC-005); the next call probes and closes it.
	if r := a.do("POST", "/admin/circuit-breaker/half-open", "", `{"service":"inside"}`); r.Status != 401 {
		t.Fatalf("half-open without a token: %d", r.Status)
	}
	if r := a.do("POST", "/admin/circuit-breaker/half-open", a.admin, `{"service":"insde"}`); r.Status != 400 {
		t.Fatalf("half-open of an unknown service: %d", r.Status)
	}
	if r := a.do("POST", "/admin/circuit-breaker/half-open", a.admin, `{"service":"inside"}`); r.Status != 200 || r.Body["state"] != "half-open" {
		t.Fatalf("half-open: %d %s", r.Status, r.Raw)
	}
	if r := a.do("GET", "/v1/me/profile", c0, nil); r.Status != 200 || r.Body["stale"] != false {
		t.Fatalf("probe: %d %s", r.Status, r.Raw)
	}
	if s := breakerState(t, a, "inside"); s != 0 {
		t.Fatalf("state %v after a good probe, want 0 (closed)", s)
	}
	if r := a.do("POST", "/v1/orders/"+oid+"/pay", c0, nil); r.Status != 201 {
		t.Fatalf("pay after recovery: %d %s", r.Status, r.Raw)
	}
	if !contains(a.do("GET", "/admin/audit", a.admin, nil).Raw, "circuit_breaker.half_open") {
		t.Fatal("half-open not audited")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
