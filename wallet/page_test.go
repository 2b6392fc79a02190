package wallet_test

import (
	"testing"

	"smp"
)

// TestAllTopupsPages: every top-up is read past a page's end, in order,
// once each, even when they share one created_at (the fixture's clock is
// fixed): the cursor is (created_at, id). Ledger entries page by seq.
// Before paging, callers read one page of 10,000 and stopped there
// without saying so (reconciliation, the held list, replay, unfreeze,
// the fraud evidence bundle).
func TestAllTopupsPages(t *testing.T) {
	t.Parallel()
	f := newVNPay(t)
	var refs []string
	for i := 0; i < 5; i++ {
		refs = append(refs, f.topup(t, "P001", 100_000).TxnRef)
	}
	f.topup(t, "P002", 100_000)
	for _, page := range []int{1, 2, 5, 0} {
		ts, err := smp.AllTopups(ctx, f.store, smp.TopupFilter{PartnerID: "P001", Limit: page})
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		var got []string
		for _, tp := range ts {
			got = append(got, tp.TxnRef)
		}
		seen := map[string]bool{}
		for _, r := range got {
			seen[r] = true
		}
		if len(got) != len(refs) || len(seen) != len(refs) {
			t.Fatalf("page %d: got %v, want the 5 top-ups %v once each", page, got, refs)
		}
		for _, r := range refs {
			if !seen[r] {
				t.Fatalf("page %d: %s missing from %v", page, r, got)
			}
		}
	}
	one, err := f.store.FindTopups(ctx, smp.TopupFilter{PartnerID: "P001", Limit: 2})
	if err != nil || len(one) != 2 {
		t.Fatalf("first page: %v %v", one, err)
	}
	next, err := f.store.FindTopups(ctx, smp.TopupFilter{PartnerID: "P001", Limit: 2, After: one[1]})
	if err != nil || len(next) != 2 || next[0].ID == one[0].ID || next[0].ID == one[1].ID {
		t.Fatalf("the page after %s: %v %v", one[1].ID, next, err)
	}

	for i := 0; i < 5; i++ {
		f.post(t, topup("E"+string(rune('a'+i)), "P002", 50_000))
	}
	es, err := smp.AllWalletEntries(ctx, f.store, smp.WalletEntryFilter{PartnerID: "P002", Limit: 2})
	if err != nil || len(es) != 5 {
		t.Fatalf("AllWalletEntries = %d entries, %v; want 5", len(es), err)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Seq <= es[i-1].Seq {
			t.Fatalf("entries out of order: %d after %d", es[i].Seq, es[i-1].Seq)
		}
	}
}
