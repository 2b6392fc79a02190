package e2e

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"smp"
	"smp/auth"
	"smp/sim"
)

// TestFinanceTabInBrowser: the portal's Finance tab in headless Chromium,
// as finance: the partners' balances and wallet states, "run
// reconciliation now" with its confirmation (audited), the run listed with
// its verdict, its rows (a dropped notification auto-corrected) and the
// day's adjustment with its reason.
func TestFinanceTabInBrowser(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	gw := &sim.VNPay{TmnCode: "SMPE2E03", Secret: []byte("e2e-portal-secret"), Seed: 11, Now: clock}
	gwSrv := httptest.NewServer(gw)
	t.Cleanup(gwSrv.Close)
	a := startApp(t, func(c *Config) {
		c.VNPayTmnCode, c.VNPayHashSecrets = "SMPE2E03", "e2e-portal-secret"
		c.VNPayPayURL, c.VNPayAPIURL, c.VNPayFilesURL = gwSrv.URL+"/paymentv2/vpcpay.html", gwSrv.URL+"/merchant_webapi/api/transaction", gwSrv.URL
		c.ReconAt, c.Now = "off", clock
	})
	gw.IPNURL = a.url + "/integrations/vnpay/ipn"
	ctx := context.Background()
	must(t, a.Store.PutToken(ctx, auth.HashToken("fin-token"), "admin", "fiona", smp.RoleFinance))
	for _, p := range []struct {
		partner string
		vnd     int64
		drop    bool
	}{{"P001", 500_000, false}, {"P002", 300_000, true}} {
		r := a.do("POST", "/v1/partners/"+p.partner+"/topups", "fin-token", map[string]any{"amount_vnd": p.vnd})
		if r.Status != 201 {
			t.Fatalf("top-up: %d %s", r.Status, r.Raw)
		}
		gw.SetFaults(sim.VNPayFaults{DropRate: map[bool]float64{true: 1}[p.drop]})
		if _, err := gw.Pay(r.Body["payment_url"].(string), true); err != nil {
			t.Fatal(err)
		}
		if _, err := gw.Deliver(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if r := a.do("POST", "/admin/partners/P001/wallet/adjustments", "fin-token",
		map[string]any{"amount_vnd": 25000, "reason": "compensation for order O-9", "expected_diff_vnd": 25000}); r.Status != 201 && r.Status != 200 {
		t.Fatalf("adjust: %d %s", r.Status, r.Raw)
	}
	now.Store(time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC).UnixNano())

	b := newBrowser(t)
	b.do("open the portal", chromedp.Navigate(a.url+"/admin/"), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	b.do("finance token", chromedp.KeyEvent("fin-token"), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#view-dashboard")))
	b.tab("finance")
	b.until("balances listed", `(document.querySelector('#fin-wallets tr[data-partner="P001"]') || {}).textContent?.includes("525.000")`)
	b.until("wallet state shown", `document.querySelector('#fin-wallets tr[data-partner="P001"]').textContent.includes("active")`)
	b.checkUsable("finance")
	b.do("the day", chromedp.SetValue(chromedp.CSS("#fin-date"), "2026-11-30", chromedp.NodeReady))
	b.do("run reconciliation now", chromedp.Click(chromedp.CSS("#fin-run")))
	b.confirm("INC-010 drill")
	b.until("run listed", `document.querySelectorAll("#fin-runs tbody tr").length === 1 && document.querySelector("#fin-runs tbody tr").textContent.includes("auto_corrected")`)
	b.until("rows shown", `(document.querySelector('#fin-rows tr[data-partner="P002"]') || {}).textContent?.includes("auto_corrected")`)
	b.until("P001 explained", `document.querySelector('#fin-rows tr[data-partner="P001"]').textContent.includes("explained")`)
	b.until("adjustment with its reason", `document.querySelector("#fin-adjustments tbody").textContent.includes("compensation for order O-9")`)
	b.shot("finance-1280")
	audit, err := a.Store.FindAudit(ctx, smp.AuditFilter{Target: "day:2026-11-30"})
	must(t, err)
	if len(audit) != 2 || audit[0].Reason != "INC-010 drill" || audit[0].Actor != "fiona" {
		t.Fatalf("audit %+v", audit)
	}
}
