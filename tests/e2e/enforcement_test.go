package e2e

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"smp"
	"smp/auth"
	"smp/sim"
)

// TestWalletEnforcementEndToEnd (runbook INC-011, issue 18 part B): the
// runbook's admin tool (the /app/bin/admin link, smp admin) against a
// running platform with a security token: freeze (a top-up requested
// before is paid after: answered 00, held, not credited; the partner's
// new top-up request is 403 JSON), the control and its held top-up shown,
// unfreeze with its note (kept in partner_admin_users.notes, the held
// top-up credited), soft-block and its lift; roles (ops may not freeze);
// the guard rails refused to everyone, the admin role and the configured
// admin token included; the partner's IP allowlist (a refusal is 403 JSON
// with a clear message, audited); a large-value top-up's compliance
// report; every action in the audit log with who and why. Not parallel:
// the token comes from SMP_ADMIN_TOKEN.
func TestWalletEnforcementEndToEnd(t *testing.T) {
	gw := &sim.VNPay{TmnCode: "SMPE2E02", Secret: []byte("e2e-vnpay-secret"), Seed: 6}
	gwSrv := httptest.NewServer(gw)
	t.Cleanup(gwSrv.Close)
	a := startApp(t, func(c *Config) {
		c.VNPayTmnCode, c.VNPayHashSecrets, c.VNPayPayURL = "SMPE2E02", "e2e-vnpay-secret", gwSrv.URL+"/paymentv2/vpcpay.html"
	})
	gw.IPNURL = a.url + "/integrations/vnpay/ipn"
	ctx := context.Background()
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"token", "--partner", "P001", "--data-dir", a.Cfg.DataDir}, &out, &errb); err != nil {
		t.Fatalf("smp token --partner P001: %v\n%s", err, errb.String())
	}
	p1 := strings.TrimSpace(out.String())
	must(t, a.Store.PutToken(ctx, auth.HashToken("sec-token"), "admin", "sec.lan", smp.RoleSecurity))
	must(t, a.Store.PutToken(ctx, auth.HashToken("ops-token"), "admin", "olga", smp.RoleOps))
	must(t, a.Store.PutToken(ctx, auth.HashToken("root-token"), "admin", "root", smp.RoleAdmin))
	must(t, a.Store.PutToken(ctx, auth.HashToken("fin-token"), "admin", "fiona", smp.RoleFinance))
	admin := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append(append([]string{"admin"}, args...), "--server", a.url), &out, &errb)
		return out.String() + errb.String(), err
	}
	pay := func(token string, vnd int64) string {
		r := a.do("POST", "/v1/partners/P001/topups", token, map[string]any{"amount_vnd": vnd})
		if r.Status != 201 {
			t.Fatalf("top-up: %d %s", r.Status, r.Raw)
		}
		u, _ := r.Body["payment_url"].(string)
		if _, err := gw.Pay(u, true); err != nil {
			t.Fatal(err)
		}
		return r.Body["txn_ref"].(string)
	}
	deliver := func() {
		answers, err := gw.Deliver(ctx)
		if err != nil || len(answers) != 1 || answers[0].RspCode != "00" {
			t.Fatalf("IPN answers %+v %v", answers, err)
		}
	}
	balance := func() float64 {
		return a.do("GET", "/admin/partners/P001/wallet", "fin-token", nil).Body["balance_vnd"].(float64)
	}

	ref := pay(p1, 200_000) // requested and paid before the freeze, notified after
	t.Setenv("SMP_ADMIN_TOKEN", "ops-token")
	if out, err := admin("freeze", "--partner=P001", "--reason=fraud_alert_INC-011-2026-05-28"); err == nil || !strings.Contains(out, "403") {
		t.Fatalf("freeze as ops: %v %s", err, out)
	}
	t.Setenv("SMP_ADMIN_TOKEN", "sec-token")
	if out, err := admin("freeze", "--partner=P001", "--reason=fraud_alert_INC-011-2026-05-28"); err != nil || !strings.Contains(out, "frozen") {
		t.Fatalf("admin freeze: %v\n%s", err, out)
	}
	deliver()
	if b := balance(); b != 0 {
		t.Fatalf("a top-up was credited to a frozen wallet: %v", b)
	}
	if r := a.do("POST", "/v1/partners/P001/topups", p1, map[string]any{"amount_vnd": 100_000}); r.Status != 403 || errCode(r) != "forbidden" ||
		!strings.Contains(r.Raw, "frozen") {
		t.Fatalf("a top-up request on a frozen wallet: %d %s", r.Status, r.Raw)
	}
	if out, err := admin("show", "--partner=P001", "--output=json"); err != nil || !strings.Contains(out, `"state": "frozen"`) || !strings.Contains(out, ref) {
		t.Fatalf("admin show: %v\n%s", err, out)
	}
	if r := a.do("POST", "/admin/partners/P001/wallet/freeze", "sec-token", map[string]any{}); r.Status != 400 || errCode(r) != "invalid" {
		t.Fatalf("freeze without a reason: %d %s", r.Status, r.Raw)
	}
	if out, err := admin("unfreeze", "--partner=P001", "--note=false positive: verified by phone on the registered number"); err != nil ||
		!strings.Contains(out, ref) {
		t.Fatalf("admin unfreeze: %v\n%s", err, out)
	}
	if b := balance(); b != 200_000 {
		t.Fatalf("after the unfreeze the held top-up is credited: %v", b)
	}
	r := a.do("GET", "/admin/partners/P001/wallet/control", "sec-token", nil)
	if !strings.Contains(r.Raw, "false positive: verified by phone on the registered number") || r.Body["state"] != "open" {
		t.Fatalf("control after the unfreeze: %s", r.Raw)
	}
	pay(p1, 100_000)
	deliver()
	if b := balance(); b != 300_000 {
		t.Fatalf("top-ups credit again: %v", b)
	}
	if out, err := admin("soft-block", "--partner=P001", "--reason=inconclusive, invoices requested"); err != nil || !strings.Contains(out, "soft_blocked") {
		t.Fatalf("admin soft-block: %v\n%s", err, out)
	}
	if out, err := admin("lift-soft-block", "--partner=P001", "--reason=documents verified"); err != nil || !strings.Contains(out, "open") {
		t.Fatalf("admin lift-soft-block: %v\n%s", err, out)
	}

	// Guard rails: nobody changes them, not even the admin role.
	for _, tok := range []string{"root-token", a.admin, "sec-token"} {
		if r := a.do("PUT", "/admin/wallets/guard-rails", tok, map[string]any{"max_topups": 1000, "lift": true, "reason": "override"}); r.Status != 403 ||
			errCode(r) != "forbidden" {
			t.Fatalf("guard rails changed with %s: %d %s", tok, r.Status, r.Raw)
		}
	}
	if r := a.do("GET", "/admin/wallets/guard-rails", "root-token", nil); !strings.Contains(r.Raw, `"max_topups": 10,`) {
		t.Fatalf("guard rails: %s", r.Raw)
	}

	// The IP allowlist of the partner's own admin actions.
	if out, err := admin("allowlist", "--partner=P001", "--set=not-an-ip", "--reason=office only"); err == nil || !strings.Contains(out, "400") {
		t.Fatalf("a bad allowlist: %v %s", err, out)
	}
	if out, err := admin("allowlist", "--partner=P001", "--set=198.51.100.0/24", "--reason=office only"); err != nil || !strings.Contains(out, "198.51.100.0/24") {
		t.Fatalf("admin allowlist --set: %v\n%s", err, out)
	}
	if r := a.do("POST", "/v1/partners/P001/topups", p1, map[string]any{"amount_vnd": 100_000}); r.Status != 403 || errCode(r) != "forbidden" ||
		!strings.Contains(r.Raw, "127.0.0.1 is not in the IP allowlist of partner P001") {
		t.Fatalf("a top-up from outside the allowlist: %d %s", r.Status, r.Raw)
	}
	if r := a.do("POST", "/v1/partners/P001/topups", "fin-token", map[string]any{"amount_vnd": 100_000}); r.Status != 201 {
		t.Fatalf("finance's top-up is no partner admin action: %d %s", r.Status, r.Raw)
	}
	if out, err := admin("allowlist", "--partner=P001", "--set=127.0.0.1", "--reason=the test's host"); err != nil {
		t.Fatalf("admin allowlist: %v\n%s", err, out)
	}

	// Compliance: a large-value top-up creates its report.
	pay(p1, 450_000_000)
	deliver()
	if r := a.do("GET", "/admin/compliance/reports", "ops-token", nil); r.Status != 403 {
		t.Fatalf("reports as ops: %d", r.Status)
	}
	if out, err := admin("reports", "--output=csv"); err != nil || !strings.Contains(out, ",P001,vnpay:") || !strings.Contains(out, ",450000000,400000000,open,") {
		t.Fatalf("admin reports: %v\n%s", err, out)
	}

	// Every action audited: who, when, why.
	r = a.do("GET", "/admin/audit?target=partner:P001&limit=100", "sec-token", nil)
	entries, _ := r.Body["entries"].([]any)
	seen := map[string]map[string]any{}
	for _, e := range entries {
		m := e.(map[string]any)
		if seen[m["action"].(string)] == nil { // the newest first
			seen[m["action"].(string)] = m
		}
	}
	for action, reason := range map[string]string{"wallet.freeze": "fraud_alert_INC-011-2026-05-28",
		"wallet.unfreeze": "false positive: verified by phone on the registered number", "wallet.soft_block": "inconclusive, invoices requested",
		"wallet.lift_soft_block": "documents verified", "partner.ip_allowlist": "the test's host", "partner.ip_refused": ""} {
		e := seen[action]
		if e == nil || (reason != "" && (e["reason"] != reason || e["actor"] != "sec.lan")) || e["at"] == nil {
			t.Errorf("audit %s: %v", action, e)
		}
	}
	r = a.do("GET", "/admin/audit?target=guard_rails&limit=10", "sec-token", nil)
	if entries, _ := r.Body["entries"].([]any); len(entries) != 3 {
		t.Errorf("refused guard-rail changes audited: %s", r.Raw)
	}
}
