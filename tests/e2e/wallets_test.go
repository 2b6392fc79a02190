package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"smp"
	"smp/auth"
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
	if out, err := ctl("wallets", "show", "--output", "csv"); err != nil || !strings.Contains(out, "P001,465000,0,active,2,") {
		t.Fatalf("ctl wallets show: %v\n%s", err, out)
	}
	if out, err := ctl("wallets", "show", "--partner", "P001"); err != nil || !strings.Contains(out, "465000") {
		t.Fatalf("ctl wallets show --partner: %v\n%s", err, out)
	}
	if out, err := ctl("wallets", "verify"); err != nil || !strings.Contains(out, "ok") || !strings.Contains(out, "true") {
		t.Fatalf("ctl wallets verify: %v\n%s", err, out)
	}

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
