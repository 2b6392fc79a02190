package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/auth"
	"smp/sim"
)

// TestWalletReconEndToEnd (runbook INC-010): two partners top up through
// the VNPay simulator on 2026-11-30, one IPN dropped; the next morning
// recon-report finds no run, recon-report --run (finance; audited) runs
// one over the admin API: the dropped notification is queried, applied
// and reported auto-corrected, the CSV has the runbook's columns; GET
// /admin/partners shows balances and wallet states, /metrics the
// reconciliation's figures. Not parallel: the token comes from
// SMP_ADMIN_TOKEN.
func TestWalletReconEndToEnd(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()).UTC() }
	gw := &sim.VNPay{TmnCode: "SMPE2E02", Secret: []byte("e2e-recon-secret"), Seed: 9, Now: clock}
	gwSrv := httptest.NewServer(gw)
	t.Cleanup(gwSrv.Close)
	a := startApp(t, func(c *Config) {
		c.VNPayTmnCode, c.VNPayHashSecrets = "SMPE2E02", "e2e-recon-secret"
		c.VNPayPayURL, c.VNPayAPIURL, c.VNPayFilesURL = gwSrv.URL+"/paymentv2/vpcpay.html", gwSrv.URL+"/merchant_webapi/api/transaction", gwSrv.URL
		c.ReconAt = "off"
		c.Now = clock
	})
	gw.IPNURL = a.url + "/integrations/vnpay/ipn"
	ctx := context.Background()
	must(t, a.Store.PutToken(ctx, auth.HashToken("fin-token"), "admin", "fiona", smp.RoleFinance))
	must(t, a.Store.PutToken(ctx, auth.HashToken("ops-token"), "admin", "olga", smp.RoleOps))
	pay := func(partner string, vnd int64, drop bool) {
		r := a.do("POST", "/v1/partners/"+partner+"/topups", "fin-token", map[string]any{"amount_vnd": vnd})
		if r.Status != 201 {
			t.Fatalf("top-up: %d %s", r.Status, r.Raw)
		}
		if drop {
			gw.SetFaults(sim.VNPayFaults{DropRate: 1})
			defer gw.SetFaults(sim.VNPayFaults{})
		}
		if _, err := gw.Pay(r.Body["payment_url"].(string), true); err != nil {
			t.Fatal(err)
		}
		if _, err := gw.Deliver(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pay("P001", 500_000, false)
	pay("P002", 300_000, true)
	now.Store(time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC).UnixNano())

	report := func(token string, args ...string) (string, string, error) {
		t.Setenv("SMP_ADMIN_TOKEN", token)
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"recon-report", "--server", a.url}, args...), &out, &errb)
		return out.String(), errb.String(), err
	}
	if _, errOut, err := report("ops-token", "--date=2026-11-30", "--format=csv"); exitCode(err) != 1 || !strings.Contains(errOut, "no reconciliation run") {
		t.Fatalf("before any run: %v %s", err, errOut)
	}
	if _, errOut, err := report("ops-token", "--date=yesterday", "--run"); exitCode(err) != 1 || !strings.Contains(errOut, "HTTP 403") {
		t.Fatalf("--run as ops: %v %s", err, errOut)
	}
	out, errOut, err := report("fin-token", "--date=yesterday", "--format=csv", "--run", "--reason", "INC-010 re-run")
	if err != nil {
		t.Fatalf("recon-report --run: %v\n%s", err, errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	must(t, err)
	if strings.Join(rows[0][:6], ",") != "partner_id,smp_balance,gateway_balance,diff_amount,diff_pct,last_txn_id" || len(rows) != 3 {
		t.Fatalf("CSV:\n%s", out)
	}
	if rows[1][0] != "P001" || rows[1][1] != "500000" || rows[1][2] != "500000" || rows[1][3] != "0" || rows[1][6] != "ok" ||
		rows[2][0] != "P002" || rows[2][1] != "300000" || rows[2][3] != "0" || rows[2][6] != "auto_corrected" || !strings.HasPrefix(rows[2][5], "vnpay:") {
		t.Fatalf("rows:\n%s", out)
	}
	if !strings.Contains(errOut, "verdict auto_corrected") {
		t.Fatalf("summary %q", errOut)
	}
	// The stored run, read again (the runbook's triage) as JSON.
	if out, _, err := report("ops-token", "--date=2026-11-30", "--format=json"); err != nil || !strings.Contains(out, `"auto_corrected": 1`) {
		t.Fatalf("recon-report --format=json: %v\n%s", err, out)
	}
	if r := a.do("GET", "/admin/wallets/recon/runs?date=2026-11-30", "ops-token", nil); r.Status != 200 || len(r.Body["runs"].([]any)) != 1 {
		t.Fatalf("runs: %d %s", r.Status, r.Raw)
	}
	if r := a.do("POST", "/admin/wallets/recon/runs", "fin-token", map[string]any{"date": "31/11"}); r.Status != 400 || errCode(r) != "invalid" {
		t.Fatalf("a bad date: %d %s", r.Status, r.Raw)
	}
	if r := a.do("POST", "/admin/wallets/recon/runs", "fin-token", map[string]any{"date": "today"}); r.Status != 400 {
		t.Fatalf("today, not over: %d %s", r.Status, r.Raw)
	}
	audit, err := a.Store.FindAudit(ctx, smp.AuditFilter{Target: "day:2026-11-30"})
	must(t, err)
	if len(audit) != 2 || audit[0].Action != "wallet.reconcile" || audit[0].Actor != "fiona" || audit[0].Reason != "INC-010 re-run" {
		t.Fatalf("audit %+v", audit)
	}
	// GET /admin/partners: balances and states.
	r := a.do("GET", "/admin/partners", "fin-token", nil)
	ps, _ := r.Body["partners"].([]any)
	if r.Status != 200 || len(ps) < 2 {
		t.Fatalf("partners: %d %s", r.Status, r.Raw)
	}
	p2 := ps[1].(map[string]any)
	if p2["id"] != "P002" || p2["balance_vnd"] != 300000.0 || p2["wallet_state"] != "active" || p2["status"] == nil {
		t.Fatalf("P002: %v", p2)
	}
	// smp runbook check INC-010 reads the same figures.
	if out, _ := runbookCheck(a.url, "INC-010"); !strings.Contains(out, "Wallet reconciliation mismatch") || !strings.Contains(out, "wallet_recon_diff_pct = 0") {
		t.Fatalf("runbook check INC-010:\n%s", out)
	}
	resp, err := http.Get(a.url + "/metrics")
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"wallet_recon_diff_pct 0", "wallet_recon_last_success_timestamp_seconds 1.7960904e+09"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(string(body), "wallet_recon"))
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
