package wallet_test

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smp"
	"smp/sim"
	"smp/sqlstore"
	"smp/sqlstore/sqlstoretest"
	"smp/vnpay"
	"smp/wallet"
)

// clock is an injected clock tests move by hand; step, when set, moves it
// on every reading.
type clock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

type backendCfg struct {
	name string
	cfg  func(t *testing.T) sqlstore.Config
}

var enforceBackends = []backendCfg{
	{"SQLite", func(t *testing.T) sqlstore.Config { return sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")} }},
	{"MySQL", func(t *testing.T) sqlstore.Config { return sqlstore.Config{MySQLDSN: sqlstoretest.MySQLDSN(t)} }},
}

// enf is a wallet service with VNPay (the simulator) on a store of the
// given configuration, with an injected clock.
type enf struct {
	store *sqlstore.DB
	svc   *wallet.Service
	gw    *sim.VNPay
	clk   *clock
	t     *testing.T
}

var refN atomic.Int64

func newEnf(t *testing.T, cfg sqlstore.Config, clk *clock, partners bool) *enf {
	t.Helper()
	cfg.Now = clk.Now
	store, err := sqlstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if partners {
		for _, id := range []string{"P001", "P002"} {
			if err := store.UpsertPartner(ctx, &smp.Partner{ID: id, Name: "Partner " + id}); err != nil {
				t.Fatal(err)
			}
		}
	}
	svc, err := wallet.New(store, wallet.Config{VNPay: wallet.VNPay{TmnCode: tmn, Secrets: [][]byte{vnpSecret},
		PayURL: "https://vnpay.test/paymentv2/vpcpay.html", ReturnURL: "https://smp.test/return"},
		NewRef: func() string { return fmt.Sprintf("E%d", refN.Add(1)) }, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &enf{t: t, store: store, svc: svc, clk: clk, gw: &sim.VNPay{TmnCode: tmn, Secret: vnpSecret, Now: clk.Now, Seed: 1}}
}

// paidIPN creates a top-up and pays it at the gateway: its IPN.
func (e *enf) paidIPN(t *testing.T, partner string, vnd int64) url.Values {
	t.Helper()
	c, err := e.svc.CreateTopup(ctx, partner, vnd, "203.0.113.7")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.gw.Pay(c.PaymentURL, true); err != nil {
		t.Fatal(err)
	}
	p := e.gw.Pending()
	return p[len(p)-1]
}

var (
	security = smp.Principal{Name: "sec.lan", Role: smp.RoleSecurity}
	finance  = smp.Principal{Name: "fin.mai", Role: smp.RoleFinance}
)

func (e *enf) must(r *wallet.ControlResult, err error) *wallet.ControlResult {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// TestFreezeRace: a freeze commits while many goroutines post top-ups
// (VNPay IPNs), debits (adjustments and refunds) and commissions to the
// same wallet, on SQLite and on MariaDB. Nothing guarded posts after the
// freeze: every entry of the partner whose seq is above the chain's head
// at the freeze (recorded under the head lock) is a commission; every
// top-up paid is either credited before the freeze or held (answered 00,
// not credited); refused debits were refused as frozen; the ledger
// verifies.
func TestFreezeRace(t *testing.T) {
	t.Parallel()
	for _, b := range enforceBackends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			clk := &clock{now: t0, step: time.Minute} // 1 min per reading: the velocity rail never trips
			e := newEnf(t, b.cfg(t), clk, true)
			if _, err := e.svc.Adjust(ctx, finance, "seed", "P001", 50_000_000, "opening balance", nil); err != nil {
				t.Fatal(err)
			}
			const n = 30
			var ipns []url.Values
			for range n {
				ipns = append(ipns, e.paidIPN(t, "P001", 100_000))
			}
			var posted atomic.Int64
			tenPosted := make(chan struct{})
			var once sync.Once
			ok := func() {
				if posted.Add(1) == 10 {
					once.Do(func() { close(tenPosted) })
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, 10*n)
			var heldAnswers, frozenRefusals atomic.Int64
			for g := range 3 { // IPNs
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := g; i < n; i += 3 {
						ans, err := e.svc.HandleIPN(ctx, ipns[i])
						if err != nil || ans.RspCode != vnpay.RspConfirmed {
							errs <- fmt.Errorf("IPN %d: %v %v", i, ans, err)
							continue
						}
						ok()
					}
				}()
			}
			for g := range 2 { // debits: adjustments down, refunds
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range n {
						var err error
						if g == 0 {
							_, err = e.svc.Adjust(ctx, finance, fmt.Sprintf("adj-%d", i), "P001", -1_000, "correction", nil)
						} else {
							_, err = e.svc.Post(ctx, smp.Posting{ID: fmt.Sprintf("refund-%d", i), Type: smp.WalletRefund, PartnerID: "P001",
								AmountVND: -2_000, Gateway: smp.GatewayVNPay, GatewayRef: fmt.Sprintf("R%d", i), Actor: "finance"}, "")
						}
						var refused *smp.WalletRefused
						switch {
						case errors.As(err, &refused) && refused.Rule == smp.RuleFrozen && smp.ErrorCode(err) == smp.EFORBIDDEN:
							frozenRefusals.Add(1)
						case err != nil:
							errs <- err
						default:
							ok()
						}
					}
				}()
			}
			wg.Add(1)
			go func() { // commissions: SMP's own claims always pass
				defer wg.Done()
				for i := range n {
					if _, err := e.svc.Post(ctx, smp.Posting{ID: fmt.Sprintf("commission:o%d", i), Type: smp.WalletCommission, PartnerID: "P001",
						AmountVND: -500, OrderID: fmt.Sprintf("o%d", i), Actor: "system:wallet-commission"}, ""); err != nil {
						errs <- fmt.Errorf("commission %d: %w", i, err)
					}
				}
			}()
			var freeze *wallet.ControlResult
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-tenPosted
				var err error
				if freeze, err = e.svc.Freeze(ctx, security, "P001", "fraud_alert_INC-011-2026-05-28"); err != nil {
					errs <- err
				}
			}()
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if t.Failed() {
				return
			}
			seq := freeze.Control.ChainSeq
			entries, err := e.store.FindWalletEntries(ctx, smp.WalletEntryFilter{PartnerID: "P001", Limit: 10000})
			if err != nil {
				t.Fatal(err)
			}
			var before, after, credited int
			for _, en := range entries {
				if en.Seq <= seq {
					before++
					if en.Type == smp.WalletTopup {
						credited++
					}
					continue
				}
				after++
				if en.Type != smp.WalletCommission {
					t.Errorf("entry %d (%s, %s) posted after the freeze committed at seq %d", en.Seq, en.ID, en.Type, seq)
				}
			}
			held, err := e.store.FindTopups(ctx, smp.TopupFilter{PartnerID: "P001", Status: smp.TopupHeld})
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range held {
				heldAnswers.Add(1)
				if h.HoldReason != smp.RuleFrozen || h.PostingID != "" {
					t.Errorf("held top-up %+v", h)
				}
			}
			if credited+len(held) != n {
				t.Errorf("%d top-ups credited before the freeze + %d held, want %d", credited, len(held), n)
			}
			if v, err := e.svc.Verify(ctx); err != nil || !v.OK {
				t.Fatalf("ledger: %v %v", v.Problems, err)
			}
			t.Logf("freeze at seq %d: %d entries before, %d commissions after; %d top-ups credited, %d held; %d debits refused as frozen",
				seq, before, after, credited, heldAnswers.Load(), frozenRefusals.Load())
			if len(held) == 0 || frozenRefusals.Load() == 0 {
				t.Errorf("the freeze raced nothing (held %d, refused %d): the test proves nothing", len(held), frozenRefusals.Load())
			}
		})
	}
}

