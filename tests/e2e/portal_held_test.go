//go:build slow

package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"smp"
	"smp/auth"
	"smp/sim"
	"smp/wallet"
)

// TestHeldTopupsInBrowser: the Security tab's held top-ups in headless
// Chromium (runbook INC-011, issue 18). P001 is soft-blocked and its
// top-up over the 1,000,000 VND cap is paid at VNPay and held. Security
// sees it listed with the rule that held it; Release is refused with the
// cap's message (shown in the section, nothing credited); after lifting
// the soft block Release credits it (the balance shown; the audit has who
// and why). P002's held top-up is reversed: VNPay refusing the refund (95)
// shows the 503 and the refund error and leaves it held; the retry
// reverses it, and the simulator refunded it once.
func TestHeldTopupsInBrowser(t *testing.T) {
	t.Parallel()
	gw := &sim.VNPay{TmnCode: "SMPE2E09", Secret: []byte("e2e-held-secret"), Seed: 19}
	gwSrv := httptest.NewServer(gw)
	t.Cleanup(gwSrv.Close)
	a := startApp(t, func(c *Config) {
		c.VNPayTmnCode, c.VNPayHashSecrets = "SMPE2E09", "e2e-held-secret"
		c.VNPayPayURL, c.VNPayAPIURL = gwSrv.URL+"/paymentv2/vpcpay.html", gwSrv.URL+"/merchant_webapi/api/transaction"
	})
	gw.IPNURL = a.url + "/integrations/vnpay/ipn"
	ctx := context.Background()
	must(t, a.Store.PutToken(ctx, auth.HashToken("sec-token"), "admin", "sec.lan", smp.RoleSecurity))
	must(t, a.Store.PutToken(ctx, auth.HashToken("fin-token"), "admin", "fiona", smp.RoleFinance))
	pay := func(partner string, vnd int64) string {
		t.Helper()
		r := a.do("POST", "/v1/partners/"+partner+"/topups", "fin-token", map[string]any{"amount_vnd": vnd})
		if r.Status != 201 {
			t.Fatalf("top-up of %s: %d %s", partner, r.Status, r.Raw)
		}
		if _, err := gw.Pay(r.Body["payment_url"].(string), true); err != nil {
			t.Fatal(err)
		}
		if answers, err := gw.Deliver(ctx); err != nil || len(answers) != 1 || answers[0].RspCode != "00" {
			t.Fatalf("IPN answers %+v %v", answers, err)
		}
		return r.Body["txn_ref"].(string)
	}
	topup := func(ref string) *smp.Topup {
		t.Helper()
		tp, err := a.Store.FindTopup(ctx, smp.GatewayVNPay, ref)
		must(t, err)
		return tp
	}
	balance := func(partner string) float64 {
		return a.do("GET", "/admin/partners/"+partner+"/wallet", "fin-token", nil).Body["balance_vnd"].(float64)
	}
	softBlock := func(partner string) {
		t.Helper()
		if r := a.do("POST", "/admin/partners/"+partner+"/wallet/soft-block", "sec-token", map[string]any{"reason": "inconclusive: invoices requested"}); r.Status != 200 {
			t.Fatalf("soft block %s: %d %s", partner, r.Status, r.Raw)
		}
	}

	softBlock("P001")
	pay("P001", 600_000)
	ref1 := pay("P001", 700_000) // 1,300,000 in 24 h: over the cap
	if tp := topup(ref1); tp.Status != smp.TopupHeld || tp.HoldReason != smp.RuleSoftBlockCap {
		t.Fatalf("top-up over the cap: %+v", tp)
	}
	if b := balance("P001"); b != 600_000 {
		t.Fatalf("balance of P001 before the release: %v", b)
	}

	b := newBrowser(t)
	b.do("open the portal", chromedp.Navigate(a.url+"/admin/"), chromedp.WaitVisible(chromedp.CSS("#login-token")))
	b.do("security token", chromedp.KeyEvent("sec-token"), chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#view-dashboard")))
	b.tab("security")
	row1 := fmt.Sprintf(`#sec-held-topups tr[data-txn=%q]`, ref1)
	b.until("the held top-up listed", fmt.Sprintf(`(() => { const r = document.querySelector('%s');
		return !!r && r.textContent.includes("P001") && r.textContent.includes("700.000") && r.textContent.includes("soft_block_cap") && r.dataset.status === "held"; })()`, row1))
	b.checkUsable("security held")
	b.shot("security-held-1280")

	// Release while soft-blocked: refused with the cap's message, in place.
	b.do("release", chromedp.Click(chromedp.CSS(row1+` button[data-action="release"]`)))
	b.confirm("partner verified by phone")
	b.until("the refusal shown in the section", `document.querySelector("#sec-held-error").textContent.includes("Refused (403)") &&
		document.querySelector("#sec-held-error").textContent.includes("soft-blocked") &&
		document.querySelector("#sec-held-error").textContent.includes("cap")`)
	if tp := topup(ref1); tp.Status != smp.TopupHeld || balance("P001") != 600_000 {
		t.Fatalf("a refused release changed something: %+v", tp)
	}
	b.shot("security-held-refused-1280")

	// Lift the soft block, then Release credits it.
	wallet1 := `#sec-wallets tr[data-partner="P001"]`
	b.until("lift offered", `!!document.querySelector('`+wallet1+` button[data-action="lift-soft-block"]')`)
	b.do("lift the soft block", chromedp.Click(chromedp.CSS(wallet1+` button[data-action="lift-soft-block"]`)))
	b.confirm("invoices received and checked")
	b.until("soft block lifted", `document.querySelector('`+wallet1+`').cells[2].textContent === "open"`)
	b.until("still held, Release offered", `!!document.querySelector('`+row1+` button[data-action="release"]')`)
	b.do("the wallet's details", chromedp.Click(chromedp.CSS(wallet1+` button[aria-label="Details of the wallet of P001"]`)))
	b.until("the held top-up in the wallet's details", `document.querySelector("#sec-control").dataset.partner === "P001" &&
		document.querySelector("#sec-held tbody").textContent.includes(`+fmt.Sprintf("%q", ref1)+`)`)
	const why = "INC-011 partner verified by phone, invoices checked"
	b.do("release again", chromedp.Click(chromedp.CSS(row1+` button[data-action="release"]`)))
	b.confirm(why)
	b.until("credited, the balance shown", `document.querySelector("#sec-held-result").textContent.includes("confirmed") &&
		document.querySelector("#sec-held-result").textContent.includes("balance of P001 1.300.000 VND") &&
		document.querySelector("#sec-held-error").textContent === ""`)
	b.until("no longer listed", `!document.querySelector('`+row1+`')`)
	b.until("the open wallet's details refreshed", `!document.querySelector("#sec-held tbody").textContent.includes(`+fmt.Sprintf("%q", ref1)+`)`)
	if tp := topup(ref1); tp.Status != smp.TopupConfirmed || balance("P001") != 1_300_000 {
		t.Fatalf("after the release: %+v balance %v", tp, balance("P001"))
	}
	audit, err := a.Store.FindAudit(ctx, smp.AuditFilter{Target: "topup:vnpay:" + ref1, Action: wallet.ActionReleaseHeld})
	must(t, err)
	if len(audit) != 1 || audit[0].Actor != "sec.lan" || audit[0].Reason != why {
		t.Fatalf("release audit %+v", audit)
	}
	b.do("audit of the top-up", chromedp.SetValue(chromedp.CSS("#audit-target"), "topup:vnpay:"+ref1, chromedp.NodeReady))
	b.tab("audit")
	b.until("who and why in the audit log", `[...document.querySelectorAll("#audit-table tbody tr")].some((tr) =>
		tr.textContent.includes("wallet.release_held") && tr.textContent.includes("sec.lan") && tr.textContent.includes(`+fmt.Sprintf("%q", why)+`))`)
	b.tab("security")

	// P002: a held top-up reversed through VNPay's refund API.
	softBlock("P002")
	ref2 := pay("P002", 1_200_000)
	if tp := topup(ref2); tp.Status != smp.TopupHeld {
		t.Fatalf("P002's top-up over the cap: %+v", tp)
	}
	b.do("filter by P002", chromedp.SetValue(chromedp.CSS("#sec-held-partner"), "P002", chromedp.NodeReady),
		chromedp.Click(chromedp.CSS(`#sec-held-form button[type="submit"]`)))
	row2 := fmt.Sprintf(`#sec-held-topups tr[data-txn=%q]`, ref2)
	b.until("P002's held top-up listed alone", `!!document.querySelector('`+row2+`') &&
		[...document.querySelectorAll("#sec-held-topups tbody tr")].every((r) => r.dataset.partner === "P002")`)

	gw.SetFaults(sim.VNPayFaults{RefundCode: "95"})
	b.do("reverse", chromedp.Click(chromedp.CSS(row2+` button[data-action="reverse"]`)))
	b.confirm("fraud confirmed by the card issuer")
	b.until("VNPay's refusal shown", `document.querySelector("#sec-held-error").textContent.includes("503")`)
	b.until("the refund error on the row, held again", `document.querySelector('`+row2+`').dataset.status === "held" &&
		document.querySelector('`+row2+`').cells[6].textContent.includes("attempt 1")`)
	b.shot("security-held-refund-failed-1280")
	if tx, ok := gw.Txn(ref2); !ok || tx.Refunds != 0 {
		t.Fatalf("VNPay refused but refunded: %+v", tx)
	}

	gw.SetFaults(sim.VNPayFaults{})
	b.do("reverse again", chromedp.Click(chromedp.CSS(row2+` button[data-action="reverse"]`)))
	b.confirm("fraud confirmed by the card issuer")
	b.until("reversed", `document.querySelector("#sec-held-result").textContent.includes(`+fmt.Sprintf("%q", ref2+": reversed")+`) &&
		!document.querySelector('`+row2+`')`)
	if tp := topup(ref2); tp.Status != smp.TopupReversed || balance("P002") != 0 {
		t.Fatalf("after the reversal: %+v balance %v", tp, balance("P002"))
	}
	if tx, ok := gw.Txn(ref2); !ok || tx.Refunds != 1 || tx.RefundedVND != 1_200_000 {
		t.Fatalf("the simulator's refunds: %+v", tx)
	}
}
