package storetest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"smp"
)

var walletTests = []Test{
	{"Wallet/PostWallet/OK", testPostWallet},
	{"Wallet/PostWallet/Idempotent", testPostWalletIdempotent},
	{"Wallet/PostWallet/ErrConflict", testPostWalletConflict},
	{"Wallet/PostWallet/ErrNotFound", testPostWalletNotFound},
	{"Wallet/PostWallet/ErrInvalid", testPostWalletInvalid},
	{"Wallet/PostWallet/Reversal", testPostWalletReversal},
	{"Wallet/PostWallet/Rollback", testPostWalletRollback},
	{"Wallet/PostWallet/Lengths", testPostWalletLengths},
	{"Wallet/SetWalletFloor/OK", testSetWalletFloor},
	{"Wallet/SetWalletFloor/ErrNotFound", testSetWalletFloorNotFound},
	{"Wallet/FindWalletAccount/ErrNotFound", testFindWalletAccountNotFound},
	{"Wallet/FindWalletEntry/ErrNotFound", testFindWalletEntryNotFound},
	{"Wallet/FindWalletEntries", testFindWalletEntries},
	{"Wallet/ScanWalletLedger", testScanWalletLedger},
	{"Wallet/Topups/OK", testTopups},
	{"Wallet/Topups/ErrConflict", testTopupConflict},
	{"Wallet/Topups/ErrNotFound", testTopupNotFound},
	{"Wallet/AddInboxEvent", testAddInboxEvent},
	{"Concurrent/PostWallet/LinearChain", testConcurrentPostWallet},
}

func topup(ref, partner string, vnd int64, at time.Time) smp.Posting {
	return smp.Posting{ID: smp.GatewayPostingID(smp.GatewayVNPay, ref), Type: smp.WalletTopup, PartnerID: partner, AmountVND: vnd,
		Gateway: smp.GatewayVNPay, GatewayRef: ref, Actor: "system:vnpay-ipn", At: at}
}

func commission(order, partner string, vnd int64, at time.Time) smp.Posting {
	return smp.Posting{ID: "commission:" + order, Type: smp.WalletCommission, PartnerID: partner, AmountVND: -vnd, OrderID: order,
		Actor: "system:wallet", At: at}
}

func post(t testing.TB, s Store, p smp.Posting) (*smp.WalletEntry, bool) {
	t.Helper()
	var e *smp.WalletEntry
	var first bool
	inTx(t, s, func(tx smp.Tx) (err error) {
		e, first, err = tx.PostWallet(ctx, p)
		return err
	})
	return e, first
}

func postErr(s Store, p smp.Posting) error {
	return s.InTx(ctx, func(tx smp.Tx) error {
		_, _, err := tx.PostWallet(ctx, p)
		return err
	})
}

func balances(t testing.TB, s Store) map[string]int64 {
	t.Helper()
	as, err := s.FindWalletAccounts(ctx)
	must(t, err)
	out := map[string]int64{}
	for _, a := range as {
		out[a.ID] = a.BalanceVND
	}
	return out
}

// checkLedger reads the whole ledger and fails unless the chain links
// (seq 1, 2, … each hash over the previous), every hash is the entry's,
// every balance is the sum of its entries, and the balances sum to zero.
func checkLedger(t testing.TB, s Store) []*smp.WalletEntry {
	t.Helper()
	var accounts []*smp.WalletAccount
	var entries []*smp.WalletEntry
	must(t, s.ScanWalletLedger(ctx, func(as []*smp.WalletAccount) error { accounts = as; return nil },
		func(e *smp.WalletEntry) error { entries = append(entries, e); return nil }))
	prev, sums := smp.GenesisHash, map[string]int64{}
	for i, e := range entries {
		if e.Seq != int64(i+1) || e.PrevHash != prev || e.Hash != e.ComputeHash() {
			t.Fatalf("entry %d (%s): seq %d prev %.8s hash %.8s, want seq %d prev %.8s hash %.8s", i, e.ID, e.Seq, e.PrevHash, e.Hash,
				i+1, prev, e.ComputeHash())
		}
		if e.AmountVND <= 0 || e.DebitAccount == e.CreditAccount {
			t.Fatalf("entry %s does not balance: %+v", e.ID, e)
		}
		prev = e.Hash
		sums[e.DebitAccount] -= e.AmountVND
		sums[e.CreditAccount] += e.AmountVND
	}
	var total int64
	for _, a := range accounts {
		if a.BalanceVND != sums[a.ID] {
			t.Fatalf("account %s: balance %d, its entries sum to %d", a.ID, a.BalanceVND, sums[a.ID])
		}
		total += a.BalanceVND
		delete(sums, a.ID)
	}
	for id, sum := range sums {
		t.Fatalf("entries move account %s (%d VND) that has no balance", id, sum)
	}
	if total != 0 {
		t.Fatalf("balances sum to %d, want 0", total)
	}
	return entries
}

