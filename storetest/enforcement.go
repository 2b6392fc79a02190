package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"smp"
)

var enforcementTests = []Test{
	{"Enforcement/SetWalletControl/OK", testSetWalletControl},
	{"Enforcement/SetWalletControl/ErrNotFound", testSetWalletControlNotFound},
	{"Enforcement/FindWalletControl/ErrNotFound", testFindWalletControlNotFound},
	{"Enforcement/PostWallet/Frozen", testPostWalletFrozen},
	{"Enforcement/PostWallet/SoftBlockCap", testPostWalletSoftBlock},
	{"Enforcement/PostWallet/VelocityRail", testPostWalletVelocity},
	{"Enforcement/ComplianceReports/OK", testComplianceReports},
	{"Enforcement/ComplianceReports/ErrConflict", testComplianceReportConflict},
	{"Enforcement/PartnerNotes/OK", testPartnerNotes},
	{"Enforcement/PartnerNotes/ErrNotFound", testPartnerNotesNotFound},
	{"Enforcement/PartnerNotes/Lengths", testPartnerNotesLengths},
	{"Enforcement/IPAllowlist/OK", testIPAllowlist},
	{"Enforcement/IPAllowlist/ErrNotFound", testIPAllowlistNotFound},
	{"Enforcement/Rollback", testEnforcementRollback},
	{"Enforcement/LockWalletControl", testLockWalletControl},
}

func setControl(t testing.TB, s Store, c smp.WalletControl) (*smp.WalletControl, *smp.WalletControl) {
	t.Helper()
	var prev *smp.WalletControl
	inTx(t, s, func(tx smp.Tx) (err error) {
		prev, err = tx.SetWalletControl(ctx, &c)
		return err
	})
	return &c, prev
}

// testSetWalletControl: a control records the chain's head at its commit
// and returns the previous one; FindWalletControl(s) read it back.
func testSetWalletControl(t *testing.T, s Store) {
	seed(t, s)
	post(t, s, topup("TXN1", "P1", 100_000, T0))
	c, prev := setControl(t, s, smp.WalletControl{PartnerID: "P1", State: smp.WalletFrozen, Reason: "fraud_alert", Actor: "sec", Since: T0, UpdatedAt: T0})
	if prev != nil || c.ChainSeq != 1 {
		t.Fatalf("first control: prev %+v, chain seq %d", prev, c.ChainSeq)
	}
	_, prev = setControl(t, s, smp.WalletControl{PartnerID: "P1", State: smp.WalletSoftBlocked, Reason: "inconclusive", Actor: "sec",
		Since: T0.Add(time.Hour), Until: T0.Add(49 * time.Hour), UpdatedAt: T0.Add(time.Hour)})
	if prev == nil || prev.State != smp.WalletFrozen || prev.Reason != "fraud_alert" || !prev.Since.Equal(T0) || prev.ChainSeq != 1 {
		t.Fatalf("previous control %+v", prev)
	}
	got, err := s.FindWalletControl(ctx, "P1")
	must(t, err)
	if got.State != smp.WalletSoftBlocked || !got.Until.Equal(T0.Add(49*time.Hour)) || got.Actor != "sec" ||
		got.Effective(T0.Add(48*time.Hour)) != smp.WalletSoftBlocked || got.Effective(T0.Add(49*time.Hour)) != smp.WalletOpen {
		t.Fatalf("control %+v", got)
	}
	all, err := s.FindWalletControls(ctx)
	must(t, err)
	if len(all) != 1 || all[0].PartnerID != "P1" {
		t.Fatalf("controls %+v", all)
	}
}

func testSetWalletControlNotFound(t *testing.T, s Store) {
	err := s.InTx(ctx, func(tx smp.Tx) error {
		_, err := tx.SetWalletControl(ctx, &smp.WalletControl{PartnerID: "P404", State: smp.WalletFrozen, Actor: "sec", Since: T0, UpdatedAt: T0})
		return err
	})
	wantCode(t, "SetWalletControl(P404)", err, smp.ENOTFOUND)
}

func testFindWalletControlNotFound(t *testing.T, s Store) {
	seed(t, s)
	_, err := s.FindWalletControl(ctx, "P1")
	wantCode(t, "FindWalletControl(P1)", err, smp.ENOTFOUND)
}

