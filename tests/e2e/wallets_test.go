package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"smp"
	"smp/auth"
	"smp/sim"
)

// TestWalletsAdminAPIAndCtl: a partner's wallet and the ledger's
// verification through the admin API (verify needs the finance role) and
// smp ctl wallets show|verify. Not parallel: the token comes from
// SMP_ADMIN_TOKEN.
func TestWalletsAdminAPIAndCtl(t *testing.T) {
	a := startApp(t, nil)
	ctx := context.Background()
	must(t, a.Store.PutToken(ctx, auth.HashToken("fin-token"), "admin", "fiona", smp.RoleFinance))
	must(t, a.Store.PutToken(ctx, auth.HashToken("ops-token"), "admin", "olga", smp.RoleOps))
	for _, p := range []smp.Posting{
		{ID: "vnpay:T1", Type: smp.WalletTopup, PartnerID: "P001", AmountVND: 500_000, Gateway: "vnpay", GatewayRef: "T1", Actor: "system:vnpay-ipn"},
		{ID: "commission:o1", Type: smp.WalletCommission, PartnerID: "P001", AmountVND: -35_000, OrderID: "o1", Actor: "system:wallet"},
	} {
		if _, err := a.Wallet.Post(ctx, p, ""); err != nil {
			t.Fatal(err)
		}
	}
	r := a.do("GET", "/admin/partners/P001/wallet", "ops-token", nil)
	if r.Status != 200 || r.Body["partner_id"] != "P001" || r.Body["balance_vnd"] != 465000.0 || r.Body["state"] != "active" {
		t.Fatalf("GET /admin/partners/P001/wallet: %d %s", r.Status, r.Raw)
	}
	if r = a.do("GET", "/admin/wallets/verify", "ops-token", nil); r.Status != 403 || errCode(r) != "forbidden" {
		t.Fatalf("verify as ops: %d %s", r.Status, r.Raw)
	}
	if r = a.do("GET", "/admin/wallets/verify", "fin-token", nil); r.Status != 200 || r.Body["ok"] != true || r.Body["entries"] != 2.0 {
		t.Fatalf("verify as finance: %d %s", r.Status, r.Raw)
	}

	ctl := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append(append([]string{"ctl"}, args...), "--server", a.url), &out, &errb)
		return out.String() + errb.String(), err
	}
	t.Setenv("SMP_ADMIN_TOKEN", "fin-token")
	if out, err := ctl("wallets", "show", "--output", "csv"); err != nil || !strings.Contains(out, "P001,465000,,active,2,") {
		t.Fatalf("ctl wallets show: %v\n%s", err, out)
	}
	if out, err := ctl("wallets", "show", "--partner", "P001"); err != nil || !strings.Contains(out, "465000") {
		t.Fatalf("ctl wallets show --partner: %v\n%s", err, out)
	}
	if out, err := ctl("wallets", "verify"); err != nil || !strings.Contains(out, "ok") || !strings.Contains(out, "true") {
		t.Fatalf("ctl wallets verify: %v\n%s", err, out)
	}

	// adjust: finance only, a reason required, audited with the posting;
	// a retried id posts once.
	if _, err := ctl("wallets", "adjust", "--partner", "P001", "--amount", "-20000"); exitCode(err) != 2 {
		t.Fatalf("adjust without a reason: %v", err)
	}
	out, err := ctl("wallets", "adjust", "--partner", "P001", "--amount", "-20000", "--reason", "double top-up credited on 2026-11-22",
		"--expected-diff", "-20000", "--id", "adj-1", "--output", "json")
	if err != nil || !strings.Contains(out, `"type": "adjustment"`) || !strings.Contains(out, `"expected_diff_vnd": -20000`) {
		t.Fatalf("ctl wallets adjust: %v\n%s", err, out)
	}
	if out, err = ctl("wallets", "adjust", "--partner", "P001", "--amount", "-20000", "--reason", "double top-up credited on 2026-11-22",
		"--expected-diff", "-20000", "--id", "adj-1", "--output", "json"); err != nil || !strings.Contains(out, `"duplicate": true`) {
		t.Fatalf("retried adjust: %v\n%s", err, out)
	}
	if _, err = ctl("wallets", "adjust", "--partner", "P001", "--amount", "-30000", "--reason", "other", "--id", "adj-1"); exitCode(err) != 1 ||
		!strings.Contains(err.Error(), "HTTP 409") {
		t.Fatalf("adjust reusing an id: %v", err)
	}
	if _, err = ctl("wallets", "floor", "--partner", "P001", "--floor-vnd", "500000", "--reason", "prepaid minimum"); err != nil {
		t.Fatalf("ctl wallets floor: %v", err)
	}
	if r := a.do("GET", "/admin/partners/P001/wallet", "fin-token", nil); r.Body["balance_vnd"] != 445000.0 || r.Body["state"] != "below_floor" {
		t.Fatalf("wallet after the adjustment and the floor: %s", r.Raw)
	}
	audit, err := a.Store.FindAudit(ctx, smp.AuditFilter{Target: "partner:P001"})
	must(t, err)
	if len(audit) != 2 || audit[1].Action != "wallet.adjust" || audit[1].Actor != "fiona" || audit[1].Reason != "double top-up credited on 2026-11-22" ||
		audit[0].Action != "wallet.set_floor" {
		t.Fatalf("audit %+v", audit)
	}
	t.Setenv("SMP_ADMIN_TOKEN", "ops-token")
	if _, err = ctl("wallets", "adjust", "--partner", "P001", "--amount", "1000", "--reason", "ops may not"); exitCode(err) != 1 || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("adjust as ops: %v", err)
	}
	t.Setenv("SMP_ADMIN_TOKEN", "fin-token")

	// An entry changed below the store (the append-only trigger dropped):
	// verify names it and exits 1.
	raw, err := sql.Open("sqlite", filepath.Join(a.Cfg.DataDir, "smp.db"))
	must(t, err)
	for _, q := range []string{`DROP TRIGGER pwt_no_update`, `UPDATE partner_wallet_transactions SET amount_vnd = 3500 WHERE id = 'commission:o1'`} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	must(t, raw.Close())
	if out, err := ctl("wallets", "verify"); exitCode(err) != 1 || !strings.Contains(out, "commission:o1") || !strings.Contains(err.Error(), "does not verify") {
		t.Fatalf("ctl wallets verify of a changed ledger: %v\n%s", err, out)
	}
	t.Setenv("SMP_ADMIN_TOKEN", "ops-token")
	if _, err := ctl("wallets", "verify"); exitCode(err) != 1 || !strings.Contains(err.Error(), "HTTP 403") {
		t.Fatalf("ctl wallets verify as ops: %v", err)
	}
}

