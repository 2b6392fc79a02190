//go:build slow

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"smp"
	"smp/auth"
	"smp/readmodel"
)

// TestOrderSearchFromReadModelInBrowser: the Orders tab's list and search
// come from the read model (runbook INC-009): orders created through /v1
// are found by the customer's phone and by stage; with the sink paused
// through the Connect REST API and the clock two minutes on, the banner
// says how far behind the results may be; resumed, it goes.
func TestOrderSearchFromReadModelInBrowser(t *testing.T) {
	t.Parallel()
	var skew atomic.Int64 // added to the wall clock: the lag counts on it
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	a := startApp(t, func(c *Config) { c.ConnectAddr, c.Now = "127.0.0.1:0", clock })
	ctx := context.Background()
	must(t, a.Store.PutToken(ctx, auth.HashToken("ops-token"), "admin", "olga", smp.RoleOps))
	if r := a.do("PUT", "/admin/flags/ENABLE_AUTO_DISPATCH", "ops-token", map[string]any{"value": false, "reason": "stages stay put for the search"}); r.Status != 200 {
		t.Fatalf("flag: %d %s", r.Status, r.Raw)
	}
	create := func(cust int, address string) string {
		t.Helper()
		r := a.do("POST", "/v1/orders", a.ds.Customers[cust].Token, map[string]any{"city": "HCMC", "service": "plumbing", "lat": 10.78, "lng": 106.7,
			"address": address, "price_vnd": 300000})
		if r.Status != 201 {
			t.Fatalf("create order: %d %s", r.Status, r.Raw)
		}
		return r.Body["id"].(string)
	}
	mine1, mine2, other := create(0, "12 Nguyễn Huệ, Quận 1"), create(0, "5 Lê Lợi, Quận 1"), create(1, "7 Hai Bà Trưng, Quận 3")
	if r := a.do("POST", "/v1/orders/"+mine2+"/cancel", a.ds.Customers[0].Token, map[string]any{"reason": "changed my mind"}); r.Status != 200 {
		t.Fatalf("cancel: %d %s", r.Status, r.Raw)
	}

	b := newBrowser(t)
	b.do("open the portal", chromedp.Navigate(a.url+"/admin/"), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	b.do("ops token", chromedp.KeyEvent("ops-token"), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#view-dashboard")))
	b.tab("orders")
	has := func(id string) string { return `!!document.querySelector('#orders-table tr[data-order="` + id + `"]')` }
	b.until("the orders listed from the read model", has(mine1)+" && "+has(mine2)+" && "+has(other))
	b.checkUsable("orders")

	// By the customer's phone: theirs only. The list is searched again until
	// the sink has indexed the cancellation too.
	search := func(what string, fill ...chromedp.Action[chromedp.Void]) {
		b.t.Helper()
		b.do(what, append(fill, chromedp.Click(chromedp.CSS(`#orders-form button[type="submit"]`)))...)
	}
	search("by phone", chromedp.SendKeys(chromedp.CSS("#orders-phone"), a.ds.Customers[0].Phone))
	b.until("found by phone", has(mine1)+" && "+has(mine2)+" && !"+has(other))
	// By stage: the cancelled one.
	evalIn[string](b, `document.querySelector("#orders-phone").value = ""`) // SetValue refuses ""
	b.do("stage cancelled", chromedp.SetValue(chromedp.CSS("#orders-stage"), string(smp.StageCancelled), chromedp.NodeReady))
	answered := `Number(document.querySelector("#orders-table").dataset.searches || 0)`
	for deadline := time.Now().Add(20 * time.Second); ; {
		n := evalIn[int](b, answered)
		search("by stage")
		b.until("search answered", fmt.Sprintf("%s > %d", answered, n))
		if evalIn[bool](b, has(mine2)+" && !"+has(mine1)+" && !"+has(other)) {
			break
		}
		if time.Now().After(deadline) {
			b.shot("timeout-by-stage")
			t.Fatalf("the cancelled order is not found by its stage: %s", b.text("#orders-table tbody"))
		}
	}
	if !evalIn[bool](b, `document.querySelector("#rm-banner").hidden`) {
		t.Fatalf("a banner while caught up: %s", b.text("#rm-banner"))
	}
	b.shot("orders-read-model-1280")

	// The sink stalls: paused through the Connect REST API while an order
	// is created, and the clock moves two minutes on.
	connectCall := func(verb string) {
		t.Helper()
		req, err := http.NewRequest("PUT", a.ConnectAPI.URL()+"/connectors/"+readmodel.ConnectorName+"/"+verb, nil)
		must(t, err)
		req.Header.Set("Authorization", "Bearer ops-token")
		resp, err := http.DefaultClient.Do(req)
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("%s %s: %d", verb, readmodel.ConnectorName, resp.StatusCode)
		}
	}
	connectCall("pause")
	late := create(1, "9 Pasteur, Quận 1")
	skew.Store(int64(2 * time.Minute))
	b.until("the lag banner", `!document.querySelector("#rm-banner").hidden && Number(document.querySelector("#rm-banner").dataset.lag) > 60 &&
		document.querySelector("#rm-banner").textContent.startsWith("Search results may be ")`)
	banner := b.text("#rm-banner")
	if !strings.Contains(banner, " s behind") {
		t.Errorf("banner %q", banner)
	}
	b.checkUsable("orders, lagging")
	b.shot("orders-lag-banner-1280")

	connectCall("resume")
	b.until("the banner gone", `document.querySelector("#rm-banner").hidden`)
	evalIn[string](b, `document.querySelector("#orders-stage").value = ""`)
	search("all")
	b.until("the late order found", has(late))

	// The detail reads the database.
	b.do("open the late order", chromedp.Click(chromedp.CSS(`#orders-table tr[data-order="`+late+`"] button`)), chromedp.WaitVisible(chromedp.CSS("#order-detail")))
	b.until("its detail", `document.querySelector("#order-title").textContent === "Order `+late+`"`)
}
