package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/auth"
	"smp/internal/wait"
)

// TestPortalAndStatusAPI: the portal's assets and the endpoints behind it
// (who am I, dashboard, stuck orders), the public status page (HTML and
// JSON) with the customers' banners, and ops setting a component, with
// roles and bad input.
func TestPortalAndStatusAPI(t *testing.T) {
	t.Parallel()
	a := startApp(t, func(c *Config) { c.DashboardSampleEvery = 20 * time.Millisecond })
	ctx := context.Background()
	must(t, a.Store.PutToken(ctx, auth.HashToken("fin-token"), "admin", "fiona", smp.RoleFinance))
	must(t, a.Store.PutToken(ctx, auth.HashToken("ops-token"), "admin", "olga", smp.RoleOps))

	// Assets are in the binary, with a strict content policy.
	get := func(path string) (*http.Response, string) {
		resp, err := http.Get(a.url + path)
		must(t, err)
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp, b.String()
	}
	for path, want := range map[string]string{"/admin/": "text/html", "/admin/ui/app.js": "javascript", "/admin/ui/app.css": "text/css"} {
		resp, body := get(path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), want) || len(body) < 500 {
			t.Errorf("%s: %d %s (%d bytes)", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("%s: no content security policy", path)
		}
	}
	if resp, _ := get("/admin/ui/missing.js"); resp.StatusCode != 404 {
		t.Errorf("missing asset: %d", resp.StatusCode)
	}
	if resp, body := get("/admin"); resp.StatusCode != 200 || resp.Request.URL.Path != "/admin/" || !strings.Contains(body, "login-token") {
		t.Errorf("/admin does not lead to the portal: %d %s", resp.StatusCode, resp.Request.URL)
	}

	// GET /admin/me says what the role may do, as the API enforces it.
	if r := a.do("GET", "/admin/me", "", nil); r.Status != 401 {
		t.Fatalf("me without token: %d", r.Status)
	}
	can := func(tok string) map[string]any {
		r := a.do("GET", "/admin/me", tok, nil)
		if r.Status != 200 {
			t.Fatalf("me: %d %s", r.Status, r.Raw)
		}
		return r.Body["can"].(map[string]any)
	}
	ops, fin := can("ops-token"), can("fin-token")
	if ops["flags.set"] != true || ops["status.set"] != true || ops["orders.mark_paid"] != false || ops["events.replay"] != false {
		t.Errorf("ops may: %v", ops)
	}
	if fin["orders.mark_paid"] != true || fin["flags.set"] != false || fin["orders.assign"] != false || fin["view"] != true {
		t.Errorf("finance may: %v", fin)
	}
	for perm, v := range can(a.admin) {
		if v != true {
			t.Errorf("admin may not %s", perm)
		}
	}

	// Ops set a component; finance may not; bad input changes nothing.
	set := func(tok, comp, body string) response { return a.do("PUT", "/admin/status/components/"+comp, tok, body) }
	if r := set("fin-token", "payments", `{"state":"degraded","reason":"INC-002"}`); r.Status != 403 {
		t.Fatalf("finance sets status: %d", r.Status)
	}
	for name, c := range map[string]struct{ comp, body string }{
		"UnknownComponent": {"billing", `{"state":"degraded","reason":"INC-002"}`},
		"UnknownState":     {"payments", `{"state":"red","reason":"INC-002"}`},
		"NoReason":         {"payments", `{"state":"degraded"}`},
		"UnknownField":     {"payments", `{"state":"degraded","reason":"INC-002","colour":"red"}`},
		"NotJSON":          {"payments", `degraded`},
	} {
		if r := set("ops-token", c.comp, c.body); r.Status != 400 || errCode(r) != smp.EINVALID {
			t.Errorf("%s: %d %s", name, r.Status, r.Raw)
		}
	}
	if r := a.do("GET", "/status.json", "", nil); r.Body["status"] != "operational" {
		t.Fatalf("bad input changed the status page: %s", r.Raw)
	}
	if r := a.do("GET", "/v1/banners", "", nil); r.Status != 200 || len(r.Body["banners"].([]any)) != 0 {
		t.Fatalf("banners while operational: %d %s", r.Status, r.Raw)
	}
	if r := set("ops-token", "payments", `{"state":"degraded","message":"Webhook inside chậm","reason":"INC-002 webhooks failing"}`); r.Status != 200 {
		t.Fatalf("ops sets payments: %d %s", r.Status, r.Raw)
	}

	// Public: JSON, HTML in both languages, banners.
	r := a.do("GET", "/status", "", nil, "Accept", "application/json")
	if r.Status != 200 || r.Body["status"] != "degraded" {
		t.Fatalf("status JSON: %d %s", r.Status, r.Raw)
	}
	_, html := get("/status?lang=vi")
	for _, want := range []string{`id="component-payments" class="component" data-state="degraded"`, "Thanh toán đang xác nhận, mời đợi 5 phút", "Webhook inside chậm", "Suy giảm"} {
		if !strings.Contains(html, want) {
			t.Errorf("status page (vi) lacks %q", want)
		}
	}
	if _, html := get("/status?lang=en"); !strings.Contains(html, "Your payment is being confirmed, please wait 5 minutes") || !strings.Contains(html, "Degraded") {
		t.Errorf("status page (en): %s", html)
	}
	if r := a.do("GET", "/status?lang=fr", "", nil); r.Status != 400 {
		t.Errorf("lang=fr: %d", r.Status)
	}
	r = a.do("GET", "/v1/banners", "", nil, "Accept-Language", "en-US,en;q=0.9")
	bs := r.Body["banners"].([]any)
	if len(bs) != 1 || bs[0].(map[string]any)["message"] != "Your payment is being confirmed, please wait 5 minutes" {
		t.Fatalf("banners (en): %s", r.Raw)
	}
	if r := a.do("GET", "/v1/banners?lang=vi", "", nil); !strings.Contains(r.Raw, "Thanh toán đang xác nhận, mời đợi 5 phút") {
		t.Fatalf("banners (vi): %s", r.Raw)
	}
	audit, err := a.Store.FindAudit(ctx, smp.AuditFilter{Target: "component:payments"})
	if err != nil || len(audit) != 1 || audit[0].Actor != "olga" || audit[0].Reason != "INC-002 webhooks failing" {
		t.Fatalf("status audit %+v %v", audit, err)
	}
	// Without --status-from-alerts, a firing alert does not touch the page.
	alert := map[string]any{"version": "4", "status": "firing", "alerts": []map[string]any{{"status": "firing", "fingerprint": "fp1",
		"labels": map[string]string{"alertname": "DispatchEngineDown", "incident": "INC-001", "severity": "critical"}, "startsAt": time.Now().UTC().Format(time.RFC3339)}}}
	if r := a.do("POST", "/integrations/alertmanager/webhook", a.am, alert); r.Status != 200 {
		t.Fatalf("alert: %d %s", r.Status, r.Raw)
	}
	if r := a.do("GET", "/status.json", "", nil); strings.Contains(r.Raw, "alert:DispatchEngineDown") {
		t.Fatalf("alerts drive the page though not configured: %s", r.Raw)
	}

	// The dashboard: every part, with history sampled in the background.
	var d response
	wait.Until(t, 10*time.Second, "dashboard history", func() bool {
		d = a.do("GET", "/admin/dashboard", "fin-token", nil)
		h, _ := d.Body["history"].([]any)
		return d.Status == 200 && len(h) >= 3
	})
	for _, k := range []string{"engine", "breakers", "webhook_events", "bus_dlq", "consumer_lag", "replica", "alerts_firing", "status"} {
		if _, ok := d.Body[k]; !ok {
			t.Errorf("dashboard lacks %s: %s", k, d.Raw)
		}
	}
	if errs := d.Body["errors"].(map[string]any); len(errs) != 0 {
		t.Errorf("dashboard errors: %v", errs)
	}
	if len(d.Body["alerts_firing"].([]any)) != 1 || d.Body["engine"].(map[string]any)["engine_up"] != true {
		t.Errorf("dashboard: %s", d.Raw)
	}

	// Stuck orders: waiting longer than stuck_after seconds, oldest first.
	placed := placeOrders(t, a, 2, "for the stuck list")
	stuck := func(q string) response { return a.do("GET", "/admin/orders?"+q, "ops-token", nil) }
	r = stuck("stuck_after=0")
	for _, id := range placed {
		if r.Status != 200 || !strings.Contains(r.Raw, id) {
			t.Fatalf("stuck_after=0 lacks %s: %d %s", id, r.Status, r.Raw)
		}
	}
	if r := stuck("stuck_after=3600"); r.Status != 200 || len(r.Body["orders"].([]any)) != 0 {
		t.Fatalf("stuck_after=3600 lists fresh orders: %s", r.Raw)
	}
	for _, q := range []string{"stuck_after=soon", "stuck_after=-1", "stuck_after=60&stage=05_completed"} {
		if r := stuck(q); r.Status != 400 {
			t.Errorf("%s: %d", q, r.Status)
		}
	}
}