// TestVNPayTopupEndToEnd: POST /v1/partners/{id}/topups (the partner's
// own token, or finance), the payment at the VNPay simulator, the IPN
// delivered over HTTP to /integrations/vnpay/ipn and answered 00, then 02
// for its duplicate; the wallet credited once.
func TestVNPayTopupEndToEnd(t *testing.T) {
	t.Parallel()
	gw := &sim.VNPay{TmnCode: "SMPE2E01", Secret: []byte("e2e-vnpay-secret"), Seed: 5}
	gwSrv := httptest.NewServer(gw)
	t.Cleanup(gwSrv.Close)
	a := startApp(t, func(c *Config) {
		c.VNPayTmnCode, c.VNPayHashSecrets, c.VNPayPayURL = "SMPE2E01", "e2e-vnpay-secret,previous-secret", gwSrv.URL+"/paymentv2/vpcpay.html"
	})
	gw.IPNURL = a.url + "/integrations/vnpay/ipn"
	ctx := context.Background()
	// The partner's own token, issued as an operator would: smp token --partner.
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"token", "--partner", "P001", "--data-dir", a.Cfg.DataDir}, &out, &errb); err != nil {
		t.Fatalf("smp token --partner P001: %v\n%s", err, errb.String())
	}
	p1 := strings.TrimSpace(out.String())
	if err := run(ctx, []string{"token", "--partner", "P404", "--data-dir", a.Cfg.DataDir}, &out, &errb); exitCode(err) != 2 {
		t.Fatalf("smp token --partner P404: %v", err)
	}
	must(t, a.Store.PutToken(ctx, auth.HashToken("fin-token"), "admin", "fiona", smp.RoleFinance))
	must(t, a.Store.PutToken(ctx, auth.HashToken("ops-token"), "admin", "olga", smp.RoleOps))
	for _, c := range []struct {
		path, token string
		body        any
		status      int
	}{
		{"/v1/partners/P001/topups", "", map[string]any{"amount_vnd": 100000}, 401},
		{"/v1/partners/P002/topups", p1, map[string]any{"amount_vnd": 100000}, 403},
		{"/v1/partners/P001/topups", "ops-token", map[string]any{"amount_vnd": 100000}, 403},
		{"/v1/partners/P001/topups", a.ds.Customers[0].Token, map[string]any{"amount_vnd": 100000}, 403},
		{"/v1/partners/P001/topups", p1, map[string]any{"amount_vnd": 5}, 400},
		{"/v1/partners/P001/topups", p1, map[string]any{"amount_vnd": "lots"}, 400},
		{"/v1/partners/P404/topups", "fin-token", map[string]any{"amount_vnd": 100000}, 404},
		{"/v1/partners/P002/topups", "fin-token", map[string]any{"amount_vnd": 100000}, 201},
	} {
		if r := a.do("POST", c.path, c.token, c.body); r.Status != c.status || (r.Status >= 400 && errCode(r) == "") {
			t.Errorf("POST %s with %q: %d %s, want %d", c.path, c.token, r.Status, r.Raw, c.status)
		}
	}
	r := a.do("POST", "/v1/partners/P001/topups", p1, map[string]any{"amount_vnd": 250000})
	payURL, _ := r.Body["payment_url"].(string)
	if r.Status != 201 || r.Body["topup_id"] == nil || r.Body["txn_ref"] == nil || !strings.HasPrefix(payURL, gwSrv.URL) {
		t.Fatalf("top-up: %d %s", r.Status, r.Raw)
	}
	gw.SetFaults(sim.VNPayFaults{DuplicateRate: 1})
	if _, err := gw.Pay(payURL, true); err != nil {
		t.Fatal(err)
	}
	answers, err := gw.Deliver(ctx)
	if err != nil || len(answers) != 2 || answers[0].RspCode != "00" || answers[1].RspCode != "02" {
		t.Fatalf("IPN answers %+v, %v", answers, err)
	}
	if r := a.do("GET", "/admin/partners/P001/wallet", "fin-token", nil); r.Body["balance_vnd"] != 250000.0 {
		t.Fatalf("wallet after the top-up: %s", r.Raw)
	}
	// A forged IPN (no secret) is answered 97 with HTTP 200 and the
	// protocol's shape.
	resp, err := http.Get(a.url + "/integrations/vnpay/ipn?vnp_TxnRef=X&vnp_Amount=100&vnp_SecureHash=00")
	must(t, err)
	var ans map[string]string
	json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if resp.StatusCode != 200 || ans["RspCode"] != "97" || ans["Message"] != "Invalid Checksum" {
		t.Fatalf("forged IPN: %d %v", resp.StatusCode, ans)
	}
}
