package storetest

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"smp"
)

var tokenTests = []Test{
	{"Tokens/FindTokenOwner/OK", testTokens},
	{"Tokens/FindTokenOwner/ErrUnauthorized", testTokenUnknown},
}

const hashA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const hashB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

// testTokens: owners by hash; admin tokens carry their role; a second
// PutToken of a hash replaces its owner.
func testTokens(t *testing.T, s Store) {
	must(t, s.PutToken(ctx, hashA, "customer", "C1", ""))
	must(t, s.PutToken(ctx, hashB, "admin", "alice", smp.RoleOps))
	for hash, want := range map[string][3]string{hashA: {"customer", "C1", ""}, hashB: {"admin", "alice", string(smp.RoleOps)}} {
		kind, owner, role, err := s.FindTokenOwner(ctx, hash)
		must(t, err)
		if got := [3]string{kind, owner, string(role)}; got != want {
			t.Errorf("owner of %s… = %v, want %v", hash[:4], got, want)
		}
	}
	must(t, s.PutToken(ctx, hashA, "technician", "T1", ""))
	if kind, owner, _, err := s.FindTokenOwner(ctx, hashA); err != nil || kind != "technician" || owner != "T1" {
		t.Fatalf("after replace: %s %s %v", kind, owner, err)
	}
}

func testTokenUnknown(t *testing.T, s Store) {
	must(t, s.PutToken(ctx, hashA, "customer", "C1", ""))
	_, _, _, err := s.FindTokenOwner(ctx, hashB)
	wantCode(t, "FindTokenOwner(unknown)", err, smp.EUNAUTHORIZED)
}

var flagTests = []Test{
	{"Flags/Defaults", testFlagDefaults},
	{"Flags/SetFlag/ReturnsPrevious", testSetFlag},
	{"Flags/SetFlag/ErrNotFound", testSetFlagUnknown},
	{"Flags/FindFlagChanges", testFlagChanges},
}

func testFlagDefaults(t *testing.T, s Store) {
	got, err := s.FindFlags(ctx)
	must(t, err)
	if fmt.Sprint(got) != fmt.Sprint(smp.DefaultFlags) {
		t.Fatalf("flags of an empty store = %v, want the defaults %v", got, smp.DefaultFlags)
	}
	if ch, err := s.FindFlagChanges(ctx); err != nil || len(ch) != 0 {
		t.Fatalf("flag changes of an empty store = %v %v, want none", ch, err)
	}
}

// testFlagChanges: when and by whom each set flag was last set.
func testFlagChanges(t *testing.T, s Store) {
	setFlag(t, s, smp.FlagEnableAutoDispatch, false)
	ch, err := s.FindFlagChanges(ctx)
	must(t, err)
	if c := ch[smp.FlagEnableAutoDispatch]; len(ch) != 1 || c.UpdatedBy != "alice" || !c.UpdatedAt.Equal(T0) {
		t.Fatalf("flag changes %v, want %s set by alice at %s", ch, smp.FlagEnableAutoDispatch, T0)
	}
}

func setFlag(t *testing.T, s Store, name string, v bool) bool {
	t.Helper()
	var before bool
	inTx(t, s, func(tx smp.Tx) (err error) {
		before, err = tx.SetFlag(ctx, name, v, "alice", T0)
		return err
	})
	return before
}

// testSetFlag: the previous value is the default until set, then the last
// value set; FindFlags sees every change.
func testSetFlag(t *testing.T, s Store) {
	for i, step := range []struct {
		name        string
		set, before bool
	}{
		{smp.FlagEnableAutoDispatch, false, true},
		{smp.FlagEnableAutoDispatch, false, false},
		{smp.FlagEnableAutoDispatch, true, false},
		{smp.FlagIntegrationBypassCircuit, true, false},
	} {
		if before := setFlag(t, s, step.name, step.set); before != step.before {
			t.Fatalf("step %d: SetFlag(%s, %v) returned %v, want %v", i, step.name, step.set, before, step.before)
		}
		if got, _ := s.FindFlags(ctx); got[step.name] != step.set {
			t.Fatalf("step %d: FindFlags()[%s] = %v, want %v", i, step.name, got[step.name], step.set)
		}
	}
}

