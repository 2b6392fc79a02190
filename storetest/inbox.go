package storetest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"smp"
)

var inboxTests = []Test{
	{"Inbox/InsertInboxEvent/OK", testInsertInbox},
	{"Inbox/InsertInboxEvent/DuplicateReturnsExisting", testInsertInboxDuplicate},
	{"Inbox/FindInboxEvent/ErrNotFound", testFindInboxNotFound},
	{"Inbox/InboxEventForUpdate", testInboxForUpdate},
	{"Inbox/DueInboxEvents", testDueInbox},
	{"Inbox/DueInboxEvents/ErrInvalid", testDueInboxInvalid},
	{"Inbox/FindInboxEvents", testFindInboxEvents},
	{"Inbox/FindInboxEvents/Limit", testFindInboxEventsLimit},
}

func inboxEvent(id string, received, next time.Time) *smp.InboxEvent {
	return &smp.InboxEvent{EventID: id, Provider: "inside", EventType: smp.InsidePaymentSucceeded, OrderID: "o1", AmountVND: 12_345_678_901,
		OccurredAt: received.Add(-time.Second), BodyHash: strings.Repeat("a", 64), Body: `{"event_id":"` + id + `","note":"đã trả"}`,
		Status: smp.InboxReceived, ReceivedAt: received, NextAttemptAt: next}
}

func insertInbox(t *testing.T, s Store, es ...*smp.InboxEvent) {
	t.Helper()
	for _, e := range es {
		if _, inserted, err := s.InsertInboxEvent(ctx, e); err != nil || !inserted {
			t.Fatalf("insert %s: inserted %v, %v", e.EventID, inserted, err)
		}
	}
}

func testInsertInbox(t *testing.T, s Store) {
	e := inboxEvent("e1", T0, T0)
	existing, inserted, err := s.InsertInboxEvent(ctx, e)
	if err != nil || !inserted || existing != nil {
		t.Fatalf("first insert: %+v %v %v", existing, inserted, err)
	}
	got, err := s.FindInboxEvent(ctx, "e1")
	must(t, err)
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("event\n got %+v\nwant %+v", got, e)
	}
}

// testInsertInboxDuplicate: a second event with the same id writes
// nothing and returns the stored one.
func testInsertInboxDuplicate(t *testing.T, s Store) {
	first := inboxEvent("e1", T0, T0)
	insertInbox(t, s, first)
	dup := inboxEvent("e1", T0.Add(time.Minute), T0.Add(time.Minute))
	dup.BodyHash, dup.AmountVND = strings.Repeat("b", 64), 1
	existing, inserted, err := s.InsertInboxEvent(ctx, dup)
	if err != nil || inserted {
		t.Fatalf("second insert: inserted %v, %v", inserted, err)
	}
	if !reflect.DeepEqual(existing, first) {
		t.Fatalf("existing\n got %+v\nwant %+v", existing, first)
	}
	if got, _ := s.FindInboxEvent(ctx, "e1"); got.BodyHash != first.BodyHash || got.AmountVND != first.AmountVND {
		t.Fatalf("the duplicate overwrote the event: %+v", got)
	}
}

func testFindInboxNotFound(t *testing.T, s Store) {
	_, err := s.FindInboxEvent(ctx, "nope")
	wantCode(t, "FindInboxEvent(unknown)", err, smp.ENOTFOUND)
}

// testInboxForUpdate: read, update under the lock; ENOTFOUND for unknown.
func testInboxForUpdate(t *testing.T, s Store) {
	insertInbox(t, s, inboxEvent("e1", T0, T0))
	done := T0.Add(time.Minute)
	inTx(t, s, func(tx smp.Tx) error {
		e, err := tx.InboxEventForUpdate(ctx, "e1")
		if err != nil {
			return err
		}
		e.Status, e.Attempts, e.LastError, e.NextAttemptAt, e.ProcessedAt = smp.InboxProcessed, 2, "order not found: o1", T0.Add(time.Hour), &done
		return tx.UpdateInboxEvent(ctx, e)
	})
	got, err := s.FindInboxEvent(ctx, "e1")
	must(t, err)
	if got.Status != smp.InboxProcessed || got.Attempts != 2 || got.LastError != "order not found: o1" || !got.NextAttemptAt.Equal(T0.Add(time.Hour)) ||
		got.ProcessedAt == nil || !got.ProcessedAt.Equal(done) {
		t.Fatalf("updated event: %+v", got)
	}
	err = s.InTx(ctx, func(tx smp.Tx) error { _, err := tx.InboxEventForUpdate(ctx, "nope"); return err })
	wantCode(t, "InboxEventForUpdate(unknown)", err, smp.ENOTFOUND)
}

