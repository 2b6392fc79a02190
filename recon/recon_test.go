package recon_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"smp"
	"smp/recon"
	"smp/sim"
	"smp/sqlstore"
	"smp/vnpay"
	"smp/wallet"
)

var ctx = context.Background()

const tmn = "SMPTEST1"

var secret = []byte("merchant-secret-2026")

// The day reconciled: 2026-11-30 in Asia/Ho_Chi_Minh. Payments at 10:00
// there (03:00 UTC); the nightly run at 02:00 UTC the next day, 23 hours
// later.
var (
	payAt = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)
	runAt = time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
)

const day = "2026-11-30"

type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func newClock(t time.Time) *clock    { c := &clock{}; c.Set(t); return c }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// fixture: a store, the wallet service speaking to the VNPay simulator
// (querydr over HTTP), and the reconciliation reading the simulator's
// daily files over HTTP.
type fixture struct {
	path   string
	store  *sqlstore.DB
	clock  *clock
	gw     *sim.VNPay
	srv    *httptest.Server
	down   atomic.Bool  // the gateway's server answers 503
	hits   atomic.Int64 // daily-file requests that reached the gateway
	wallet *wallet.Service
	files  *recon.VNPayFiles
	rec    *recon.Service
	reg    *prometheus.Registry
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{path: filepath.Join(t.TempDir(), "smp.db"), clock: newClock(payAt)}
	var err error
	f.store, err = sqlstore.Open(ctx, sqlstore.Config{Path: f.path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	for _, id := range []string{"P001", "P002", "P003"} {
		if err := f.store.UpsertPartner(ctx, &smp.Partner{ID: id, Name: "Partner " + id}); err != nil {
			t.Fatal(err)
		}
	}
	f.gw = &sim.VNPay{TmnCode: tmn, Secret: secret, Now: f.clock.Now, Seed: 1}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/transactions/") {
			f.hits.Add(1)
		}
		if f.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		f.gw.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	n := 0
	f.wallet, err = wallet.New(f.store, wallet.Config{VNPay: wallet.VNPay{TmnCode: tmn, Secrets: [][]byte{secret},
		PayURL: "https://vnpay.test/paymentv2/vpcpay.html", ReturnURL: "https://smp.test/return", APIURL: f.srv.URL + "/merchant_webapi/api/transaction"},
		NewRef: func() string { n++; return "T" + time.Duration(n).String() }, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.files = recon.NewVNPayFiles(f.srv.URL, nil, 3, time.Hour)
	f.reg = prometheus.NewRegistry()
	f.rec = f.newRecon(t, f.store, "p1", f.reg)
	return f
}

func (f *fixture) newRecon(t testing.TB, store recon.Store, owner string, reg prometheus.Registerer) *recon.Service {
	t.Helper()
	s, err := recon.New(recon.Config{Store: store, Gateway: f.files, Replayer: f.wallet, Locker: store.(smp.Locker), Owner: owner,
		Now: f.clock.Now, Registerer: reg, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// topup creates a top-up, pays it at the simulator, and delivers its IPN
// unless drop; it returns the txn ref.
func (f *fixture) topup(t testing.TB, partner string, vnd int64, drop bool) string {
	t.Helper()
	c, err := f.wallet.CreateTopup(ctx, partner, vnd, "203.0.113.7")
	if err != nil {
		t.Fatal(err)
	}
	if drop {
		f.gw.SetFaults(sim.VNPayFaults{DropRate: 1})
		defer f.gw.SetFaults(sim.VNPayFaults{})
	}
	if _, err := f.gw.Pay(c.PaymentURL, true); err != nil {
		t.Fatal(err)
	}
	for _, ipn := range f.gw.Pending() {
		if ans, err := f.wallet.HandleIPN(ctx, ipn); err != nil || ans.RspCode != vnpay.RspConfirmed {
			t.Fatalf("IPN: %+v %v", ans, err)
		}
	}
	return c.TxnRef
}

func (f *fixture) run(t testing.TB) *smp.ReconRun {
	t.Helper()
	f.clock.Set(runAt)
	r, err := f.rec.Run(ctx, day, recon.Trigger{Kind: smp.ReconTriggerCron})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := f.store.FindReconRun(ctx, r.ID)
	if err != nil || len(stored.Rows) != len(r.Rows) || stored.Verdict != r.Verdict {
		t.Fatalf("stored run %+v %v", stored, err)
	}
	return r
}

func row(t testing.TB, r *smp.ReconRun, partner string) smp.ReconRow {
	t.Helper()
	for _, w := range r.Rows {
		if w.PartnerID == partner {
			return w
		}
	}
	t.Fatalf("no row for %s in %+v", partner, r.Rows)
	return smp.ReconRow{}
}

func (f *fixture) rate(t testing.TB, cur, date, rate string) {
	t.Helper()
	fields := map[string]string{"from_currency": cur, "to_currency": "VND", "rate_date": date, "rate": rate}
	err := f.store.InTx(ctx, func(tx smp.Tx) error {
		_, _, err := tx.PutMasterRecord(ctx, smp.MasterRecord{Table: smp.MasterCurrencyRates, Key: cur + "/VND/" + date, Fields: fields, Version: 1,
			Region: smp.DefaultRegion, UpdatedAt: payAt})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReconcileAgrees: what the gateway settled and SMP posted agree:
// every row ok, the runbook's columns filled, the run kept.
func TestReconcileAgrees(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.topup(t, "P001", 500_000, false)
	f.topup(t, "P002", 200_000, false)
	r := f.run(t)
	if r.Status != smp.ReconCompleted || r.Verdict != smp.ReconOK || r.Partners != 2 || r.Mismatches != 0 || r.Day != day {
		t.Fatalf("run %+v", r)
	}
	w := row(t, r, "P001")
	if w.SMPBalanceVND != 500_000 || w.GatewayBalanceVND != 500_000 || w.DiffVND != 0 || w.DiffPct != "0.0000" || w.LastTxnID != "vnpay:"+ref ||
		w.Verdict != smp.ReconOK {
		t.Fatalf("row %+v", w)
	}
}

// TestScenario1MissedNotification: an IPN dropped by the gateway (under
// 24 h old at the run) is queried with querydr, applied once, compared
// again and reported auto-corrected; the wallet holds it once. One older
// than 24 h is reported missing (a mismatch pairing the gateway's record
// with no SMP entry), not corrected.
func TestScenario1MissedNotification(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.topup(t, "P001", 500_000, false)
	ref := f.topup(t, "P002", 300_000, true)
	if len(f.gw.Dropped()) != 1 {
		t.Fatal("the IPN was not dropped")
	}
	r := f.run(t)
	w := row(t, r, "P002")
	if w.Verdict != smp.ReconAutoCorrected || w.DiffVND != 0 || w.SMPBalanceVND != 300_000 || len(w.Detail.AutoCorrected) != 1 ||
		w.Detail.AutoCorrected[0].TxnRef != ref || w.Detail.AutoCorrected[0].SMP == nil || w.LastTxnID != "vnpay:"+ref || r.AutoCorrected != 1 || r.Verdict != smp.ReconAutoCorrected {
		t.Fatalf("row %+v (run %+v)", w, r)
	}
	if ww, _ := f.wallet.FindWallet(ctx, "P002"); ww.BalanceVND != 300_000 {
		t.Fatalf("wallet %d after the correction", ww.BalanceVND)
	}
	// Again: nothing left to correct, and nothing applied twice.
	r2, err := f.rec.Run(ctx, day, recon.Trigger{})
	if err != nil {
		t.Fatal(err)
	}
	if w := row(t, r2, "P002"); w.Verdict != smp.ReconOK || w.SMPBalanceVND != 300_000 {
		t.Fatalf("second run %+v", w)
	}
	if ww, _ := f.wallet.FindWallet(ctx, "P002"); ww.BalanceVND != 300_000 {
		t.Fatalf("wallet %d after the second run", ww.BalanceVND)
	}

	// Older than 24 h: reported, not corrected.
	g := newFixture(t)
	ref = g.topup(t, "P003", 300_000, true)
	g.clock.Set(runAt.Add(2 * time.Hour))
	r, err = g.rec.Run(ctx, day, recon.Trigger{})
	if err != nil {
		t.Fatal(err)
	}
	w = row(t, r, "P003")
	if w.Verdict != smp.ReconMismatch || w.DiffVND != -300_000 || w.SMPBalanceVND != 0 || w.GatewayBalanceVND != 300_000 ||
		len(w.Detail.Pairs) != 1 || w.Detail.Pairs[0].Kind != smp.ReconMissingInSMP || w.Detail.Pairs[0].Gateway.AmountVND != 300_000 ||
		w.Detail.Pairs[0].TxnRef != ref {
		t.Fatalf("row %+v", w)
	}
	if ww, _ := g.wallet.FindWallet(ctx, "P003"); ww.BalanceVND != 0 {
		t.Fatalf("an old miss was applied: %d", ww.BalanceVND)
	}
}

// TestScenario2Adjustment: a manual adjustment has no gateway entry: it is
// listed with its reason; with an expected_diff equal to its effect the
// row is explained (not a mismatch); without one it is a mismatch.
func TestScenario2Adjustment(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.topup(t, "P001", 1_000_000, false)
	f.topup(t, "P002", 1_000_000, false)
	exp := int64(150_000)
	fin := smp.Principal{Name: "thu.finance", Role: smp.RoleFinance}
	if _, err := f.wallet.Adjust(ctx, fin, "adj-1", "P001", 150_000, "compensation for order O-17", &exp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.wallet.Adjust(ctx, fin, "adj-2", "P002", 150_000, "goodwill", nil); err != nil {
		t.Fatal(err)
	}
	r := f.run(t)
	w := row(t, r, "P001")
	if w.Verdict != smp.ReconExplained || w.DiffVND != 150_000 || w.ExpectedDiffVND != 150_000 || w.SMPBalanceVND != 1_150_000 ||
		w.GatewayBalanceVND != 1_000_000 || w.DiffPct != "15.0000" || len(w.Detail.Adjustments) != 1 ||
		w.Detail.Adjustments[0].Reason != "compensation for order O-17" || !w.Detail.Adjustments[0].Matched || w.LastTxnID != "adj-1" {
		t.Fatalf("explained row %+v", w)
	}
	w = row(t, r, "P002")
	if w.Verdict != smp.ReconMismatch || w.DiffVND != 150_000 || len(w.Detail.Adjustments) != 1 || w.Detail.Adjustments[0].Matched ||
		w.Detail.Adjustments[0].Reason != "goodwill" {
		t.Fatalf("unexpected adjustment's row %+v", w)
	}
	if r.Mismatches != 1 || r.MaxDiffVND != 150_000 || r.MaxDiffPct != "15.0000" {
		t.Fatalf("run %+v", r)
	}
}

// TestScenario3CurrencyRates: a gateway record in USD is converted at the
// rate of its day (and agrees); with only a rate 4 days older the partner
// is inconclusive (stale rate), not a diff.
func TestScenario3CurrencyRates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, rateDate, verdict string
	}{{"RateOfTheDay", day, smp.ReconOK}, {"RateTwoDaysOld", "2026-11-28", smp.ReconOK}, {"StaleRate", "2026-11-26", smp.ReconInconclusive}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ref := f.topup(t, "P003", 1_000_000, false)
			// SMP was credited 1,000,000 VND; the gateway reports 40 USD.
			f.gw.AlterRecord(ref, func(x *sim.VNPayTxn) { x.Currency, x.Amount = "USD", "40" })
			f.rate(t, "USD", tc.rateDate, "25000")
			r := f.run(t)
			w := row(t, r, "P003")
			if w.Verdict != tc.verdict {
				t.Fatalf("row %+v", w)
			}
			if tc.verdict == smp.ReconInconclusive {
				if !strings.Contains(w.Note, "stale rate") || w.DiffVND != 0 || r.Inconclusive != 1 || r.Mismatches != 0 || r.MaxDiffPct != "0.0000" {
					t.Fatalf("stale: row %+v run %+v", w, r)
				}
				return
			}
			if w.DiffVND != 0 || w.GatewayBalanceVND != 1_000_000 {
				t.Fatalf("converted row %+v", w)
			}
		})
	}
	// The conversion is exact: 39.35 USD at 25,400.5 is 999,509.675,
	// 999,510 VND, a 490 VND diff against 1,000,000 (0.0490 % of the
	// gateway's: a mismatch, though under 100,000 VND).
	f := newFixture(t)
	ref := f.topup(t, "P003", 1_000_000, false)
	f.gw.AlterRecord(ref, func(x *sim.VNPayTxn) { x.Currency, x.Amount = "USD", "39.35" })
	f.rate(t, "USD", day, "25400.5")
	w := row(t, f.run(t), "P003")
	if w.Verdict != smp.ReconMismatch || w.DiffVND != 490 || w.DiffPct != "0.0490" || len(w.Detail.Pairs) != 1 ||
		w.Detail.Pairs[0].Gateway.AmountVND != 999_510 || w.Detail.Pairs[0].Gateway.Rate != "25400.5" {
		t.Fatalf("row %+v", w)
	}
}

// TestScenario4CalculationBug: the gateway's record of a transaction says
// another amount than SMP's entry: the row is a mismatch and pairs SMP's
// entry with the gateway's record.
func TestScenario4CalculationBug(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.topup(t, "P001", 500_000, false)
	f.topup(t, "P001", 200_000, false)
	f.gw.AlterRecord(ref, func(x *sim.VNPayTxn) { x.AmountVND = 450_000 })
	r := f.run(t)
	w := row(t, r, "P001")
	if w.Verdict != smp.ReconMismatch || w.DiffVND != 50_000 || w.SMPBalanceVND != 700_000 || w.GatewayBalanceVND != 650_000 ||
		len(w.Detail.Pairs) != 1 {
		t.Fatalf("row %+v", w)
	}
	p := w.Detail.Pairs[0]
	if p.Kind != smp.ReconAmountDiffers || p.TxnRef != ref || p.SMP == nil || p.SMP.ID != "vnpay:"+ref || p.SMP.AmountVND != 500_000 ||
		p.Gateway == nil || p.Gateway.AmountVND != 450_000 || p.Gateway.TransactionNo == "" {
		t.Fatalf("pair %+v smp %+v gateway %+v", p, p.SMP, p.Gateway)
	}
	// A small diff under both thresholds is no mismatch: 1 VND on 700,000.
	g := newFixture(t)
	ref = g.topup(t, "P001", 700_000, false)
	g.gw.AlterRecord(ref, func(x *sim.VNPayTxn) { x.AmountVND = 699_999 })
	if w := row(t, g.run(t), "P001"); w.Verdict != smp.ReconOK || w.DiffVND != 1 || w.DiffPct != "0.0001" {
		t.Fatalf("1 VND: %+v", w)
	}
}

// TestGatewayDownIsInconclusive: the gateway's files unreachable: the run
// is inconclusive, every row too, with no diff; after 3 failures the
// breaker is open and the next run makes no request, inconclusive again.
func TestGatewayDownIsInconclusive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ref := f.topup(t, "P001", 500_000, false)
	f.gw.AlterRecord(ref, func(x *sim.VNPayTxn) { x.AmountVND = 1 }) // would be a large diff
	f.down.Store(true)
	for i := range 3 {
		r := f.run(t)
		w := row(t, r, "P001")
		if r.Status != smp.ReconRunInconclusive || r.Verdict != smp.ReconInconclusive || w.Verdict != smp.ReconInconclusive || w.DiffVND != 0 ||
			r.Mismatches != 0 || !strings.Contains(r.Error, "503") || w.SMPBalanceVND != 500_000 {
			t.Fatalf("run %d: %+v row %+v", i, r, w)
		}
	}
	if !f.files.BreakerOpen() {
		t.Fatal("the breaker is not open after 3 failures")
	}
	before := f.hits.Load()
	r := f.run(t)
	if r.Status != smp.ReconRunInconclusive || !strings.Contains(r.Error, "circuit breaker open") || f.hits.Load() != before {
		t.Fatalf("with the breaker open: %+v (requests %d → %d)", r, before, f.hits.Load())
	}
	if runs, _ := f.store.FindReconRuns(ctx, smp.ReconRunFilter{Day: day}); len(runs) != 4 {
		t.Fatalf("%d runs kept, want every one (4)", len(runs))
	}
}

func gauge(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			var m *dto.Metric = mf.GetMetric()[0]
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestMetricsFromHistory: wallet_recon_diff_pct is the largest over the
// partners of the last completed run, and the last success its finish;
// an inconclusive run changes neither.
func TestMetricsFromHistory(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if v := gauge(t, f.reg, "wallet_recon_last_success_timestamp_seconds"); v != 0 {
		t.Fatalf("no run yet: last success %v", v)
	}
	ref := f.topup(t, "P001", 1_000_000, false)
	f.topup(t, "P002", 1_000_000, false)
	f.gw.AlterRecord(ref, func(x *sim.VNPayTxn) { x.AmountVND = 980_000 }) // 20,000 on 980,000: 2.0408 %
	f.run(t)
	if v := gauge(t, f.reg, "wallet_recon_diff_pct"); v < 2.0408 || v > 2.0409 {
		t.Fatalf("diff pct %v", v)
	}
	if v := gauge(t, f.reg, "wallet_recon_last_success_timestamp_seconds"); v != float64(runAt.Unix()) {
		t.Fatalf("last success %v, want %d", v, runAt.Unix())
	}
	if v := gauge(t, f.reg, "wallet_recon_mismatches"); v != 1 {
		t.Fatalf("mismatches %v", v)
	}
	f.down.Store(true)
	f.clock.Set(runAt.Add(time.Hour))
	if _, err := f.rec.Run(ctx, day, recon.Trigger{}); err != nil {
		t.Fatal(err)
	}
	if v := gauge(t, f.reg, "wallet_recon_last_success_timestamp_seconds"); v != float64(runAt.Unix()) {
		t.Fatalf("an inconclusive run moved the last success: %v", v)
	}
}

// TestLeaseOneRunAcrossProcesses: two processes (two stores on one
// database, two services) due at the same time make one run between
// them; later polls make none, until the next day.
func TestLeaseOneRunAcrossProcesses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.topup(t, "P001", 500_000, false)
	other, err := sqlstore.Open(ctx, sqlstore.Config{Path: f.path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	p2 := f.newRecon(t, other, "p2", nil)
	f.clock.Set(runAt.Add(-time.Minute))
	if r, err := f.rec.RunDue(ctx); r != nil || err != nil {
		t.Fatalf("before 02:00: %v %v", r, err)
	}
	f.clock.Set(runAt.Add(time.Second))
	var wg sync.WaitGroup
	var made atomic.Int32
	for _, s := range []*recon.Service{f.rec, p2, f.rec, p2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.RunDue(ctx)
			if err != nil {
				t.Error(err)
			}
			if r != nil {
				made.Add(1)
			}
		}()
	}
	wg.Wait()
	runs, _ := f.store.FindReconRuns(ctx, smp.ReconRunFilter{})
	if made.Load() != 1 || len(runs) != 1 || runs[0].Day != day || runs[0].Trigger != smp.ReconTriggerCron {
		t.Fatalf("%d runs made, %d kept: %+v", made.Load(), len(runs), runs)
	}
	f.clock.Add(3 * time.Hour)
	if r, _ := p2.RunDue(ctx); r != nil {
		t.Fatalf("a second run of the day: %+v", r)
	}
	f.clock.Add(24 * time.Hour)
	if r, err := p2.RunDue(ctx); err != nil || r == nil || r.Day != "2026-12-01" {
		t.Fatalf("the next day: %+v %v", r, err)
	}
}

// TestScheduleRuns: the loop started at 02:05 UTC runs yesterday's
// reconciliation by itself; an inconclusive run is retried an hour later.
func TestScheduleRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.topup(t, "P001", 500_000, false)
	f.down.Store(true)
	f.clock.Set(runAt.Add(5 * time.Minute))
	if err := f.rec.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.rec.Stop(ctx) })
	wait := func(n int) []*smp.ReconRun {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if runs, _ := f.store.FindReconRuns(ctx, smp.ReconRunFilter{}); len(runs) >= n {
				return runs
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("no %d runs", n)
		return nil
	}
	if runs := wait(1); runs[0].Status != smp.ReconRunInconclusive {
		t.Fatalf("first run %+v", runs[0])
	}
	f.down.Store(false)
	f.clock.Add(61 * time.Minute)
	if runs := wait(2); runs[0].Status != smp.ReconCompleted || runs[0].Verdict != smp.ReconOK {
		t.Fatalf("the retry %+v", runs[0])
	}
	f.rec.Stop(ctx)
	if runs, _ := f.store.FindReconRuns(ctx, smp.ReconRunFilter{}); len(runs) != 2 {
		t.Fatalf("%d runs", len(runs))
	}
}

// TestRunRefuses: a malformed day or one not over is EINVALID.
func TestRunRefuses(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.clock.Set(runAt)
	for _, d := range []string{"30/11/2026", "2026-12-01"} {
		if _, err := f.rec.Run(ctx, d, recon.Trigger{}); smp.ErrorCode(err) != smp.EINVALID {
			t.Fatalf("day %s: %v", d, err)
		}
	}
}