// TestUnfreezeFalsePositive: the runbook's scenario 2. Frozen: a top-up
// request is refused (403), a top-up paid anyway is answered 00, stored
// and held, a debit is refused, a commission passes. Unfreeze with a
// note: the note is in partner_admin_users.notes, the held top-up is
// credited (its fate: released by the unfreeze, in its transaction),
// top-ups credit again; each action audited (who, when, why).
func TestUnfreezeFalsePositive(t *testing.T) {
	t.Parallel()
	clk := &clock{now: t0}
	e := newEnf(t, enforceBackends[0].cfg(t), clk, true)
	early := e.paidIPN(t, "P001", 200_000) // requested before the freeze, paid after
	r := e.must(e.svc.Freeze(ctx, security, "P001", "fraud_alert_INC-011-2026-05-28"))
	if !r.Changed || r.Control.State != smp.WalletFrozen || r.Previous != smp.WalletOpen {
		t.Fatalf("freeze %+v", r)
	}
	if again := e.must(e.svc.Freeze(ctx, security, "P001", "again")); again.Changed {
		t.Fatalf("a second freeze changed something: %+v", again)
	}
	if _, err := e.svc.CreateTopup(ctx, "P001", 100_000, "203.0.113.7"); smp.ErrorCode(err) != smp.EFORBIDDEN {
		t.Fatalf("top-up request on a frozen wallet: %v", err)
	}
	ans, err := e.svc.HandleIPN(ctx, early)
	if err != nil || ans.RspCode != vnpay.RspConfirmed {
		t.Fatalf("IPN on a frozen wallet: %+v %v", ans, err)
	}
	if ans, _ := e.svc.HandleIPN(ctx, early); ans.RspCode != vnpay.RspAlreadyConfirmed {
		t.Fatalf("the held IPN again: %+v", ans)
	}
	ref := early.Get("vnp_TxnRef")
	tp, _ := e.store.FindTopup(ctx, smp.GatewayVNPay, ref)
	if tp.Status != smp.TopupHeld || tp.HoldReason != smp.RuleFrozen {
		t.Fatalf("top-up %+v", tp)
	}
	if w, _ := e.svc.FindWallet(ctx, "P001"); w.BalanceVND != 0 {
		t.Fatalf("a held top-up was credited: %+v", w)
	}
	if evs, _ := e.store.FindInboxEvents(ctx, smp.InboxFilter{OrderID: ref}); len(evs) != 1 {
		t.Fatalf("the held IPN is not in event_log: %+v", evs)
	}
	if _, err := e.svc.Adjust(ctx, finance, "", "P001", -10, "fee", nil); smp.ErrorCode(err) != smp.EFORBIDDEN {
		t.Fatalf("a debit of a frozen wallet: %v", err)
	}
	if _, err := e.svc.Post(ctx, smp.Posting{ID: "commission:o1", Type: smp.WalletCommission, PartnerID: "P001", AmountVND: -5_000,
		OrderID: "o1", Actor: "system:wallet-commission"}, ""); err != nil {
		t.Fatalf("a commission on a frozen wallet: %v", err)
	}
	if _, err := e.svc.Unfreeze(ctx, security, "P001", ""); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("unfreeze without a note: %v", err)
	}
	clk.Set(t0.Add(time.Hour))
	u := e.must(e.svc.Unfreeze(ctx, security, "P001", "verified by phone with the registered number"))
	if !u.Changed || u.Control.State != smp.WalletOpen || len(u.Released) != 1 || u.Released[0] != ref {
		t.Fatalf("unfreeze %+v", u)
	}
	if _, err := e.svc.Unfreeze(ctx, security, "P001", "twice"); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("unfreeze of an open wallet: %v", err)
	}
	view, err := e.svc.FindControl(ctx, "P001")
	if err != nil {
		t.Fatal(err)
	}
	if len(view.Notes) != 1 || view.Notes[0].UserID != smp.PartnerOwnerUser ||
		!strings.Contains(view.Notes[0].Notes, "unfreeze by sec.lan: verified by phone with the registered number") || len(view.Held) != 0 {
		t.Fatalf("control view %+v notes %+v", view, view.Notes)
	}
	tp, _ = e.store.FindTopup(ctx, smp.GatewayVNPay, ref)
	if tp.Status != smp.TopupConfirmed || tp.PostingID != "vnpay:"+ref || tp.HoldReason != "" {
		t.Fatalf("released top-up %+v", tp)
	}
	if code := func() string { a, _ := e.svc.HandleIPN(ctx, e.paidIPN(t, "P001", 300_000)); return a.RspCode }(); code != vnpay.RspConfirmed {
		t.Fatalf("a top-up after the unfreeze: %s", code)
	}
	if w, _ := e.svc.FindWallet(ctx, "P001"); w.BalanceVND != 200_000-5_000+300_000 {
		t.Fatalf("balance %d after the unfreeze", w.BalanceVND)
	}
	audit, err := e.store.FindAudit(ctx, smp.AuditFilter{Target: "partner:P001"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]smp.AuditEntry{}
	for _, a := range audit {
		got[a.Action] = a
	}
	for action, reason := range map[string]string{wallet.ActionFreeze: "fraud_alert_INC-011-2026-05-28",
		wallet.ActionUnfreeze: "verified by phone with the registered number"} {
		a, ok := got[action]
		if !ok || a.Actor != "sec.lan" || a.Role != smp.RoleSecurity || a.Reason != reason || a.At.IsZero() {
			t.Errorf("audit %s: %+v (all: %+v)", action, a, audit)
		}
	}
	if v, err := e.svc.Verify(ctx); err != nil || !v.OK {
		t.Fatalf("ledger: %v %v", v.Problems, err)
	}
}