// testPostWallet: a topup credits the wallet from the gateway's clearing
// account, a commission debits it to platform revenue, adjustments move it
// either way; every entry balances, balances follow, the chain links.
func testPostWallet(t *testing.T, s Store) {
	seed(t, s)
	e, first := post(t, s, topup("TXN1", "P1", 500_000, T0))
	if !first || e.Seq != 1 || e.PrevHash != smp.GenesisHash || e.DebitAccount != "gateway:vnpay" || e.CreditAccount != "partner:P1" ||
		e.AmountVND != 500_000 || e.BalanceAfterVND != 500_000 || e.ID != "vnpay:TXN1" || e.Hash != e.ComputeHash() {
		t.Fatalf("topup entry %+v (first %v)", e, first)
	}
	e, _ = post(t, s, commission("o1", "P1", 35_000, T0.Add(time.Second)))
	if e.DebitAccount != "partner:P1" || e.CreditAccount != smp.AccountCommission || e.AmountVND != 35_000 || e.BalanceAfterVND != 465_000 ||
		e.OrderID != "o1" || e.WalletEffect() != -35_000 {
		t.Fatalf("commission entry %+v", e)
	}
	exp := int64(-20_000)
	e, _ = post(t, s, smp.Posting{ID: "adj-1", Type: smp.WalletAdjustment, PartnerID: "P1", AmountVND: -20_000, Reason: "double top-up credited",
		ExpectedDiffVND: &exp, Actor: "finance:lan", At: T0.Add(2 * time.Second)})
	if e.DebitAccount != "partner:P1" || e.CreditAccount != smp.AccountAdjustments || e.BalanceAfterVND != 445_000 ||
		e.ExpectedDiffVND == nil || *e.ExpectedDiffVND != -20_000 || e.Reason != "double top-up credited" || e.Actor != "finance:lan" {
		t.Fatalf("adjustment entry %+v", e)
	}
	post(t, s, smp.Posting{ID: "adj-2", Type: smp.WalletAdjustment, PartnerID: "P1", AmountVND: 5_000, Reason: "goodwill", Actor: "finance:lan", At: T0})
	post(t, s, smp.Posting{ID: "refund-1", Type: smp.WalletRefund, PartnerID: "P1", AmountVND: -100_000, Gateway: smp.GatewayVNPay,
		GatewayRef: "R1", Actor: "finance:lan", At: T0})
	want := map[string]int64{"partner:P1": 350_000, "gateway:vnpay": -400_000, smp.AccountCommission: 35_000, smp.AccountAdjustments: 15_000}
	if got := balances(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("balances %v, want %v", got, want)
	}
	entries := checkLedger(t, s)
	if len(entries) != 5 {
		t.Fatalf("%d entries, want 5", len(entries))
	}
	got, err := s.FindWalletEntry(ctx, "adj-1")
	must(t, err)
	if got.Hash != entries[2].Hash || !got.CreatedAt.Equal(T0.Add(2*time.Second)) {
		t.Fatalf("FindWalletEntry(adj-1) = %+v", got)
	}
	a, err := s.FindWalletAccount(ctx, "partner:P1")
	must(t, err)
	if a.PartnerID != "P1" || a.BalanceVND != 350_000 || a.LastSeq != 5 || a.State() != smp.WalletActive || a.FloorVND != smp.NoFloor {
		t.Fatalf("partner account %+v", a)
	}
}