func testSetFlagUnknown(t *testing.T, s Store) {
	err := s.InTx(ctx, func(tx smp.Tx) error { _, err := tx.SetFlag(ctx, "NOPE", true, "alice", T0); return err })
	wantCode(t, "SetFlag(unknown)", err, smp.ENOTFOUND)
	if got, _ := s.FindFlags(ctx); len(got) != len(smp.DefaultFlags) {
		t.Fatalf("flags after an unknown set: %v", got)
	}
}

var auditTests = []Test{
	{"Audit/FindAudit", testAudit},
	{"Audit/FindAudit/Limit", testAuditLimit},
}

func addAudit(t *testing.T, s Store, entries ...smp.AuditEntry) {
	t.Helper()
	inTx(t, s, func(tx smp.Tx) error {
		for _, a := range entries {
			if err := tx.AddAudit(ctx, a); err != nil {
				return err
			}
		}
		return nil
	})
}

// testAudit: entries come back as written, IDs assigned, newest first,
// filtered by target and action.
func testAudit(t *testing.T, s Store) {
	a1 := smp.AuditEntry{At: T0, Actor: "alice", Role: smp.RoleOps, Action: "order.03_assigned", Target: "order:o1", Before: `{"stage":"02"}`, After: `{"stage":"03"}`, Reason: "VIP"}
	a2 := smp.AuditEntry{At: T0.Add(time.Second), Actor: "bob", Role: smp.RoleAdmin, Action: "flag.set", Target: "flag:ENABLE_AUTO_DISPATCH", Reason: "INC-001"}
	a3 := smp.AuditEntry{At: T0.Add(2 * time.Second), Actor: "alice", Role: smp.RoleOps, Action: "order.cancel", Target: "order:o1", Reason: "khách hủy"}
	addAudit(t, s, a1, a2)
	addAudit(t, s, a3)
	all, err := s.FindAudit(ctx, smp.AuditFilter{})
	must(t, err)
	if len(all) != 3 || all[0].Action != "order.cancel" || all[2].Action != "order.03_assigned" {
		t.Fatalf("all entries, newest first: %+v", all)
	}
	if all[0].ID <= all[1].ID || all[1].ID <= all[2].ID || all[2].ID <= 0 {
		t.Fatalf("ids not assigned in order: %d %d %d", all[0].ID, all[1].ID, all[2].ID)
	}
	got := all[2]
	a1.ID = got.ID
	if got != a1 {
		t.Fatalf("entry\n got %+v\nwant %+v", got, a1)
	}
	if byTarget, _ := s.FindAudit(ctx, smp.AuditFilter{Target: "order:o1"}); len(byTarget) != 2 {
		t.Fatalf("by target: %+v", byTarget)
	}
	if byAction, _ := s.FindAudit(ctx, smp.AuditFilter{Action: "flag.set"}); len(byAction) != 1 || byAction[0].Actor != "bob" {
		t.Fatalf("by action: %+v", byAction)
	}
	if both, _ := s.FindAudit(ctx, smp.AuditFilter{Target: "order:o1", Action: "flag.set"}); len(both) != 0 {
		t.Fatalf("by target and action: %+v", both)
	}
}

// testAuditLimit: 0, negative or above 1000 means 100.
func testAuditLimit(t *testing.T, s Store) {
	var es []smp.AuditEntry
	for i := range 102 {
		es = append(es, smp.AuditEntry{At: T0, Actor: "alice", Role: smp.RoleOps, Action: "x", Target: fmt.Sprint("t", i)})
	}
	addAudit(t, s, es...)
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-5, 100}, {1001, 100}, {3, 3}, {101, 101}, {1000, 102}} {
		if got, err := s.FindAudit(ctx, smp.AuditFilter{Limit: tc.limit}); err != nil || len(got) != tc.want {
			t.Errorf("FindAudit(Limit %d): %d entries (%v), want %d", tc.limit, len(got), err, tc.want)
		}
	}
}

