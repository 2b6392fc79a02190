package recon_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"smp"
	"smp/sim"
	"smp/wallet"
)

var security = smp.Principal{Name: "sec.lan", Role: smp.RoleSecurity}

func heldStatus(t *testing.T, f *fixture, ref string) *smp.Topup {
	t.Helper()
	tp, err := f.store.FindTopup(ctx, smp.GatewayVNPay, ref)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func refusedBy(t *testing.T, err error, rule string) {
	t.Helper()
	var refused *smp.WalletRefused
	if !errors.As(err, &refused) || refused.Rule != rule || smp.ErrorCode(err) != smp.EFORBIDDEN {
		t.Fatalf("want a refusal by %s, got %v", rule, err)
	}
}

func audits(t *testing.T, f *fixture, ref, action string) []smp.AuditEntry {
	t.Helper()
	es, err := f.store.FindAudit(ctx, smp.AuditFilter{Target: "topup:vnpay:" + ref, Action: action, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func balance(t *testing.T, f *fixture, partner string) int64 {
	t.Helper()
	w, err := f.wallet.FindWallet(ctx, partner)
	if err != nil {
		t.Fatal(err)
	}
	return w.BalanceVND
}

// TestHeldByGuardRailReleased (issue 18): the 11th top-up in 10 minutes
// is paid at VNPay and held by the velocity guard rail. Its release is
// refused while the rail would still be passed (nothing changes); the
// night's reconciliation lists it as held (an explained difference, not a
// mismatch); released after the window, it is credited once, audited,
// and a second release changes nothing; the day reconciled again agrees.
func TestHeldByGuardRailReleased(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var ref string
	for i := range smp.VelocityMaxTopups + 1 {
		f.clock.Set(payAt.Add(time.Duration(i) * 30 * time.Second))
		ref = f.topup(t, "P001", 100_000, false)
	}
	if tp := heldStatus(t, f, ref); tp.Status != smp.TopupHeld || tp.HoldReason != smp.RuleVelocityCount {
		t.Fatalf("11th top-up: %+v", tp)
	}
	_, err := f.wallet.ReleaseHeld(ctx, security, "P001", ref, "partner verified by phone")
	refusedBy(t, err, smp.RuleVelocityCount)
	if tp := heldStatus(t, f, ref); tp.Status != smp.TopupHeld || balance(t, f, "P001") != 1_000_000 || len(audits(t, f, ref, wallet.ActionReleaseHeld)) != 0 {
		t.Fatalf("a refused release changed something: %+v", tp)
	}
	if _, err := f.wallet.ReleaseHeld(ctx, security, "P002", ref, "wrong partner"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("another partner's top-up: %v", err)
	}
	if _, err := f.wallet.ReleaseHeld(ctx, security, "P001", ref, ""); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("no reason: %v", err)
	}

	r := f.run(t) // 23 h later
	w := row(t, r, "P001")
	if r.Mismatches != 0 || w.Verdict != smp.ReconExplained || w.DiffVND != -100_000 || w.ExpectedDiffVND != -100_000 ||
		len(w.Detail.Held) != 1 || w.Detail.Held[0].TxnRef != ref || w.Detail.Held[0].Status != string(smp.TopupHeld) ||
		w.Detail.Held[0].HoldReason != smp.RuleVelocityCount || len(w.Detail.Pairs) != 0 {
		t.Fatalf("held top-up in the reconciliation: run %+v row %+v", r, w)
	}

	res, err := f.wallet.ReleaseHeld(ctx, security, "P001", ref, "partner verified by phone")
	if err != nil || !res.Changed || res.Posting == nil || res.Topup.Status != smp.TopupConfirmed || res.Topup.HoldReason != "" {
		t.Fatalf("release: %+v %v", res, err)
	}
	if b := balance(t, f, "P001"); b != 1_100_000 {
		t.Fatalf("balance after the release: %d", b)
	}
	if a := audits(t, f, ref, wallet.ActionReleaseHeld); len(a) != 1 || a[0].Actor != "sec.lan" || a[0].Reason != "partner verified by phone" {
		t.Fatalf("audit: %+v", a)
	}
	again, err := f.wallet.ReleaseHeld(ctx, security, "P001", ref, "partner verified by phone")
	if err != nil || again.Changed || balance(t, f, "P001") != 1_100_000 {
		t.Fatalf("a second release: %+v %v", again, err)
	}
	if _, err := f.wallet.ReverseHeld(ctx, security, "P001", ref, "too late"); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("reversing a released top-up: %v", err)
	}
	if r := f.run(t); row(t, r, "P001").Verdict != smp.ReconOK {
		t.Fatalf("after the release the day agrees: %+v", row(t, r, "P001"))
	}
}

// TestHeldBySoftBlockReversed (issue 18): a top-up over a soft block's
// cap is held; its release is refused while the cap would be passed; its
// reversal through VNPay's refund API (the simulator over HTTP) fails
// visibly and retryably: VNPay refusing (95: held again, the error shown)
// and VNPay refunding but its answer lost (a timeout: reversing, the
// release refused since the money may be gone); the retry gets 94 and
// closes it as reversed with its outbox event and audit entry; VNPay
// refunded once in all; the reconciliation explains it.
func TestHeldBySoftBlockReversed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.wallet.SoftBlock(ctx, security, "P002", "inconclusive: invoices requested"); err != nil {
		t.Fatal(err)
	}
	f.topup(t, "P002", 600_000, false)
	f.clock.Add(time.Minute)
	ref := f.topup(t, "P002", 700_000, false)
	if tp := heldStatus(t, f, ref); tp.Status != smp.TopupHeld || tp.HoldReason != smp.RuleSoftBlockCap {
		t.Fatalf("over the cap: %+v", tp)
	}
	_, err := f.wallet.ReleaseHeld(ctx, security, "P002", ref, "cap")
	refusedBy(t, err, smp.RuleSoftBlockCap)

	// VNPay refuses: nothing refunded, held again, the error visible.
	f.gw.SetFaults(sim.VNPayFaults{RefundCode: "95"})
	if _, err := f.wallet.ReverseHeld(ctx, security, "P002", ref, "fraud confirmed"); smp.ErrorCode(err) != smp.EUNAVAILABLE {
		t.Fatalf("refused refund: %v", err)
	}
	if tp := heldStatus(t, f, ref); tp.Status != smp.TopupHeld || tp.RefundAttempts != 1 || tp.RefundError == "" {
		t.Fatalf("after a refused refund: %+v", tp)
	}
	// VNPay refunds but the answer is lost: reversing, retryable.
	f.gw.SetFaults(sim.VNPayFaults{RefundTimeout: true})
	impatient, err := wallet.New(f.store, wallet.Config{VNPay: wallet.VNPay{TmnCode: tmn, Secrets: [][]byte{secret},
		APIURL: f.srv.URL + "/merchant_webapi/api/transaction"}, HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := impatient.ReverseHeld(ctx, security, "P002", ref, "fraud confirmed"); smp.ErrorCode(err) != smp.EUNAVAILABLE {
		t.Fatalf("refund without an answer: %v", err)
	}
	tp := heldStatus(t, f, ref)
	if tx, _ := f.gw.Txn(ref); tp.Status != smp.TopupReversing || tp.RefundAttempts != 2 || tp.RefundError == "" || tx.Refunds != 1 {
		t.Fatalf("after a lost answer: %+v, gateway refunds %d", tp, tx.Refunds)
	}
	if _, err := f.wallet.ReleaseHeld(ctx, security, "P002", ref, "cap lifted"); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("release while a refund may have been made: %v", err)
	}
	if held, _ := f.wallet.FindHeld(ctx, ""); len(held) != 1 || held[0].TxnRef != ref {
		t.Fatalf("held list: %+v", held)
	}
	// The retry: VNPay has the refund (94): reversed, once.
	f.gw.SetFaults(sim.VNPayFaults{})
	res, err := f.wallet.ReverseHeld(ctx, security, "P002", ref, "fraud confirmed")
	if err != nil || !res.Changed || res.RefundCode != "94" || res.Topup.Status != smp.TopupReversed || res.Topup.RefundError != "" || res.Topup.RefundNo == "" {
		t.Fatalf("retried reversal: %+v %v", res, err)
	}
	again, err := f.wallet.ReverseHeld(ctx, security, "P002", ref, "fraud confirmed")
	if err != nil || again.Changed {
		t.Fatalf("a reversal of a reversed top-up: %+v %v", again, err)
	}
	if tx, _ := f.gw.Txn(ref); tx.Refunds != 1 || tx.RefundedVND != 700_000 {
		t.Fatalf("VNPay refunded %d times, %d VND", tx.Refunds, tx.RefundedVND)
	}
	if b := balance(t, f, "P002"); b != 600_000 {
		t.Fatalf("balance: %d", b)
	}
	if asked, done := audits(t, f, ref, wallet.ActionReverseHeldAsked), audits(t, f, ref, wallet.ActionReverseHeld); len(asked) != 3 || len(done) != 3 {
		t.Fatalf("audit: %d intents, %d outcomes", len(asked), len(done))
	}
	recs, err := f.store.FetchOutbox(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rec := range recs {
		if rec.Event.Type == wallet.EventTopupReversed {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d reversal events", n)
	}
	if held, _ := f.wallet.FindHeld(ctx, "P002"); len(held) != 0 {
		t.Fatalf("still listed as held: %+v", held)
	}

	r := f.run(t)
	w := row(t, r, "P002")
	if r.Mismatches != 0 || w.Verdict != smp.ReconExplained || len(w.Detail.Held) != 1 || w.Detail.Held[0].Status != string(smp.TopupReversed) ||
		w.Detail.Held[0].RefundNo == "" || w.DiffVND != -700_000 || w.ExpectedDiffVND != -700_000 {
		t.Fatalf("reversed top-up in the reconciliation: %+v", w)
	}
}