// TestSoftBlockCap: a soft block caps top-ups and debits at 1,000,000 VND
// per rolling 24 hours, not per calendar day (a day boundary does not
// reset it), commissions pass, and it lapses 48 hours after it was set.
func TestSoftBlockCap(t *testing.T) {
	t.Parallel()
	// 23:00 in Ho Chi Minh City (UTC+7) is 16:00 UTC.
	start := time.Date(2026, 11, 23, 16, 0, 0, 0, time.UTC)
	clk := &clock{now: start}
	e := newEnf(t, enforceBackends[0].cfg(t), clk, true)
	if _, err := e.svc.Adjust(ctx, finance, "seed", "P001", 5_000_000, "opening balance", nil); err != nil {
		t.Fatal(err)
	}
	e.must(e.svc.SoftBlock(ctx, security, "P001", "inconclusive: invoices requested"))
	ipn := func(vnd int64) (string, smp.TopupStatus) {
		v := e.paidIPN(t, "P001", vnd)
		a, err := e.svc.HandleIPN(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		tp, _ := e.store.FindTopup(ctx, smp.GatewayVNPay, v.Get("vnp_TxnRef"))
		return a.RspCode, tp.Status
	}
	clk.Set(start.Add(50 * time.Minute)) // 23:50 local
	if _, st := ipn(600_000); st != smp.TopupConfirmed {
		t.Fatalf("600,000 under the cap: %s", st)
	}
	if _, err := e.svc.Adjust(ctx, finance, "d1", "P001", -300_000, "fee", nil); err != nil {
		t.Fatalf("a debit under the cap: %v", err)
	}
	clk.Set(start.Add(70 * time.Minute)) // 00:10 local, the next day
	if code, st := ipn(200_000); code != vnpay.RspConfirmed || st != smp.TopupHeld {
		t.Fatalf("over the cap after midnight: %s %s", code, st)
	}
	_, err := e.svc.Adjust(ctx, finance, "d2", "P001", -200_000, "fee", nil)
	var refused *smp.WalletRefused
	if !errors.As(err, &refused) || refused.Rule != smp.RuleSoftBlockCap {
		t.Fatalf("a debit over the cap: %v", err)
	}
	if _, err := e.svc.Adjust(ctx, finance, "d3", "P001", -100_000, "fee", nil); err != nil {
		t.Fatalf("the last 100,000 of the cap: %v", err)
	}
	if _, err := e.svc.Post(ctx, smp.Posting{ID: "commission:o1", Type: smp.WalletCommission, PartnerID: "P001", AmountVND: -900_000,
		OrderID: "o1", Actor: "system:wallet-commission"}, ""); err != nil {
		t.Fatalf("a commission under a soft block: %v", err)
	}
	clk.Set(start.Add(24*time.Hour + 51*time.Minute)) // the 600,000 and 300,000 left the window
	if _, st := ipn(800_000); st != smp.TopupConfirmed {
		t.Fatalf("after 24 h: %s", st)
	}
	if _, st := ipn(150_000); st != smp.TopupHeld {
		t.Fatalf("over the cap again: %s", st)
	}
	clk.Set(start.Add(48 * time.Hour)) // lapsed
	if _, st := ipn(5_000_000); st != smp.TopupConfirmed {
		t.Fatalf("after 48 h the block lapses: %s", st)
	}
	if v, _ := e.svc.FindControl(ctx, "P001"); v.State != smp.WalletOpen {
		t.Fatalf("state after 48 h: %s", v.State)
	}
}

// TestSoftBlockAcrossProcesses: two wallet services on one MariaDB (two
// processes' pools) race top-ups and debits on a soft-blocked wallet:
// together they never pass the cap.
func TestSoftBlockAcrossProcesses(t *testing.T) {
	t.Parallel()
	dsn := sqlstoretest.MySQLDSN(t)
	clk := &clock{now: t0}
	a := newEnf(t, sqlstore.Config{MySQLDSN: dsn}, clk, true)
	b := newEnf(t, sqlstore.Config{MySQLDSN: dsn}, clk, false)
	if _, err := a.svc.Adjust(ctx, finance, "seed", "P001", 5_000_000, "opening balance", nil); err != nil {
		t.Fatal(err)
	}
	b.must(b.svc.SoftBlock(ctx, security, "P001", "inconclusive"))
	var wg sync.WaitGroup
	var okVND, refusedN atomic.Int64
	for g, s := range []*wallet.Service{a.svc, b.svc, a.svc, b.svc} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				_, err := s.Adjust(ctx, finance, fmt.Sprintf("g%d-%d", g, i), "P001", -70_000, "fee", nil)
				switch {
				case err == nil:
					okVND.Add(70_000)
				case smp.ErrorCode(err) == smp.EFORBIDDEN:
					refusedN.Add(1)
				default:
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if got := okVND.Load(); got > smp.SoftBlockCapVND || got < smp.SoftBlockCapVND-70_000 {
		t.Fatalf("%d VND passed the soft block across two processes (cap %d)", got, smp.SoftBlockCapVND)
	}
	if refusedN.Load() == 0 {
		t.Fatal("nothing was refused")
	}
}

// TestVelocityGuardRail: the 11th top-up within 10 minutes is held
// whatever the wallet's control; the rail is a compiled constant.
func TestVelocityGuardRail(t *testing.T) {
	t.Parallel()
	clk := &clock{now: t0}
	e := newEnf(t, enforceBackends[0].cfg(t), clk, true)
	var held int
	for i := range smp.VelocityMaxTopups + 1 {
		clk.Set(t0.Add(time.Duration(i) * 30 * time.Second))
		v := e.paidIPN(t, "P002", 20_000)
		if _, err := e.svc.HandleIPN(ctx, v); err != nil {
			t.Fatal(err)
		}
		tp, _ := e.store.FindTopup(ctx, smp.GatewayVNPay, v.Get("vnp_TxnRef"))
		if tp.Status == smp.TopupHeld {
			held++
			if i != smp.VelocityMaxTopups || tp.HoldReason != smp.RuleVelocityCount {
				t.Fatalf("top-up %d held: %+v", i, tp)
			}
		}
	}
	if held != 1 {
		t.Fatalf("%d held, want the 11th", held)
	}
}

// TestLargeValueReport: a top-up at or above the threshold creates a
// compliance report in its posting's transaction; below it, none.
func TestLargeValueReport(t *testing.T) {
	t.Parallel()
	clk := &clock{now: t0}
	e := newEnf(t, enforceBackends[0].cfg(t), clk, true)
	for _, vnd := range []int64{smp.LargeValueThresholdVND - 1, smp.LargeValueThresholdVND} {
		if a, err := e.svc.HandleIPN(ctx, e.paidIPN(t, "P001", vnd)); err != nil || a.RspCode != vnpay.RspConfirmed {
			t.Fatalf("%+v %v", a, err)
		}
	}
	rs, err := e.store.FindComplianceReports(ctx, smp.ComplianceFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].AmountVND != smp.LargeValueThresholdVND || rs[0].ThresholdVND != 400_000_000 || rs[0].Kind != smp.ReportLargeValue ||
		rs[0].PartnerID != "P001" || !strings.HasPrefix(rs[0].PostingID, "vnpay:") {
		t.Fatalf("reports %+v", rs)
	}
}

// TestControlInCallersTx: FreezeTx and SoftBlockTx change the control in
// the caller's transaction. What they refuse before writing (an unknown
// partner, a reason out of bounds, a soft block of a frozen wallet) is
// Refused and leaves the transaction as it was, so the caller may commit
// it; a partner id too long to name the control's event in 64
// characters gets a UUID instead (every freeze of such a partner failed
// at the event's write, after the control and audit entry were written).
func TestControlInCallersTx(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	long := "partner-" + strings.Repeat("x", 40)
	if err := f.store.UpsertPartner(ctx, &smp.Partner{ID: long, Name: "Long"}); err != nil {
		t.Fatal(err)
	}
	inTx := func(fn func(tx smp.Tx) error) error { return f.store.InTx(ctx, fn) }
	var res *wallet.ControlResult
	if err := inTx(func(tx smp.Tx) (err error) {
		res, err = f.svc.FreezeTx(ctx, tx, wallet.SystemFraudDetector, long, "fraud decision fd-1")
		return err
	}); err != nil || !res.Changed {
		t.Fatalf("FreezeTx(%s): %+v, %v", long, res, err)
	}
	evs := f.outbox(t)
	if len(evs) != 1 || evs[0].Type != wallet.EventWalletFrozen || !strings.HasPrefix(evs[0].ID, "ctl-") || len(evs[0].ID) > smp.MaxEventID {
		t.Fatalf("the freeze's events %+v", evs)
	}
	for name, refuse := range map[string]func(tx smp.Tx) error{
		"unknown partner": func(tx smp.Tx) error {
			_, err := f.svc.FreezeTx(ctx, tx, wallet.SystemFraudDetector, "P404", "fraud decision fd-2")
			return err
		},
		"no reason": func(tx smp.Tx) error {
			_, err := f.svc.SoftBlockTx(ctx, tx, wallet.SystemFraudDetector, "P001", " ")
			return err
		},
		"soft block of a frozen wallet": func(tx smp.Tx) error {
			_, err := f.svc.SoftBlockTx(ctx, tx, wallet.SystemFraudDetector, long, "fraud decision fd-3")
			return err
		},
	} {
		var err error
		if cerr := inTx(func(tx smp.Tx) error {
			err = refuse(tx)
			if !wallet.Refused(err) {
				return err
			}
			return tx.AddAudit(ctx, smp.AuditEntry{At: t0, Actor: "test", Action: "test.commit", Target: "partner:P001", Reason: name})
		}); cerr != nil || err == nil {
			t.Fatalf("%s: %v (Refused %v), commit %v", name, err, wallet.Refused(err), cerr)
		}
	}
	if got := f.outbox(t); len(got) != 1 {
		t.Fatalf("the refusals wrote events: %+v", got)
	}
	audit, err := f.store.FindAudit(ctx, smp.AuditFilter{})
	if err != nil || len(audit) != 4 { // the freeze's and the three test commits
		t.Fatalf("audit entries %+v, %v; want 4", audit, err)
	}
	c, err := f.svc.FindControl(ctx, long)
	if err != nil || c.State != smp.WalletFrozen {
		t.Fatalf("the long partner's control %+v, %v", c, err)
	}
}