// testPostWalletIdempotent: the same id and body again (another actor,
// later) returns the first entry and writes nothing.
func testPostWalletIdempotent(t *testing.T, s Store) {
	seed(t, s)
	first, _ := post(t, s, topup("TXN1", "P1", 500_000, T0))
	again := topup("TXN1", "P1", 500_000, T0.Add(time.Hour))
	again.Actor = "ops:replay"
	e, isFirst := post(t, s, again)
	if isFirst || e.Seq != first.Seq || e.Hash != first.Hash || !e.CreatedAt.Equal(T0) {
		t.Fatalf("duplicate posting returned %+v first=%v, want the first entry", e, isFirst)
	}
	if got := balances(t, s)["partner:P1"]; got != 500_000 {
		t.Fatalf("balance %d after a duplicate, want 500000", got)
	}
	if n := len(checkLedger(t, s)); n != 1 {
		t.Fatalf("%d entries after a duplicate, want 1", n)
	}
}

// testPostWalletConflict: the same id with another body is ECONFLICT and
// writes nothing.
func testPostWalletConflict(t *testing.T, s Store) {
	seed(t, s)
	post(t, s, topup("TXN1", "P1", 500_000, T0))
	for name, p := range map[string]smp.Posting{
		"amount":  topup("TXN1", "P1", 5_000_000, T0),
		"partner": func() smp.Posting { p := topup("TXN1", "P2", 500_000, T0); return p }(),
		"type":    {ID: "vnpay:TXN1", Type: smp.WalletAdjustment, PartnerID: "P1", AmountVND: 500_000, Reason: "x", Actor: "a", At: T0},
	} {
		wantCode(t, "PostWallet(same id, other "+name+")", postErr(s, p), smp.ECONFLICT)
	}
	if n := len(checkLedger(t, s)); n != 1 {
		t.Fatalf("%d entries after conflicts, want 1", n)
	}
}

func testPostWalletNotFound(t *testing.T, s Store) {
	seed(t, s)
	wantCode(t, "PostWallet(unknown partner)", postErr(s, topup("TXN1", "P404", 1000, T0)), smp.ENOTFOUND)
	wantCode(t, "PostWallet(reversal of unknown)", postErr(s, smp.Posting{ID: "rev-1", Type: smp.WalletReversal, PartnerID: "P1",
		AmountVND: 1000, Reverses: "nope", Reason: "r", Actor: "a", At: T0}), smp.ENOTFOUND)
	if n := len(checkLedger(t, s)); n != 0 {
		t.Fatalf("%d entries, want 0", n)
	}
}

// testPostWalletInvalid: postings that cannot balance or say too little.
func testPostWalletInvalid(t *testing.T, s Store) {
	seed(t, s)
	post(t, s, commission("o1", "P1", 1000, T0))
	ok := topup("TXN1", "P1", 1000, T0)
	for name, fn := range map[string]func(p *smp.Posting){
		"no id":               func(p *smp.Posting) { p.ID = "" },
		"zero":                func(p *smp.Posting) { p.AmountVND = 0 },
		"negative topup":      func(p *smp.Posting) { p.AmountVND = -1000 },
		"huge":                func(p *smp.Posting) { p.AmountVND = smp.MaxPostingVND + 1 },
		"no gateway":          func(p *smp.Posting) { p.Gateway = "" },
		"no ref":              func(p *smp.Posting) { p.GatewayRef = "" },
		"no partner":          func(p *smp.Posting) { p.PartnerID = "" },
		"no time":             func(p *smp.Posting) { p.At = time.Time{} },
		"unknown type":        func(p *smp.Posting) { p.Type = "gift" },
		"positive commission": func(p *smp.Posting) { p.Type = smp.WalletCommission },
		"positive refund":     func(p *smp.Posting) { p.Type = smp.WalletRefund },
		"adjustment, no reason": func(p *smp.Posting) {
			p.Type, p.Gateway, p.GatewayRef = smp.WalletAdjustment, "", ""
		},
		"expected diff on a topup": func(p *smp.Posting) { v := int64(1); p.ExpectedDiffVND = &v },
		"partial reversal": func(p *smp.Posting) {
			*p = smp.Posting{ID: "rev", Type: smp.WalletReversal, PartnerID: "P1", AmountVND: 500, Reverses: "commission:o1", Reason: "r", Actor: "a", At: T0}
		},
		"reversal, wrong sign": func(p *smp.Posting) {
			*p = smp.Posting{ID: "rev", Type: smp.WalletReversal, PartnerID: "P1", AmountVND: -1000, Reverses: "commission:o1", Reason: "r", Actor: "a", At: T0}
		},
	} {
		p := ok
		fn(&p)
		wantCode(t, "PostWallet("+name+")", postErr(s, p), smp.EINVALID)
	}
	if n := len(checkLedger(t, s)); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
}