func wantRefused(t testing.TB, what string, err error, rule string) {
	t.Helper()
	var r *smp.WalletRefused
	if !errors.As(err, &r) || r.Rule != rule || smp.ErrorCode(err) != smp.EFORBIDDEN {
		t.Fatalf("%s: %v, want a refusal by %s (EFORBIDDEN)", what, err, rule)
	}
}

// testPostWalletFrozen: a frozen wallet refuses top-ups and debits but
// takes commissions and credits; a refusal writes nothing and leaves the
// transaction usable.
func testPostWalletFrozen(t *testing.T, s Store) {
	seed(t, s)
	post(t, s, topup("TXN1", "P1", 100_000, T0))
	setControl(t, s, smp.WalletControl{PartnerID: "P1", State: smp.WalletFrozen, Reason: "fraud", Actor: "sec", Since: T0, UpdatedAt: T0})
	wantRefused(t, "topup", postErr(s, topup("TXN2", "P1", 100_000, T0)), smp.RuleFrozen)
	wantRefused(t, "refund", postErr(s, smp.Posting{ID: "r1", Type: smp.WalletRefund, PartnerID: "P1", AmountVND: -1, Gateway: "vnpay",
		GatewayRef: "R1", Actor: "fin", At: T0}), smp.RuleFrozen)
	post(t, s, commission("o1", "P1", 5_000, T0))
	post(t, s, smp.Posting{ID: "adj-up", Type: smp.WalletAdjustment, PartnerID: "P1", AmountVND: 1_000, Reason: "goodwill", Actor: "fin", At: T0})
	// The duplicate of an entry made before the freeze is still a duplicate.
	if _, first := post(t, s, topup("TXN1", "P1", 100_000, T0)); first {
		t.Fatal("a duplicate posted again")
	}
	inTx(t, s, func(tx smp.Tx) error {
		if _, _, err := tx.PostWallet(ctx, topup("TXN3", "P1", 100_000, T0)); err == nil {
			t.Fatal("a frozen top-up posted")
		}
		_, _, err := tx.PostWallet(ctx, commission("o2", "P1", 1_000, T0))
		return err
	})
	if got := balances(t, s)["partner:P1"]; got != 100_000-5_000+1_000-1_000 {
		t.Fatalf("balance %d", got)
	}
	checkLedger(t, s)
}

// testPostWalletSoftBlock: the guarded postings since the block (at most
// 24 h back) plus the new one may not pass the cap.
func testPostWalletSoftBlock(t *testing.T, s Store) {
	seed(t, s)
	post(t, s, topup("TXN0", "P1", 5_000_000, T0.Add(-time.Hour))) // before the block: not counted
	setControl(t, s, smp.WalletControl{PartnerID: "P1", State: smp.WalletSoftBlocked, Reason: "inconclusive", Actor: "sec", Since: T0,
		Until: T0.Add(smp.SoftBlockLapse), UpdatedAt: T0})
	post(t, s, topup("TXN1", "P1", 700_000, T0))
	wantRefused(t, "over the cap", postErr(s, smp.Posting{ID: "a1", Type: smp.WalletAdjustment, PartnerID: "P1", AmountVND: -300_001,
		Reason: "fee", Actor: "fin", At: T0.Add(time.Minute)}), smp.RuleSoftBlockCap)
	post(t, s, smp.Posting{ID: "a2", Type: smp.WalletAdjustment, PartnerID: "P1", AmountVND: -300_000, Reason: "fee", Actor: "fin", At: T0.Add(time.Minute)})
	post(t, s, commission("o1", "P1", 2_000_000, T0.Add(time.Minute)))
	post(t, s, topup("TXN2", "P1", 1_000_000, T0.Add(24*time.Hour+2*time.Minute))) // the window moved past both
	wantRefused(t, "over again", postErr(s, topup("TXN3", "P1", 10_000, T0.Add(24*time.Hour+3*time.Minute))), smp.RuleSoftBlockCap)
	post(t, s, topup("TXN4", "P1", 3_000_000, T0.Add(smp.SoftBlockLapse))) // lapsed
}

