package storetest

import (
	"errors"
	"testing"

	"smp"
)

var txTests = []Test{
	{"Tx/CommitsTogether", testTxCommitsTogether},
	{"Tx/FailedRollsBackEverything", testTxFailedRollsBackEverything},
	{"Tx/ReturnsErrorUnchanged", testTxReturnsErrorUnchanged},
}

// writeAll does one write of every transactional interface.
func writeAll(t *testing.T, tx smp.Tx) error {
	t.Helper()
	o := order("o1", T0)
	for _, err := range []error{
		tx.InsertOrder(ctx, o),
		tx.AddTransition(ctx, smp.Transition{OrderID: "o1", From: "", To: smp.StageCreated, At: T0, Actor: "customer:C1", Reason: "created"}),
		tx.AddEvent(ctx, event("e1", "o1", T0)),
		tx.AddAudit(ctx, smp.AuditEntry{At: T0, Actor: "alice", Role: smp.RoleOps, Action: "order.03_assigned", Target: "order:o1", Reason: "VIP"}),
		tx.ClaimTechnician(ctx, "T1", "o1"),
	} {
		if err != nil {
			return err
		}
	}
	if _, err := tx.SetFlag(ctx, smp.FlagEnableAutoDispatch, false, "alice", T0); err != nil {
		return err
	}
	if _, err := tx.SetComponentStatus(ctx, smp.ComponentStatus{Component: "dispatch", State: smp.StateOutage, UpdatedBy: "alice", UpdatedAt: T0}); err != nil {
		return err
	}
	if _, err := tx.MarkProcessed(ctx, "order-svc", "e0", T0); err != nil {
		return err
	}
	e, err := tx.InboxEventForUpdate(ctx, "pay1")
	if err != nil {
		return err
	}
	e.Status, e.Attempts = smp.InboxProcessed, 1
	return tx.UpdateInboxEvent(ctx, e)
}

func seedInbox(t *testing.T, s Store) {
	t.Helper()
	if _, inserted, err := s.InsertInboxEvent(ctx, inboxEvent("pay1", T0, T0)); err != nil || !inserted {
		t.Fatalf("insert inbox event: %v %v", inserted, err)
	}
}

// testTxCommitsTogether: what a committed transaction wrote, through every
// interface, is visible after InTx returns.
func testTxCommitsTogether(t *testing.T, s Store) {
	seed(t, s)
	seedInbox(t, s)
	inTx(t, s, func(tx smp.Tx) error { return writeAll(t, tx) })
	if _, err := s.FindOrderByID(ctx, "o1"); err != nil {
		t.Fatalf("order: %v", err)
	}
	if ts, _ := s.FindTransitions(ctx, "o1"); len(ts) != 1 {
		t.Fatalf("transitions: %+v", ts)
	}
	if n, _, _ := s.OutboxBacklog(ctx); n != 1 {
		t.Fatalf("outbox backlog %d, want 1", n)
	}
	if a, _ := s.FindAudit(ctx, smp.AuditFilter{}); len(a) != 1 {
		t.Fatalf("audit: %+v", a)
	}
	if tech, _ := s.FindTechnicianByID(ctx, "T1"); tech.ActiveOrderID != "o1" {
		t.Fatalf("technician: %+v", tech)
	}
	if f, _ := s.FindFlags(ctx); f[smp.FlagEnableAutoDispatch] {
		t.Fatal("flag not set")
	}
	if cs, _ := s.FindComponentStatuses(ctx); len(cs) != 1 || cs[0].State != smp.StateOutage {
		t.Fatalf("statuses: %+v", cs)
	}
	if done, _ := s.IsProcessed(ctx, "order-svc", "e0"); !done {
		t.Fatal("processed not recorded")
	}
	if e, _ := s.FindInboxEvent(ctx, "pay1"); e.Status != smp.InboxProcessed {
		t.Fatalf("inbox event: %+v", e)
	}
}

// testTxFailedRollsBackEverything: when fn fails after writing through
// every transactional interface, none of it is visible.
func testTxFailedRollsBackEverything(t *testing.T, s Store) {
	seed(t, s)
	seedInbox(t, s)
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if err := writeAll(t, tx); err != nil {
			t.Errorf("a write failed: %v", err)
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want fn's error", err)
	}
	wantCode(t, "order after rollback", func() error { _, err := s.FindOrderByID(ctx, "o1"); return err }(), smp.ENOTFOUND)
	if ts, _ := s.FindTransitions(ctx, "o1"); len(ts) != 0 {
		t.Fatalf("rolled-back transitions: %+v", ts)
	}
	if n, _, _ := s.OutboxBacklog(ctx); n != 0 {
		t.Fatalf("rolled-back outbox events: %d", n)
	}
	if recs, _ := s.FetchOutbox(ctx, 10); len(recs) != 0 {
		t.Fatalf("rolled-back outbox events fetched: %+v", recs)
	}
	if a, _ := s.FindAudit(ctx, smp.AuditFilter{}); len(a) != 0 {
		t.Fatalf("rolled-back audit: %+v", a)
	}
	if tech, _ := s.FindTechnicianByID(ctx, "T1"); tech.ActiveOrderID != "" {
		t.Fatalf("rolled-back claim: %+v", tech)
	}
	if f, _ := s.FindFlags(ctx); !f[smp.FlagEnableAutoDispatch] {
		t.Fatal("rolled-back flag change visible")
	}
	if cs, _ := s.FindComponentStatuses(ctx); len(cs) != 0 {
		t.Fatalf("rolled-back status: %+v", cs)
	}
	if done, _ := s.IsProcessed(ctx, "order-svc", "e0"); done {
		t.Fatal("rolled-back MarkProcessed visible")
	}
	if e, _ := s.FindInboxEvent(ctx, "pay1"); e.Status != smp.InboxReceived || e.Attempts != 0 {
		t.Fatalf("rolled-back inbox update: %+v", e)
	}
	// The same writes commit afterwards: nothing of the failed attempt is left
	// behind (no duplicate key, no held technician).
	inTx(t, s, func(tx smp.Tx) error { return writeAll(t, tx) })
}

// testTxReturnsErrorUnchanged: a coded error from fn comes back with its code.
func testTxReturnsErrorUnchanged(t *testing.T, s Store) {
	seed(t, s)
	insertOrders(t, s, order("o1", T0))
	err := s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertOrder(ctx, order("o1", T0)) })
	wantCode(t, "duplicate insert through InTx", err, smp.ECONFLICT)
	err = s.InTx(ctx, func(tx smp.Tx) error { return smp.Errorf(smp.EFORBIDDEN, "no") })
	wantCode(t, "fn's own code", err, smp.EFORBIDDEN)
	if err := s.InTx(ctx, func(tx smp.Tx) error { return nil }); err != nil {
		t.Fatalf("empty transaction: %v", err)
	}
}