// testPostWalletReversal: a reversal undoes an entry in full with its
// accounts swapped; a second reversal of the same entry is ECONFLICT.
func testPostWalletReversal(t *testing.T, s Store) {
	seed(t, s)
	post(t, s, topup("TXN1", "P1", 500_000, T0))
	post(t, s, commission("o1", "P1", 35_000, T0))
	e, _ := post(t, s, smp.Posting{ID: "rev:commission:o1", Type: smp.WalletReversal, PartnerID: "P1", AmountVND: 35_000,
		Reverses: "commission:o1", Reason: "order refunded", Actor: "system:wallet", At: T0})
	if e.DebitAccount != smp.AccountCommission || e.CreditAccount != "partner:P1" || e.AmountVND != 35_000 || e.BalanceAfterVND != 500_000 {
		t.Fatalf("reversal entry %+v", e)
	}
	err := postErr(s, smp.Posting{ID: "rev2", Type: smp.WalletReversal, PartnerID: "P1", AmountVND: 35_000,
		Reverses: "commission:o1", Reason: "again", Actor: "a", At: T0})
	wantCode(t, "PostWallet(second reversal)", err, smp.ECONFLICT)
	if got := balances(t, s); got[smp.AccountCommission] != 0 || got["partner:P1"] != 500_000 {
		t.Fatalf("balances after reversal %v", got)
	}
	checkLedger(t, s)
}

// testPostWalletRollback: a posting in a transaction that fails leaves no
// entry, no balance and the chain where it was.
func testPostWalletRollback(t *testing.T, s Store) {
	seed(t, s)
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if _, _, err := tx.PostWallet(ctx, topup("TXN1", "P1", 500_000, T0)); err != nil {
			return err
		}
		return errBoom
	})
	if err != errBoom {
		t.Fatalf("InTx = %v, want errBoom", err)
	}
	_, err = s.FindWalletEntry(ctx, "vnpay:TXN1")
	wantCode(t, "FindWalletEntry(rolled back)", err, smp.ENOTFOUND)
	_, err = s.FindWalletAccount(ctx, "partner:P1")
	wantCode(t, "FindWalletAccount(rolled back)", err, smp.ENOTFOUND)
	if e, _ := post(t, s, topup("TXN2", "P1", 1000, T0)); e.Seq != 1 || e.PrevHash != smp.GenesisHash {
		t.Fatalf("first entry after a rollback: seq %d prev %s", e.Seq, e.PrevHash)
	}
}

// testPostWalletLengths: each field at its size is kept whole; one
// character more is EINVALID.
func testPostWalletLengths(t *testing.T, s Store) {
	seed(t, s)
	for _, f := range []struct {
		name string
		max  int
		set  func(p *smp.Posting, v string)
	}{
		{"ID", 128, func(p *smp.Posting, v string) { p.ID = v }},
		{"GatewayRef", 100, func(p *smp.Posting, v string) { p.GatewayRef = v }},
		{"OrderID", 64, func(p *smp.Posting, v string) { p.OrderID = v }},
		{"Reason", 1000, func(p *smp.Posting, v string) { p.Reason = v }},
		{"Actor", 200, func(p *smp.Posting, v string) { p.Actor = v }},
	} {
		p := topup("T-"+f.name, "P1", 1000, T0)
		f.set(&p, long(f.max+1))
		wantCode(t, "PostWallet("+f.name+" too long)", postErr(s, p), smp.EINVALID)
		p = topup("T-"+f.name, "P1", 1000, T0)
		f.set(&p, long(f.max))
		e, _ := post(t, s, p)
		if got, err := s.FindWalletEntry(ctx, e.ID); err != nil || got.Hash != e.Hash || got.Hash != got.ComputeHash() {
			t.Fatalf("%s at its size: read back %+v, %v", f.name, got, err)
		}
	}
	checkLedger(t, s)
}

