package storetest

import (
	"fmt"
	"strings"
	"testing"

	"smp"
)

var limitTests = []Test{
	{"Limits/Lengths", testLengths},
	{"Limits/PriceVND", testPriceVND},
}

// long returns n characters of a two-byte letter: sizes count characters,
// as MySQL's utf8mb4 VARCHAR does.
func long(n int) string { return strings.Repeat("đ", n) }

// testLengths: a value at its column's size is kept whole; one character
// more is EINVALID and nothing is written, on every backend (SQLite
// ignores VARCHAR sizes, MySQL fails in strict mode and truncates
// otherwise).
func testLengths(t *testing.T, s Store) {
	seed(t, s)
	type write struct {
		name string
		fn   func(n int) error // writes a value of n characters where the size is max
		max  int
	}
	tx := func(fn func(tx smp.Tx) error) error { return s.InTx(ctx, fn) }
	writes := []write{
		{"InsertOrder.ID", func(n int) error { return tx(func(tx smp.Tx) error { return tx.InsertOrder(ctx, order(long(n), T0)) }) }, 64},
		{"InsertOrder.Address", func(n int) error {
			o := order("addr"+long(n%7), T0)
			o.Address = long(n)
			return tx(func(tx smp.Tx) error { return tx.InsertOrder(ctx, o) })
		}, 500},
		{"AddTransition.Reason", func(n int) error {
			return tx(func(tx smp.Tx) error {
				return tx.AddTransition(ctx, smp.Transition{OrderID: "o1", To: smp.StageCreated, At: T0, Actor: "a", Reason: long(n)})
			})
		}, 1000},
		{"InsertPartner.Contact", func(n int) error {
			return tx(func(tx smp.Tx) error { return tx.InsertPartner(ctx, &smp.Partner{Name: "p", Contact: long(n)}) })
		}, 200},
		{"InsertPartner.Country", func(n int) error {
			return tx(func(tx smp.Tx) error {
				return tx.InsertPartner(ctx, &smp.Partner{Name: "p", Country: strings.Repeat("X", n)})
			})
		}, 2},
		{"InsertService.Skill", func(n int) error {
			return tx(func(tx smp.Tx) error {
				return tx.InsertService(ctx, &smp.Service{Code: fmt.Sprint("s", n), Name: "s", Skill: long(n)})
			})
		}, 64},
		{"InsertCustomer.Phone", func(n int) error {
			return tx(func(tx smp.Tx) error {
				return tx.InsertCustomer(ctx, &smp.Customer{Name: "c", Phone: strings.Repeat("9", n)})
			})
		}, 16},
		{"AddEvent.ID", func(n int) error {
			return tx(func(tx smp.Tx) error { return tx.AddEvent(ctx, event(long(n), "o1", T0)) })
		}, 64},
		{"AddAudit.Target", func(n int) error {
			return tx(func(tx smp.Tx) error {
				return tx.AddAudit(ctx, smp.AuditEntry{At: T0, Actor: "alice", Role: smp.RoleOps, Action: "x", Target: long(n)})
			})
		}, 200},
		{"AddAudit.Reason", func(n int) error {
			return tx(func(tx smp.Tx) error {
				return tx.AddAudit(ctx, smp.AuditEntry{At: T0, Actor: "alice", Role: smp.RoleOps, Action: "x", Target: "t", Reason: long(n)})
			})
		}, 1000},
		{"SetComponentStatus.UpdatedBy", func(n int) error {
			return tx(func(tx smp.Tx) error {
				_, err := tx.SetComponentStatus(ctx, smp.ComponentStatus{Component: "dispatch", State: smp.StateDegraded, UpdatedBy: long(n), UpdatedAt: T0})
				return err
			})
		}, 128},
		{"MarkProcessed.EventID", func(n int) error {
			return tx(func(tx smp.Tx) error { _, err := tx.MarkProcessed(ctx, "order-svc", long(n), T0); return err })
		}, 64},
		{"InsertInboxEvent.EventID", func(n int) error { _, _, err := s.InsertInboxEvent(ctx, inboxEvent(long(n), T0, T0)); return err }, 64},
		{"UpsertAlert.Name", func(n int) error {
			a := alert("fp", "firing", T0)
			a.Name = long(n)
			return tx(func(tx smp.Tx) error { _, err := tx.UpsertAlert(ctx, a); return err })
		}, smp.MaxAlertName},
		{"UpsertAlert.Fingerprint", func(n int) error {
			return tx(func(tx smp.Tx) error { _, err := tx.UpsertAlert(ctx, alert(long(n), "firing", T0)); return err })
		}, smp.MaxAlertFingerprint},
		{"UpsertAlert.Severity", func(n int) error {
			a := alert("fp2", "firing", T0)
			a.Severity = long(n)
			return tx(func(tx smp.Tx) error { _, err := tx.UpsertAlert(ctx, a); return err })
		}, smp.MaxAlertSeverity},
		{"UpsertCustomer.Name", func(n int) error { return s.UpsertCustomer(ctx, &smp.Customer{ID: "C9", Name: long(n)}) }, 200},
		{"UpsertTechnician.Skills", func(n int) error {
			return s.UpsertTechnician(ctx, &smp.Technician{ID: "T9", PartnerID: "P1", Name: "x", City: "HCMC", Skills: []string{long(n)}})
		}, 500},
		{"PutToken.OwnerID", func(n int) error { return s.PutToken(ctx, hashA, "customer", long(n), "") }, 64},
		{"AddOffers.RankReason", func(n int) error {
			o := offer("inv"+long(n%5), "o1", "T1", 1, 1)
			o.RankReason = long(n)
			return s.AddOffers(ctx, []smp.OfferRecord{o})
		}, 500},
		{"AddDispatchWave.Note", func(n int) error {
			return s.AddDispatchWave(ctx, smp.DispatchWave{OrderID: "o1", Round: 1, Wave: n, StartedAt: T0, Note: long(n)})
		}, 500},
	}
	for _, w := range writes {
		if err := w.fn(w.max); err != nil {
			t.Errorf("%s of %d characters (the size): %v", w.name, w.max, err)
		}
		wantCodeE(t, w.name+" one character too long", w.fn(w.max+1), smp.EINVALID)
	}
	// Nothing of a rejected write is kept, and what was kept is whole.
	if _, err := s.FindOrderByID(ctx, long(65)); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Errorf("a rejected order was written: %v", err)
	}
	if o, err := s.FindOrderByID(ctx, long(64)); err != nil || o.ID != long(64) {
		t.Errorf("order of a 64-character id: %v", err)
	}
	if a, _ := s.FindAudit(ctx, smp.AuditFilter{Target: long(200)}); len(a) != 1 {
		t.Errorf("audit entries with a 200-character target: %d, want 1", len(a))
	}
	if n, _, _ := s.OutboxBacklog(ctx); n != 1 {
		t.Errorf("outbox holds %d events, want 1 (the rejected one not)", n)
	}
}

// wantCodeE is wantCode that records the failure and goes on.
func wantCodeE(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := smp.ErrorCode(err); got != code {
		t.Errorf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

// testPriceVND: a price must be positive, EINVALID otherwise, on every
// backend; any int64 above zero is kept.
func testPriceVND(t *testing.T, s Store) {
	seed(t, s)
	for _, p := range []int64{0, -1} {
		o := order("bad", T0)
		o.PriceVND = p
		wantCodeE(t, fmt.Sprintf("InsertOrder with a price of %d", p), s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertOrder(ctx, o) }), smp.EINVALID)
	}
	o := order("max", T0)
	o.PriceVND = 1<<63 - 1
	insertOrders(t, s, o)
	if got, _ := s.FindOrderByID(ctx, "max"); got.PriceVND != 1<<63-1 {
		t.Fatalf("price %d", got.PriceVND)
	}
}