// testPostWalletVelocity: the 11th top-up within 10 minutes is refused,
// with no control at all; 10 minutes later it posts.
func testPostWalletVelocity(t *testing.T, s Store) {
	seed(t, s)
	for i := range smp.VelocityMaxTopups {
		post(t, s, topup("V"+string(rune('a'+i)), "P1", 10_000, T0.Add(time.Duration(i)*time.Second)))
	}
	wantRefused(t, "11th", postErr(s, topup("Vz", "P1", 10_000, T0.Add(time.Minute))), smp.RuleVelocityCount)
	post(t, s, topup("Vz", "P1", 10_000, T0.Add(smp.VelocityWindow)))
	wantRefused(t, "amount", postErr(s, topup("big", "P1", smp.VelocityMaxTopupVNDPerDay, T0.Add(smp.VelocityWindow+time.Hour))), smp.RuleVelocityAmount)
}

func testComplianceReports(t *testing.T, s Store) {
	seed(t, s)
	inTx(t, s, func(tx smp.Tx) error {
		for i, at := range []time.Time{T0, T0.Add(time.Hour)} {
			if err := tx.InsertComplianceReport(ctx, &smp.ComplianceReport{ID: "large_value:vnpay:T" + string(rune('0'+i)), Kind: smp.ReportLargeValue,
				PartnerID: "P1", PostingID: "vnpay:T" + string(rune('0'+i)), AmountVND: 450_000_000, ThresholdVND: 400_000_000, Status: smp.ReportOpen,
				CreatedAt: at}); err != nil {
				return err
			}
		}
		return nil
	})
	rs, err := s.FindComplianceReports(ctx, smp.ComplianceFilter{PartnerID: "P1", From: T0.Add(time.Minute)})
	must(t, err)
	if len(rs) != 1 || rs[0].PostingID != "vnpay:T1" || rs[0].AmountVND != 450_000_000 || !rs[0].CreatedAt.Equal(T0.Add(time.Hour)) {
		t.Fatalf("reports %+v", rs)
	}
	if rs, _ := s.FindComplianceReports(ctx, smp.ComplianceFilter{}); len(rs) != 2 {
		t.Fatalf("all reports %+v", rs)
	}
}

func testComplianceReportConflict(t *testing.T, s Store) {
	r := &smp.ComplianceReport{ID: "large_value:x", Kind: smp.ReportLargeValue, PartnerID: "P1", PostingID: "x", AmountVND: 1, Status: "open", CreatedAt: T0}
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertComplianceReport(ctx, r) })
	wantCode(t, "the same report again", s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertComplianceReport(ctx, r) }), smp.ECONFLICT)
}

func testPartnerNotes(t *testing.T, s Store) {
	seed(t, s)
	inTx(t, s, func(tx smp.Tx) error { return tx.AppendPartnerNote(ctx, "P1", "owner", "first note", T0) })
	inTx(t, s, func(tx smp.Tx) error {
		return tx.AppendPartnerNote(ctx, "P1", "owner", "ghi chú thứ hai", T0.Add(time.Hour))
	})
	us, err := s.FindPartnerAdminUsers(ctx, "P1")
	must(t, err)
	if len(us) != 1 || us[0].Notes != "first note\nghi chú thứ hai\n" || !us[0].CreatedAt.Equal(T0) || !us[0].UpdatedAt.Equal(T0.Add(time.Hour)) {
		t.Fatalf("admin users %+v", us)
	}
}

func testPartnerNotesNotFound(t *testing.T, s Store) {
	wantCode(t, "a note for P404", s.InTx(ctx, func(tx smp.Tx) error { return tx.AppendPartnerNote(ctx, "P404", "owner", "x", T0) }), smp.ENOTFOUND)
}

func testPartnerNotesLengths(t *testing.T, s Store) {
	seed(t, s)
	inTx(t, s, func(tx smp.Tx) error { return tx.AppendPartnerNote(ctx, "P1", "owner", strings.Repeat("n", 60000), T0) })
	wantCode(t, "notes over 64 KiB", s.InTx(ctx, func(tx smp.Tx) error {
		return tx.AppendPartnerNote(ctx, "P1", "owner", strings.Repeat("n", 6000), T0)
	}), smp.EINVALID)
	us, _ := s.FindPartnerAdminUsers(ctx, "P1")
	if len(us) != 1 || len(us[0].Notes) != 60001 {
		t.Fatalf("notes changed by a refused append: %d bytes", len(us[0].Notes))
	}
}