func testSetWalletFloor(t *testing.T, s Store) {
	seed(t, s)
	var a *smp.WalletAccount
	inTx(t, s, func(tx smp.Tx) (err error) {
		a, err = tx.SetWalletFloor(ctx, "P1", 50_000, T0)
		return err
	})
	if a.ID != "partner:P1" || a.FloorVND != 50_000 || a.BalanceVND != 0 || a.State() != smp.WalletBelowFloor {
		t.Fatalf("floor set: %+v state %s", a, a.State())
	}
	if below, err := s.FindWalletsBelowFloor(ctx); err != nil || !sameStrings(below, []string{"P1"}) {
		t.Fatalf("FindWalletsBelowFloor = %v, %v; want [P1]", below, err)
	}
	post(t, s, topup("TXN1", "P1", 50_000, T0))
	if below, err := s.FindWalletsBelowFloor(ctx); err != nil || len(below) != 0 {
		t.Fatalf("FindWalletsBelowFloor after the top-up = %v, %v", below, err)
	}
	a, err := s.FindWalletAccount(ctx, "partner:P1")
	must(t, err)
	if a.BalanceVND != 50_000 || a.FloorVND != 50_000 || a.State() != smp.WalletActive {
		t.Fatalf("after topup: %+v state %s", a, a.State())
	}
	checkLedger(t, s)
}

func testSetWalletFloorNotFound(t *testing.T, s Store) {
	err := s.InTx(ctx, func(tx smp.Tx) error {
		_, err := tx.SetWalletFloor(ctx, "P404", 1, T0)
		return err
	})
	wantCode(t, "SetWalletFloor(unknown partner)", err, smp.ENOTFOUND)
}

func testFindWalletAccountNotFound(t *testing.T, s Store) {
	_, err := s.FindWalletAccount(ctx, "partner:nope")
	wantCode(t, "FindWalletAccount(unknown)", err, smp.ENOTFOUND)
}

func testFindWalletEntryNotFound(t *testing.T, s Store) {
	_, err := s.FindWalletEntry(ctx, "nope")
	wantCode(t, "FindWalletEntry(unknown)", err, smp.ENOTFOUND)
}

// testFindWalletEntries: by partner, type, time window and after a seq,
// in chain order, limited.
func testFindWalletEntries(t *testing.T, s Store) {
	seed(t, s)
	must(t, s.UpsertPartner(ctx, &smp.Partner{ID: "P2", Name: "Partner 2"}))
	post(t, s, topup("A", "P1", 1000, T0))
	post(t, s, topup("B", "P2", 2000, T0.Add(time.Hour)))
	post(t, s, commission("o1", "P1", 100, T0.Add(2*time.Hour)))
	post(t, s, smp.Posting{ID: "adj", Type: smp.WalletAdjustment, PartnerID: "P2", AmountVND: 7, Reason: "r", Actor: "a", At: T0.Add(3 * time.Hour)})
	for _, tc := range []struct {
		f    smp.WalletEntryFilter
		want []string
	}{
		{smp.WalletEntryFilter{}, []string{"vnpay:A", "vnpay:B", "commission:o1", "adj"}},
		{smp.WalletEntryFilter{PartnerID: "P1"}, []string{"vnpay:A", "commission:o1"}},
		{smp.WalletEntryFilter{Type: smp.WalletAdjustment}, []string{"adj"}},
		{smp.WalletEntryFilter{From: T0.Add(time.Hour), To: T0.Add(3 * time.Hour)}, []string{"vnpay:B", "commission:o1"}},
		{smp.WalletEntryFilter{AfterSeq: 2, Limit: 1}, []string{"commission:o1"}},
	} {
		got, err := s.FindWalletEntries(ctx, tc.f)
		must(t, err)
		if ids := ids(got, func(e *smp.WalletEntry) string { return e.ID }); !sameStrings(ids, tc.want) {
			t.Errorf("FindWalletEntries(%+v) = %v, want %v", tc.f, ids, tc.want)
		}
	}
}

// testScanWalletLedger: accounts then entries in chain order; a
// callback's error stops the scan and comes back unchanged.
func testScanWalletLedger(t *testing.T, s Store) {
	seed(t, s)
	for i := range 5 {
		post(t, s, topup(fmt.Sprint("T", i), "P1", int64(1000*(i+1)), T0))
	}
	if n := len(checkLedger(t, s)); n != 5 {
		t.Fatalf("%d entries, want 5", n)
	}
	n := 0
	err := s.ScanWalletLedger(ctx, func([]*smp.WalletAccount) error { return nil }, func(*smp.WalletEntry) error {
		if n++; n == 2 {
			return errBoom
		}
		return nil
	})
	if err != errBoom || n != 2 {
		t.Fatalf("scan stopped with %v after %d entries, want errBoom after 2", err, n)
	}
}