// testDueInbox: received events whose next attempt is due, soonest first,
// at most limit; processed and DLQ events are never due.
func testDueInbox(t *testing.T, s Store) {
	a, b, c, d := inboxEvent("a", T0, T0.Add(2*time.Second)), inboxEvent("b", T0, T0.Add(time.Second)), inboxEvent("c", T0, T0.Add(time.Hour)), inboxEvent("d", T0, T0)
	d.Status = smp.InboxDLQ
	insertInbox(t, s, a, b, c, d)
	due, err := s.DueInboxEvents(ctx, T0.Add(time.Minute), 10)
	must(t, err)
	byID := func(es []*smp.InboxEvent) []string {
		return ids(es, func(e *smp.InboxEvent) string { return e.EventID })
	}
	if !sameStrings(byID(due), []string{"b", "a"}) {
		t.Fatalf("due = %v, want [b a]", byID(due))
	}
	if due, _ := s.DueInboxEvents(ctx, T0.Add(2*time.Second), 1); !sameStrings(byID(due), []string{"b"}) {
		t.Fatalf("limit 1: %v", byID(due))
	}
}

func testDueInboxInvalid(t *testing.T, s Store) {
	for _, limit := range []int{0, -1} {
		_, err := s.DueInboxEvents(ctx, T0, limit)
		wantCode(t, fmt.Sprintf("DueInboxEvents(limit %d)", limit), err, smp.EINVALID)
	}
}

// testFindInboxEvents: filters by status, type and order, newest received
// first; CountInboxEvents per status.
func testFindInboxEvents(t *testing.T, s Store) {
	a, b, c := inboxEvent("a", T0, T0), inboxEvent("b", T0.Add(time.Second), T0), inboxEvent("c", T0.Add(2*time.Second), T0)
	b.Status, b.EventType = smp.InboxDLQ, smp.InsidePaymentFailed
	c.OrderID = "o2"
	insertInbox(t, s, a, b, c)
	byID := func(es []*smp.InboxEvent) []string {
		return ids(es, func(e *smp.InboxEvent) string { return e.EventID })
	}
	for _, tc := range []struct {
		f    smp.InboxFilter
		want []string
	}{
		{smp.InboxFilter{}, []string{"c", "b", "a"}},
		{smp.InboxFilter{Status: smp.InboxReceived}, []string{"c", "a"}},
		{smp.InboxFilter{Status: smp.InboxDLQ, EventType: smp.InsidePaymentFailed}, []string{"b"}},
		{smp.InboxFilter{EventType: smp.InsidePaymentSucceeded, OrderID: "o1"}, []string{"a"}},
		{smp.InboxFilter{Status: smp.InboxProcessed}, []string{}},
	} {
		got, err := s.FindInboxEvents(ctx, tc.f)
		must(t, err)
		if !sameStrings(byID(got), tc.want) {
			t.Errorf("FindInboxEvents(%+v) = %v, want %v", tc.f, byID(got), tc.want)
		}
	}
	counts, err := s.CountInboxEvents(ctx)
	must(t, err)
	if want := map[smp.InboxStatus]int64{smp.InboxReceived: 2, smp.InboxDLQ: 1}; !reflect.DeepEqual(counts, want) {
		t.Fatalf("counts %v, want %v", counts, want)
	}
}

// testFindInboxEventsLimit: 0, negative or above 10000 means 100.
func testFindInboxEventsLimit(t *testing.T, s Store) {
	for i := range 102 {
		insertInbox(t, s, inboxEvent(fmt.Sprintf("e%03d", i), T0.Add(time.Duration(i)*time.Second), T0))
	}
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {10001, 100}, {2, 2}, {101, 101}, {10000, 102}} {
		if got, err := s.FindInboxEvents(ctx, smp.InboxFilter{Limit: tc.limit}); err != nil || len(got) != tc.want {
			t.Errorf("FindInboxEvents(Limit %d): %d events (%v), want %d", tc.limit, len(got), err, tc.want)
		}
	}
}