var processedTests = []Test{
	{"Processed/MarkProcessed", testMarkProcessed},
	{"Processed/RolledBack", testMarkProcessedRolledBack},
	{"Processed/Among", testProcessedAmong},
}

func markProcessed(t *testing.T, s Store, group, id string) bool {
	t.Helper()
	var first bool
	inTx(t, s, func(tx smp.Tx) (err error) {
		first, err = tx.MarkProcessed(ctx, group, id, T0)
		return err
	})
	return first
}

// testMarkProcessed: first is true once per group and event; groups are
// independent; IsProcessed sees it.
func testMarkProcessed(t *testing.T, s Store) {
	if done, err := s.IsProcessed(ctx, "order-svc", "e1"); err != nil || done {
		t.Fatalf("fresh store: %v %v", done, err)
	}
	for i, step := range []struct {
		group, id string
		first     bool
	}{
		{"order-svc", "e1", true},
		{"order-svc", "e1", false},
		{"dispatch-engine", "e1", true},
		{"order-svc", "e2", true},
		{"dispatch-engine", "e1", false},
	} {
		if first := markProcessed(t, s, step.group, step.id); first != step.first {
			t.Fatalf("step %d: MarkProcessed(%s, %s) first = %v, want %v", i, step.group, step.id, first, step.first)
		}
	}
	for _, c := range []struct {
		group, id string
		want      bool
	}{{"order-svc", "e1", true}, {"dispatch-engine", "e1", true}, {"dispatch-engine", "e2", false}, {"payments", "e1", false}} {
		if done, err := s.IsProcessed(ctx, c.group, c.id); err != nil || done != c.want {
			t.Errorf("IsProcessed(%s, %s) = %v %v, want %v", c.group, c.id, done, err, c.want)
		}
	}
}

// testProcessedAmong: the batch read answers, for one group, exactly the
// recorded events among those asked (other groups' records do not count,
// ids not asked are not answered); no ids, an empty set.
func testProcessedAmong(t *testing.T, s Store) {
	if got, err := s.ProcessedAmong(ctx, "order-svc", nil); err != nil || len(got) != 0 {
		t.Fatalf("no ids: %v %v, want an empty set", got, err)
	}
	markProcessed(t, s, "order-svc", "e1")
	markProcessed(t, s, "order-svc", "e3")
	markProcessed(t, s, "order-svc", "e9")
	markProcessed(t, s, "dispatch-engine", "e2")
	got, err := s.ProcessedAmong(ctx, "order-svc", []string{"e1", "e2", "e3", "e4", "e1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"e1": true, "e3": true}; !maps.Equal(got, want) {
		t.Fatalf("ProcessedAmong(order-svc) = %v, want %v", got, want)
	}
	if got, err := s.ProcessedAmong(ctx, "payments", []string{"e1", "e2"}); err != nil || len(got) != 0 {
		t.Fatalf("ProcessedAmong(payments) = %v %v, want none", got, err)
	}
}

// testMarkProcessedRolledBack: a mark in a failed transaction is not kept,
// so the event is applied again on redelivery.
func testMarkProcessedRolledBack(t *testing.T, s Store) {
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if _, err := tx.MarkProcessed(ctx, "order-svc", "e1", T0); err != nil {
			return err
		}
		return errBoom
	})
	if err == nil {
		t.Fatal("the failing transaction committed")
	}
	if done, _ := s.IsProcessed(ctx, "order-svc", "e1"); done {
		t.Fatal("a rolled-back mark is visible")
	}
	if !markProcessed(t, s, "order-svc", "e1") {
		t.Fatal("after a rollback the first mark must report first")
	}
}