// testConcurrentPostWallet: postings from many transactions at once (some
// with the same id) keep one linear chain: seqs 1..n without gaps, each
// entry's hash over the previous, each id once, balances equal to their
// entries.
func testConcurrentPostWallet(t *testing.T, s Store) {
	seed(t, s)
	must(t, s.UpsertPartner(ctx, &smp.Partner{ID: "P2", Name: "Partner 2"}))
	const each = 5
	var mu sync.Mutex
	firsts := map[string]int{}
	errs := race(func(i int) error {
		for j := range each {
			partner := []string{"P1", "P2"}[(i+j)%2]
			// Racers i and i+racers/2 post the same ids: one of them is first.
			// Top-ups 10 minutes apart stay under the velocity guard rail
			// (smp.VelocityMaxTopups per smp.VelocityWindow).
			k := i%(racers/2)*each + j
			p := topup(fmt.Sprintf("R%d-%d", i%(racers/2), j), "P1", int64(1000+j), T0.Add(time.Duration(k)*smp.VelocityWindow))
			if j%2 == 1 {
				p = commission(fmt.Sprintf("o%d-%d", i, j), partner, 10, T0)
			}
			var first bool
			err := s.InTx(ctx, func(tx smp.Tx) (err error) {
				_, first, err = tx.PostWallet(ctx, p)
				return err
			})
			if err != nil {
				return err
			}
			if first {
				mu.Lock()
				firsts[p.ID]++
				mu.Unlock()
			}
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	entries := checkLedger(t, s)
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.ID] || firsts[e.ID] != 1 {
			t.Fatalf("posting %s: in the chain twice (%v) or first %d times", e.ID, seen[e.ID], firsts[e.ID])
		}
		seen[e.ID] = true
	}
	topups, commissions := (racers/2)*((each+1)/2), racers*(each/2)
	if len(entries) != topups+commissions {
		t.Fatalf("%d entries, want %d", len(entries), topups+commissions)
	}
	if len(firsts) != len(entries) {
		t.Fatalf("%d postings were first, %d entries", len(firsts), len(entries))
	}
}

func newTopup(id, ref string, at time.Time) *smp.Topup {
	return &smp.Topup{ID: id, PartnerID: "P1", Gateway: smp.GatewayVNPay, TxnRef: ref, AmountVND: 200_000, Status: smp.TopupPending,
		ClientIP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11)", DeviceID: "dev-42", CreatedAt: at, UpdatedAt: at}
}

// testTopups: inserted, read by gateway reference, locked and updated,
// listed by partner, status and time.
func testTopups(t *testing.T, s Store) {
	seed(t, s)
	inTx(t, s, func(tx smp.Tx) error {
		if err := tx.InsertTopup(ctx, newTopup("tp1", "R1", T0)); err != nil {
			return err
		}
		return tx.InsertTopup(ctx, newTopup("tp2", "R2", T0.Add(time.Hour)))
	})
	got, err := s.FindTopup(ctx, smp.GatewayVNPay, "R1")
	must(t, err)
	if got.ID != "tp1" || got.AmountVND != 200_000 || got.Status != smp.TopupPending || got.ClientIP != "203.0.113.7" || !got.CreatedAt.Equal(T0) ||
		got.UserAgent != "Mozilla/5.0 (X11)" || got.DeviceID != "dev-42" {
		t.Fatalf("FindTopup = %+v", got)
	}
	inTx(t, s, func(tx smp.Tx) error {
		tp, err := tx.TopupForUpdate(ctx, smp.GatewayVNPay, "R1")
		if err != nil {
			return err
		}
		tp.Status, tp.TransactionNo, tp.BankCode, tp.PayDate, tp.PostingID, tp.UpdatedAt = smp.TopupConfirmed, "14422574", "NCB", T0, "vnpay:R1", T0.Add(time.Minute)
		if err := tx.UpdateTopup(ctx, tp); err != nil {
			return err
		}
		return tx.UpdateTopup(ctx, tp) // the same values again is no error
	})
	got, _ = s.FindTopup(ctx, smp.GatewayVNPay, "R1")
	if got.Status != smp.TopupConfirmed || got.TransactionNo != "14422574" || got.BankCode != "NCB" || !got.PayDate.Equal(T0) || got.PostingID != "vnpay:R1" {
		t.Fatalf("after update %+v", got)
	}
	for _, tc := range []struct {
		f    smp.TopupFilter
		want []string
	}{
		{smp.TopupFilter{}, []string{"tp1", "tp2"}},
		{smp.TopupFilter{Status: smp.TopupPending}, []string{"tp2"}},
		{smp.TopupFilter{From: T0.Add(time.Minute)}, []string{"tp2"}},
		{smp.TopupFilter{PartnerID: "P2"}, []string{}},
	} {
		ts, err := s.FindTopups(ctx, tc.f)
		must(t, err)
		if got := ids(ts, func(t *smp.Topup) string { return t.ID }); !sameStrings(got, tc.want) {
			t.Errorf("FindTopups(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func testTopupConflict(t *testing.T, s Store) {
	seed(t, s)
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertTopup(ctx, newTopup("tp1", "R1", T0)) })
	for name, tp := range map[string]*smp.Topup{"same id": newTopup("tp1", "R9", T0), "same ref": newTopup("tp9", "R1", T0)} {
		err := s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertTopup(ctx, tp) })
		wantCode(t, "InsertTopup("+name+")", err, smp.ECONFLICT)
	}
}