func testIPAllowlist(t *testing.T, s Store) {
	seed(t, s)
	if l, err := s.FindPartnerIPAllowlist(ctx, "P1"); err != nil || len(l) != 0 {
		t.Fatalf("no allowlist: %v %v", l, err)
	}
	var prev []string
	inTx(t, s, func(tx smp.Tx) (err error) {
		prev, err = tx.SetPartnerIPAllowlist(ctx, "P1", []string{"203.0.113.0/24", "198.51.100.7"}, "sec", T0)
		return err
	})
	if len(prev) != 0 {
		t.Fatalf("prev %v", prev)
	}
	l, err := s.FindPartnerIPAllowlist(ctx, "P1")
	must(t, err)
	if !slices.Equal(l, []string{"203.0.113.0/24", "198.51.100.7"}) {
		t.Fatalf("allowlist %v", l)
	}
	inTx(t, s, func(tx smp.Tx) (err error) {
		prev, err = tx.SetPartnerIPAllowlist(ctx, "P1", nil, "sec", T0)
		return err
	})
	if len(prev) != 2 {
		t.Fatalf("prev %v", prev)
	}
	if l, _ := s.FindPartnerIPAllowlist(ctx, "P1"); len(l) != 0 {
		t.Fatalf("removed allowlist %v", l)
	}
}

func testIPAllowlistNotFound(t *testing.T, s Store) {
	wantCode(t, "allowlist of P404", s.InTx(ctx, func(tx smp.Tx) error {
		_, err := tx.SetPartnerIPAllowlist(ctx, "P404", []string{"10.0.0.1"}, "sec", T0)
		return err
	}), smp.ENOTFOUND)
}

// testEnforcementRollback: a failed transaction keeps none of its
// control, note, report or allowlist.
func testEnforcementRollback(t *testing.T, s Store) {
	seed(t, s)
	boom := errors.New("boom")
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if _, err := tx.SetWalletControl(ctx, &smp.WalletControl{PartnerID: "P1", State: smp.WalletFrozen, Actor: "sec", Since: T0, UpdatedAt: T0}); err != nil {
			return err
		}
		if err := tx.AppendPartnerNote(ctx, "P1", "owner", "x", T0); err != nil {
			return err
		}
		if err := tx.InsertComplianceReport(ctx, &smp.ComplianceReport{ID: "r", Kind: "large_value", PartnerID: "P1", PostingID: "p", Status: "open", CreatedAt: T0}); err != nil {
			return err
		}
		if _, err := tx.SetPartnerIPAllowlist(ctx, "P1", []string{"10.0.0.1"}, "sec", T0); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx: %v", err)
	}
	if _, err := s.FindWalletControl(ctx, "P1"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("control kept: %v", err)
	}
	us, _ := s.FindPartnerAdminUsers(ctx, "P1")
	rs, _ := s.FindComplianceReports(ctx, smp.ComplianceFilter{})
	l, _ := s.FindPartnerIPAllowlist(ctx, "P1")
	if len(us)+len(rs)+len(l) != 0 {
		t.Fatalf("kept: %v %v %v", us, rs, l)
	}
}

// testLockWalletControl: the locking read answers the control in force
// (nil when none) and writes nothing; ENOTFOUND for an unknown partner.
func testLockWalletControl(t *testing.T, s Store) {
	seed(t, s)
	lock := func(partnerID string) (c *smp.WalletControl, err error) {
		err = s.InTx(ctx, func(tx smp.Tx) error {
			c, err = tx.LockWalletControl(ctx, partnerID)
			return err
		})
		return c, err
	}
	if c, err := lock("P1"); err != nil || c != nil {
		t.Fatalf("LockWalletControl(P1) with no control: %+v, %v", c, err)
	}
	if _, err := s.FindWalletControl(ctx, "P1"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("the locking read wrote a control: %v", err)
	}
	setControl(t, s, smp.WalletControl{PartnerID: "P1", State: smp.WalletFrozen, Reason: "fraud_alert", Actor: "sec", Since: T0, UpdatedAt: T0})
	if c, err := lock("P1"); err != nil || c == nil || c.State != smp.WalletFrozen || c.Reason != "fraud_alert" || !c.Since.Equal(T0) {
		t.Fatalf("LockWalletControl(P1) after a freeze: %+v, %v", c, err)
	}
	_, err := lock("P404")
	wantCode(t, "LockWalletControl(P404)", err, smp.ENOTFOUND)
}
