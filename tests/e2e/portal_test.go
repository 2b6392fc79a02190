package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"smp"
	"smp/auth"
	"smp/internal/envtest"
	"smp/internal/wait"
	"smp/sim"
)

// browser drives one headless Chromium tab (Debian's chromium, from
// SMP_TEST_CHROMIUM) and keeps the page's JavaScript exceptions.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string // screenshots

	mu         sync.Mutex
	exceptions []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe, why := envtest.Binary(envtest.EnvChromium, "chromium", "chromium-browser", "google-chrome")
	if exe == "" {
		envtest.Skip(t, "browser (Chromium)", why+" (Debian package chromium)")
	}
	dir := os.Getenv("SMP_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "screenshots")
	must(t, os.MkdirAll(dir, 0o755))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-background-networking", true))...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{t: t, ctx: ctx, dir: dir}
	if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start chromium %s: %v", exe, err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() {
				b.mu.Lock()
				b.exceptions = append(b.exceptions, m.String())
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.exceptions) > 0 {
			t.Errorf("JavaScript exceptions in the page:\n%s", strings.Join(b.exceptions, "\n"))
		}
	})
	return b
}

// do runs steps, failing the test (with a screenshot) on error.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

func evalIn[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (b *browser) text(css string) string {
	b.t.Helper()
	return evalIn[string](b, fmt.Sprintf(`(document.querySelector(%q) || {textContent: "<missing>"}).textContent.trim()`, css))
}

// until polls a JavaScript condition with a deadline.
func (b *browser) until(what, js string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.shot("timeout-" + strings.ReplaceAll(what, " ", "-"))
			b.t.Fatalf("timed out waiting for %s (%s): %v", what, js, err)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// shot writes a full-page screenshot as a test artifact.
func (b *browser) shot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.dir, b.t.Name()+"-"+name+".png")
	must(b.t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(b.t, os.WriteFile(p, img, 0o644))
	b.t.Logf("screenshot %s", p)
}

// checkUsable fails on a visible control without an accessible name, a
// control the keyboard cannot reach, or a page wider than the viewport.
func (b *browser) checkUsable(where string) {
	b.t.Helper()
	bad := evalIn[[]string](b, `(() => {
	  const bad = [];
	  const visible = (e) => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length);
	  for (const e of document.querySelectorAll("input, select, button, textarea, a[href]")) {
	    if (!visible(e)) continue;
	    const labelled = e.getAttribute("aria-label") || (e.labels && [...e.labels].some((l) => l.textContent.trim())) ||
	      ((e.tagName === "BUTTON" || e.tagName === "A") && e.textContent.trim());
	    if (!labelled) bad.push("no accessible name: " + e.outerHTML.slice(0, 120));
	    if (e.tabIndex < 0) bad.push("not keyboard reachable: " + e.outerHTML.slice(0, 120));
	  }
	  if (document.documentElement.scrollWidth > window.innerWidth + 1)
	    bad.push("page is " + document.documentElement.scrollWidth + "px wide in a " + window.innerWidth + "px viewport");
	  return bad;
	})()`)
	if len(bad) > 0 {
		b.shot("unusable-" + where)
		b.t.Errorf("%s:\n%s", where, strings.Join(bad, "\n"))
	}
}

// confirm fills the confirmation dialog's reason and confirms by keyboard.
func (b *browser) confirm(reason string) {
	b.t.Helper()
	b.do("confirmation dialog opens", chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if got := evalIn[string](b, `document.activeElement.id`); got != "confirm-reason" {
		b.t.Fatalf("the dialog's reason field has no focus (%q has)", got)
	}
	b.do("confirm by keyboard", chromedp.KeyEvent(reason), chromedp.KeyEvent(kb.Enter))
	b.until("dialog closed", `!document.querySelector("#confirm").open`)
}

func (b *browser) tab(name string) {
	b.t.Helper()
	b.do("open tab "+name, chromedp.Click(chromedp.CSS(`.tabs a[data-tab="`+name+`"]`)), chromedp.WaitVisible(chromedp.CSS("#view-"+name)))
}

// TestAdminPortalInBrowser drives the admin portal in headless Chromium
// through the runbook's manual actions: log in by keyboard, watch the
// dashboard change, toggle a flag with confirmation, dispatch a stuck order
// by hand, replay a dead-lettered webhook, force a breaker half-open, mark
// an order paid as finance, and change the public status page.
func TestAdminPortalInBrowser(t *testing.T) {
	t.Parallel()
	inside, wms := &sim.Inside{}, &sim.WMS{}
	insideSrv, wmsSrv := httptest.NewServer(inside), httptest.NewServer(wms)
	t.Cleanup(insideSrv.Close)
	t.Cleanup(wmsSrv.Close)
	a := startApp(t, func(c *Config) {
		c.InsideURL, c.WMSURL, c.InsideWebhookSecrets = insideSrv.URL, wmsSrv.URL, "browser-secret"
		c.PaymentRetryBackoff, c.DashboardSampleEvery, c.StatusFromAlerts = 5*time.Millisecond, 200*time.Millisecond, true
	})
	ctx := context.Background()
	must(t, a.Store.PutToken(ctx, auth.HashToken("fin-token"), "admin", "fiona", smp.RoleFinance))
	b := newBrowser(t)

	// Log in by keyboard only: a wrong token first.
	b.do("open the portal", chromedp.Navigate(a.url+"/admin/"), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	b.until("token field focused", `document.activeElement.id === "login-token"`)
	b.checkUsable("login")
	b.do("wrong token", chromedp.KeyEvent("not-a-token"), chromedp.KeyEvent(kb.Enter))
	b.until("login refused", `document.querySelector("#login-error").textContent.includes("not valid")`)
	b.do("right token", chromedp.KeyEvent(a.admin), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#view-dashboard")))
	if who := b.text("#whoami"); who != "admin · admin" {
		t.Fatalf("whoami %q", who)
	}

	// The dashboard changes without a reload: technicians connect.
	b.until("dashboard loaded", `document.querySelector("#stat-ws").textContent === "0"`)
	techCtx, stopTechs := context.WithCancel(ctx)
	var wg sync.WaitGroup
	t.Cleanup(func() { stopTechs(); wg.Wait() })
	startTechnicians(t, techCtx, &wg, a)
	b.until("connected technicians shown", fmt.Sprintf(`document.querySelector("#stat-ws").textContent === "%d"`, len(a.ds.Technicians)))
	b.until("latency chart drawn", `document.querySelectorAll("#chart-latency polyline").length === 3`)
	b.checkUsable("dashboard")
	b.shot("dashboard-1280")

	// Feature flag with confirmation, by keyboard: Tab to the switch, Enter,
	// a reason is required, Enter confirms.
	b.tab("flags")
	sw := `button[data-flag="ENABLE_AUTO_DISPATCH"]`
	b.until("flags listed", `document.querySelector('`+sw+`') !== null`)
	b.checkUsable("flags")
	for i := 0; i < 60 && !evalIn[bool](b, `document.activeElement.matches('`+sw+`')`); i++ {
		b.do("tab", chromedp.KeyEvent(kb.Tab))
	}
	if !evalIn[bool](b, `document.activeElement.matches('`+sw+`')`) {
		t.Fatal("the flag switch cannot be reached with Tab")
	}
	b.do("open confirmation", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	b.do("confirm without reason", chromedp.KeyEvent(kb.Enter))
	b.until("reason demanded", `document.querySelector("#confirm-error").textContent.includes("reason")`)
	b.shot("flag-confirmation")
	b.do("type reason", chromedp.KeyEvent("INC-001 drill: dispatch by hand"), chromedp.KeyEvent(kb.Enter))
	b.until("flag off", `document.querySelector('`+sw+`').getAttribute("aria-checked") === "false"`)
	if a.Flags.Enabled(smp.FlagEnableAutoDispatch) {
		t.Fatal("ENABLE_AUTO_DISPATCH is still on")
	}

	// A stuck order, dispatched by hand.
	r := a.do("POST", "/v1/orders", a.ds.Customers[0].Token, `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.70,"price_vnd":300000}`)
	if r.Status != 201 {
		t.Fatalf("create order: %d %s", r.Status, r.Raw)
	}
	orderID := r.Body["id"].(string)
	// Filters are set before the tab opens, so that one load shows the list.
	b.do("any age", chromedp.SetValue(chromedp.CSS("#stuck-after"), "0", chromedp.NodeReady))
	b.tab("dispatch")
	row := `#stuck-orders tr[data-order="` + orderID + `"]`
	b.until("stuck order listed", `document.querySelector('`+row+`') !== null`)
	b.do("find technicians", chromedp.Click(chromedp.CSS(row+` button`)), chromedp.WaitVisible(chromedp.CSS(`#candidates-list input[type="radio"]`)))
	tech := evalIn[string](b, `document.querySelector('input[name="candidate"]:checked').value`)
	if !strings.Contains(b.text(`#candidates-list label`), " km") {
		t.Fatalf("candidates show no distance: %q", b.text(`#candidates-list`))
	}
	b.checkUsable("manual dispatch")
	b.shot("manual-dispatch-1280")
	b.do("assign", chromedp.SendKeys(chromedp.CSS("#assign-reason"), "INC-001 manual dispatch"), chromedp.Click(chromedp.CSS("#assign-submit")))
	b.until("assigned toast", `document.querySelector("#toast").textContent.includes("assigned to `+tech+`")`)
	b.until("order leaves the stuck list", `document.querySelector('`+row+`') === null`)
	o, err := a.Store.FindOrderByID(ctx, orderID)
	must(t, err)
	if o.TechnicianID != tech || o.Stage == smp.StageCreated || o.Stage == smp.StageDispatching {
		t.Fatalf("order after manual dispatch: stage %s technician %q, want %q", o.Stage, o.TechnicianID, tech)
	}
	audit, err := a.Store.FindAudit(ctx, smp.AuditFilter{Target: "order:" + orderID})
	must(t, err)
	if len(audit) == 0 || audit[0].Reason != "INC-001 manual dispatch" || audit[0].Actor != "admin" {
		t.Fatalf("assignment audit %+v", audit)
	}

	// A webhook for an order SMP does not have yet goes to the DLQ; once
	// the order exists, replaying it from the Events tab applies it.
	late := "ord-late-1"
	if r := a.webhook("browser-secret", map[string]any{"event_id": "evt-browser-1", "event_type": smp.InsidePaymentSucceeded, "order_id": late,
		"amount_vnd": 300000, "occurred_at": time.Now().UTC().Format(time.RFC3339)}); r.Status != 200 {
		t.Fatalf("webhook: %d %s", r.Status, r.Raw)
	}
	wait.Until(t, 20*time.Second, "webhook in dlq", func() bool {
		ev, err := a.Store.FindInboxEvent(ctx, "evt-browser-1")
		return err == nil && ev.Status == smp.InboxDLQ
	})
	now := time.Now().UTC()
	must(t, a.Store.InTx(ctx, func(tx smp.Tx) error {
		return tx.InsertOrder(ctx, &smp.Order{ID: late, CustomerID: a.ds.Customers[0].ID, City: "HCMC", Service: "plumbing", Lat: 10.78, Lng: 106.7,
			PriceVND: 300000, Stage: smp.StageCompleted, PaymentStatus: smp.PaymentPending, CreatedAt: now, StageChangedAt: now})
	}))
	b.do("filter dlq by type", chromedp.SetValue(chromedp.CSS("#events-type"), smp.InsidePaymentSucceeded, chromedp.NodeReady))
	b.tab("events")
	evRow := `#events-table tr[data-event="evt-browser-1"]`
	b.until("dead letter listed", `document.querySelector('`+evRow+`') !== null`)
	b.checkUsable("events")
	b.do("select and replay", chromedp.Click(chromedp.CSS(evRow+` input[type="checkbox"]`)), chromedp.Click(chromedp.CSS("#replay-selected")))
	b.confirm("INC-002 order arrived late")
	b.until("replayed toast", `document.querySelector("#toast").textContent.includes("Replayed 1 event")`)
	wait.Until(t, 20*time.Second, "replayed payment applied", func() bool {
		o, err := a.Store.FindOrderByID(ctx, late)
		return err == nil && o.PaymentStatus == smp.PaymentPaid
	})

	// Integrations: force inside half-open; the bypass flag is there.
	b.tab("integrations")
	b.until("breakers listed", `document.querySelector('#breakers-table tr[data-service="inside"]') !== null`)
	b.until("bypass switch", `document.querySelector('#bypass-flag button[data-flag="INTEGRATION_BYPASS_CIRCUIT"]') !== null`)
	b.checkUsable("integrations")
	b.do("half-open", chromedp.Click(chromedp.CSS(`#breakers-table tr[data-service="inside"] button`)))
	b.confirm("INC-005 probe inside")
	b.until("half-open toast", `document.querySelector("#toast").textContent.startsWith("inside is")`)
	// The breaker is outside the database: its intent, then its outcome (ops).
	if audit, _ := a.Store.FindAudit(ctx, smp.AuditFilter{Target: "integration:inside"}); len(audit) != 2 || audit[0].Reason != "INC-005 probe inside" ||
		audit[1].Reason != "INC-005 probe inside" {
		t.Fatalf("half-open audit %+v", audit)
	}

	// Onboarding: a customer created from the form is listed, then deactivated
	// with a reason; both changes are audited.
	b.tab("onboarding")
	evalIn[bool](b, `(() => { const s = document.querySelector("#onb-kind"); s.value = "customers"; return s.dispatchEvent(new Event("change")); })()`)
	b.until("customer form", `!!document.querySelector("#onb-f-phone")`)
	b.checkUsable("onboarding")
	b.do("create a customer", chromedp.SendKeys(chromedp.CSS("#onb-f-name"), "Khách Mới"), chromedp.SendKeys(chromedp.CSS("#onb-f-phone"), "0912 999 888"),
		chromedp.Click(chromedp.CSS("#onb-create-button")))
	const newRow = `[...document.querySelectorAll("#onb-table tbody tr")].find((tr) => tr.textContent.includes("+84912999888"))`
	b.until("customer listed", `!!`+newRow)
	custID := evalIn[string](b, newRow+`.cells[0].textContent`)
	b.do("deactivate it", chromedp.Click(chromedp.CSS(`#onb-table tbody tr:last-child button`)))
	b.confirm("moved abroad")
	b.until("customer inactive", newRow+`.textContent.includes("inactive")`)
	b.shot("onboarding-1280")
	if audit, _ := a.Store.FindAudit(ctx, smp.AuditFilter{Target: "customer:" + custID}); len(audit) != 2 || audit[0].Reason != "moved abroad" {
		t.Fatalf("onboarding audit of %s: %+v", custID, audit)
	}

	// The status page: ops degrade Dispatch; customers see it and the banner.
	b.tab("status")
	b.until("components listed", `document.querySelectorAll("#status-table tbody tr").length === 6`)
	b.checkUsable("status admin")
	b.do("degrade dispatch", chromedp.SetValue(chromedp.CSS("#status-component"), "dispatch"), chromedp.SetValue(chromedp.CSS("#status-state"), "degraded"),
		chromedp.SendKeys(chromedp.CSS("#status-message"), "Điều phối chậm"), chromedp.SendKeys(chromedp.CSS("#status-reason"), "INC-001 communicate"),
		chromedp.Click(chromedp.CSS(`#status-form button[type="submit"]`)))
	b.until("dispatch degraded", `document.querySelector('#status-table tr[data-component="dispatch"] .pill').textContent === "degraded"`)
	b.do("public status page", chromedp.Navigate(a.url+"/status?lang=vi"), chromedp.WaitVisible(chromedp.CSS("#component-dispatch")))
	if st := evalIn[string](b, `document.querySelector("#component-dispatch").dataset.state`); st != "degraded" {
		t.Fatalf("status page shows dispatch %q", st)
	}
	if !strings.Contains(b.text("body"), "Đang xử lý chậm, mời thông cảm") {
		t.Fatal("the status page has no dispatch banner")
	}
	b.checkUsable("status page")
	b.shot("status-1280")

	// A firing alert degrades its component on its own (INC-005 → Integrations).
	alert := map[string]any{"version": "4", "status": "firing", "alerts": []map[string]any{{"status": "firing", "fingerprint": "fp-inc5",
		"labels":      map[string]string{"alertname": "IntegrationCircuitOpen", "incident": "INC-005", "severity": "warning", "service": "inside"},
		"annotations": map[string]string{"summary": "Circuit breaker to inside is open: reads stale, writes refused"}, "startsAt": time.Now().UTC().Format(time.RFC3339)}}}
	if r := a.do("POST", "/integrations/alertmanager/webhook", a.am, alert); r.Status != 200 {
		t.Fatalf("alertmanager webhook: %d %s", r.Status, r.Raw)
	}
	b.do("reload status", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#component-integrations")))
	if st := evalIn[string](b, `document.querySelector("#component-integrations").dataset.state`); st != "degraded" {
		t.Fatalf("a firing INC-005 alert left integrations %q", st)
	}

	// Phone width: every view still fits and stays labelled.
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.do("status at phone width", chromedp.Navigate(a.url+"/status?lang=en"), chromedp.WaitVisible(chromedp.CSS("#component-dispatch")))
	b.checkUsable("status page, phone")
	b.shot("status-390")
	b.do("portal at phone width", chromedp.Navigate(a.url+"/admin/#dashboard"), chromedp.WaitVisible(chromedp.CSS("#view-dashboard")))
	b.until("dashboard loaded, phone", `document.querySelector("#stat-ws").textContent !== "–"`)
	for _, v := range []string{"dashboard", "dispatch", "orders", "events", "integrations", "flags", "status", "onboarding", "security", "audit"} {
		b.tab(v)
		b.checkUsable(v + ", phone")
	}
	b.tab("dashboard")
	b.shot("dashboard-390")
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 900))

	// Finance: may mark paid, may not assign or flip flags (the UI says so,
	// and the API refuses too).
	b.do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	b.do("finance logs in", chromedp.SendKeys(chromedp.CSS("#login-token"), "fin-token"), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#app")))
	b.tab("flags")
	b.until("flags listed", `document.querySelector('`+sw+`') !== null`)
	if !evalIn[bool](b, `document.querySelector('`+sw+`').disabled`) {
		t.Fatal("finance may flip a flag in the UI")
	}
	if r := a.do("PUT", "/admin/flags/ENABLE_AUTO_DISPATCH", "fin-token", `{"value":true,"reason":"try"}`); r.Status != 403 {
		t.Fatalf("finance flag change: %d", r.Status)
	}
	r = a.do("POST", "/v1/orders", a.ds.Customers[1].Token, `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.71,"price_vnd":200000}`)
	if r.Status != 201 {
		t.Fatalf("create order: %d %s", r.Status, r.Raw)
	}
	unpaid := r.Body["id"].(string)
	b.tab("orders")
	// This process runs no Connect worker: the read model's list says it is
	// unavailable, and an order's detail (the database) still opens.
	b.until("read model unavailable said", `!document.querySelector("#rm-banner").hidden && document.querySelector("#rm-banner").textContent.includes("unavailable")`)
	b.do("open order", chromedp.SendKeys(chromedp.CSS("#orders-id"), unpaid), chromedp.Click(chromedp.CSS(`#order-open-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#order-detail")))
	b.until("history shown", `document.querySelectorAll("#order-history tbody tr").length >= 1`)
	b.until("trace refused politely", `document.querySelector("#trace-note").textContent.includes("may not")`)
	b.checkUsable("order detail")
	b.do("mark paid", chromedp.Click(chromedp.CSS("#mark-paid")))
	b.confirm("INC-002 inside shows it paid")
	b.until("paid shown", `document.querySelector('#order-fields dd[data-field="payment"]').textContent === "paid"`)
	b.shot("order-detail-1280")
	paidAudit, err := a.Store.FindAudit(ctx, smp.AuditFilter{Target: "order:" + unpaid})
	must(t, err)
	if len(paidAudit) == 0 || paidAudit[0].Actor != "fiona" || paidAudit[0].Reason != "INC-002 inside shows it paid" {
		t.Fatalf("mark-paid audit %+v", paidAudit)
	}
	b.tab("dispatch")
	b.until("assign disabled for finance", `document.querySelector("#assign-submit").disabled`)

	// The audit log shows every manual action of this test.
	b.do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	b.do("admin again", chromedp.SendKeys(chromedp.CSS("#login-token"), a.admin), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#app")))
	// An order the engine dispatched: its detail shows the dispatch trace.
	if r := a.do("PUT", "/admin/flags/ENABLE_AUTO_DISPATCH", a.admin, `{"value":true,"reason":"drill over"}`); r.Status != 200 {
		t.Fatalf("flag back on: %d %s", r.Status, r.Raw)
	}
	auto := placeOrders(t, a, 1, "after the drill")[0]
	// Past dispatching: a fresh order is still 01_created a moment, which
	// is not "assigned" either.
	wait.Until(t, 20*time.Second, "auto-dispatched order assigned", func() bool {
		return !allIn(t, a, []string{auto}, smp.StageCreated) && !allIn(t, a, []string{auto}, smp.StageDispatching)
	})
	b.tab("orders")
	b.do("open dispatched order", chromedp.SendKeys(chromedp.CSS("#orders-id"), auto), chromedp.Click(chromedp.CSS(`#order-open-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#order-detail")))
	b.until("dispatch trace shown", `document.querySelectorAll("#order-trace tbody tr").length >= 1 && document.querySelector("#trace-note").textContent.includes("wave")`)
	b.shot("order-trace-1280")

	b.tab("audit")
	b.until("audit listed", `document.querySelectorAll("#audit-table tbody tr").length >= 5`)
	log := b.text("#audit-table tbody")
	for _, want := range []string{"INC-001 drill: dispatch by hand", "INC-001 manual dispatch", "INC-002 order arrived late", "INC-005 probe inside", "INC-001 communicate", "INC-002 inside shows it paid"} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %q", want)
		}
	}
	b.checkUsable("audit")
	b.shot("audit-1280")
}