func testTopupNotFound(t *testing.T, s Store) {
	seed(t, s)
	_, err := s.FindTopup(ctx, smp.GatewayVNPay, "nope")
	wantCode(t, "FindTopup(unknown)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error { _, err := tx.TopupForUpdate(ctx, smp.GatewayVNPay, "nope"); return err })
	wantCode(t, "TopupForUpdate(unknown)", err, smp.ENOTFOUND)
	err = s.InTx(ctx, func(tx smp.Tx) error { return tx.UpdateTopup(ctx, newTopup("nope", "nope", T0)) })
	wantCode(t, "UpdateTopup(unknown)", err, smp.ENOTFOUND)
	tp := newTopup("tp1", "R1", T0)
	tp.PartnerID = "P404"
	err = s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertTopup(ctx, tp) })
	wantCode(t, "InsertTopup(unknown partner)", err, smp.ENOTFOUND)
}

// testAddInboxEvent: an event stored in a transaction (already processed)
// commits with it, rolls back with it, and a second insert returns the
// stored one.
func testAddInboxEvent(t *testing.T, s Store) {
	at := T0
	ev := func() *smp.InboxEvent {
		return &smp.InboxEvent{EventID: "vnpay:R1:abc", Provider: "vnpay", EventType: "vnpay.ipn", OrderID: "R1", AmountVND: 1000, OccurredAt: T0,
			BodyHash: strings.Repeat("a", 64), Body: "vnp_TxnRef=R1", Status: smp.InboxProcessed, ReceivedAt: T0, NextAttemptAt: T0, ProcessedAt: &at}
	}
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if _, _, err := tx.AddInboxEvent(ctx, ev()); err != nil {
			return err
		}
		return errBoom
	})
	if err != errBoom {
		t.Fatal(err)
	}
	_, err = s.FindInboxEvent(ctx, "vnpay:R1:abc")
	wantCode(t, "FindInboxEvent(rolled back)", err, smp.ENOTFOUND)
	inTx(t, s, func(tx smp.Tx) error {
		_, inserted, err := tx.AddInboxEvent(ctx, ev())
		if err == nil && !inserted {
			t.Error("first AddInboxEvent: not inserted")
		}
		return err
	})
	inTx(t, s, func(tx smp.Tx) error {
		existing, inserted, err := tx.AddInboxEvent(ctx, ev())
		if err == nil && (inserted || existing == nil || existing.Status != smp.InboxProcessed || existing.ProcessedAt == nil) {
			t.Errorf("second AddInboxEvent: inserted %v, existing %+v", inserted, existing)
		}
		return err
	})
	due, err := s.DueInboxEvents(ctx, T0.Add(time.Hour), 10)
	must(t, err)
	if len(due) != 0 {
		t.Fatalf("a processed event is due: %+v", due)
	}
}
