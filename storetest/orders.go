package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"smp"
)

var orderTests = []Test{
	{"Orders/FindOrderByID/OK", testFindOrderByID},
	{"Orders/FindOrderByID/ErrNotFound", testFindOrderByIDNotFound},
	{"Orders/InsertOrder/ErrConflict", testInsertOrderConflict},
	{"Orders/InsertOrder/ErrForbidden", testInsertOrderInactiveCustomer},
	{"Orders/UpdateOrder/OK", testUpdateOrder},
	{"Orders/UpdateOrder/ErrNotFound", testUpdateOrderNotFound},
	{"Orders/OrderForUpdate/ErrNotFound", testOrderForUpdateNotFound},
	{"Orders/FindOrders/Filters", testFindOrdersFilters},
	{"Orders/FindOrders/Limit", testFindOrdersLimit},
	{"Orders/FindTransitions", testFindTransitions},
	{"Orders/Counts", testOrderCounts},
	{"Orders/FindDispatchable", testFindDispatchable},
	{"Orders/FindDispatchable/ErrInvalid", testFindDispatchableInvalid},
	{"Orders/CountPaymentOverdue", testCountPaymentOverdue},
}

// testFindOrderByID: every field comes back as written, times in UTC to
// the microsecond, money as int64 VND beyond 2^32.
func testFindOrderByID(t *testing.T, s Store) {
	seed(t, s)
	o := order("o1", T0)
	o.PriceVND = 12_345_678_901
	o.Lat, o.Lng = 10.762622, 106.660172
	o.Stage, o.PaymentStatus, o.TechnicianID = smp.StageAssigned, smp.PaymentPaid, "T1"
	o.StageChangedAt, o.DispatchNotBefore = T0.Add(time.Minute), T0.Add(2*time.Minute)
	insertOrders(t, s, o)
	got, err := s.FindOrderByID(ctx, "o1")
	must(t, err)
	if !reflect.DeepEqual(got, o) {
		t.Fatalf("order\n got %+v\nwant %+v", got, o)
	}
	if got.CreatedAt.Location() != time.UTC {
		t.Fatalf("times in %v, want UTC", got.CreatedAt.Location())
	}
}

func testFindOrderByIDNotFound(t *testing.T, s Store) {
	_, err := s.FindOrderByID(ctx, "nope")
	wantCode(t, "FindOrderByID(unknown)", err, smp.ENOTFOUND)
}

func testInsertOrderConflict(t *testing.T, s Store) {
	seed(t, s)
	insertOrders(t, s, order("o1", T0))
	err := s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertOrder(ctx, order("o1", T0.Add(time.Hour))) })
	wantCode(t, "InsertOrder(existing id)", err, smp.ECONFLICT)
	if got, _ := s.FindOrderByID(ctx, "o1"); !got.CreatedAt.Equal(T0) {
		t.Fatalf("the duplicate replaced the order: %+v", got)
	}
}

// testInsertOrderInactiveCustomer: an inactive customer's order is
// refused (EFORBIDDEN) and not written; an unknown customer's is written.
func testInsertOrderInactiveCustomer(t *testing.T, s Store) {
	seed(t, s)
	must(t, s.UpsertCustomer(ctx, &smp.Customer{ID: "C2", Name: "Gone", Status: smp.StatusInactive}))
	o := order("o1", T0)
	o.CustomerID = "C2"
	err := s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertOrder(ctx, o) })
	wantCode(t, "InsertOrder(inactive customer)", err, smp.EFORBIDDEN)
	if _, err := s.FindOrderByID(ctx, "o1"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("the refused order was written: %v", err)
	}
	o.CustomerID = "C-unknown"
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertOrder(ctx, o) })
	o2 := order("o2", T0) // the seed's active customer
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertOrder(ctx, o2) })
}

// testUpdateOrder: OrderForUpdate then UpdateOrder writes stage, payment
// status, technician and timestamps; an empty technician clears it.
func testUpdateOrder(t *testing.T, s Store) {
	seed(t, s)
	insertOrders(t, s, order("o1", T0))
	inTx(t, s, func(tx smp.Tx) error {
		o, err := tx.OrderForUpdate(ctx, "o1")
		if err != nil {
			return err
		}
		o.Stage, o.PaymentStatus, o.TechnicianID = smp.StageAssigned, smp.PaymentFailed, "T1"
		o.StageChangedAt, o.DispatchNotBefore = T0.Add(time.Second), T0.Add(time.Hour)
		return tx.UpdateOrder(ctx, o)
	})
	got, err := s.FindOrderByID(ctx, "o1")
	must(t, err)
	if got.Stage != smp.StageAssigned || got.PaymentStatus != smp.PaymentFailed || got.TechnicianID != "T1" ||
		!got.StageChangedAt.Equal(T0.Add(time.Second)) || !got.DispatchNotBefore.Equal(T0.Add(time.Hour)) {
		t.Fatalf("updated order: %+v", got)
	}
	inTx(t, s, func(tx smp.Tx) error {
		got.TechnicianID = ""
		return tx.UpdateOrder(ctx, got)
	})
	if got, _ := s.FindOrderByID(ctx, "o1"); got.TechnicianID != "" {
		t.Fatalf("technician not cleared: %+v", got)
	}
}

func testUpdateOrderNotFound(t *testing.T, s Store) {
	err := s.InTx(ctx, func(tx smp.Tx) error { return tx.UpdateOrder(ctx, order("nope", T0)) })
	wantCode(t, "UpdateOrder(unknown)", err, smp.ENOTFOUND)
}

func testOrderForUpdateNotFound(t *testing.T, s Store) {
	err := s.InTx(ctx, func(tx smp.Tx) error { _, err := tx.OrderForUpdate(ctx, "nope"); return err })
	wantCode(t, "OrderForUpdate(unknown)", err, smp.ENOTFOUND)
}

// testFindOrdersFilters: each filter narrows, newest first.
func testFindOrdersFilters(t *testing.T, s Store) {
	seed(t, s)
	must(t, s.UpsertCity(ctx, &smp.City{Code: "HN", Name: "Hà Nội", RadiusStepsKm: []float64{2}, WaveSize: 3, MaxWaves: 2}))
	a, b, c, d := order("a", T0), order("b", T0.Add(time.Second)), order("c", T0.Add(2*time.Second)), order("d", T0.Add(3*time.Second))
	b.Stage, b.TechnicianID = smp.StageAssigned, "T1"
	c.City, c.PaymentStatus = "HN", smp.PaymentPaid
	d.CustomerID = "C2"
	a.StageChangedAt = T0.Add(-10 * time.Minute)
	insertOrders(t, s, a, b, c, d)
	for _, tc := range []struct {
		f    smp.OrderFilter
		want []string
	}{
		{smp.OrderFilter{}, []string{"d", "c", "b", "a"}},
		{smp.OrderFilter{Stage: smp.StageCreated}, []string{"d", "c", "a"}},
		{smp.OrderFilter{City: "HN"}, []string{"c"}},
		{smp.OrderFilter{CustomerID: "C2"}, []string{"d"}},
		{smp.OrderFilter{TechnicianID: "T1"}, []string{"b"}},
		{smp.OrderFilter{Stage: smp.StageCreated, ChangedBefore: T0.Add(-time.Minute)}, []string{"a"}},
		{smp.OrderFilter{Stage: smp.StageCompleted}, []string{}},
		{smp.OrderFilter{PaymentStatus: smp.PaymentPaid}, []string{"c"}},
		{smp.OrderFilter{PaymentStatus: smp.PaymentPending}, []string{"d", "b", "a"}},
		{smp.OrderFilter{After: &smp.OrderCursor{CreatedAt: T0.Add(2 * time.Second), ID: "c"}}, []string{"b", "a"}},
		{smp.OrderFilter{After: &smp.OrderCursor{CreatedAt: T0.Add(time.Second), ID: "b"}, Limit: 1}, []string{"a"}},
	} {
		got, err := s.FindOrders(ctx, tc.f)
		must(t, err)
		if !sameStrings(orderIDs(got), tc.want) {
			t.Errorf("FindOrders(%+v) = %v, want %v", tc.f, orderIDs(got), tc.want)
		}
	}
}

// testFindOrdersLimit: a limit of 0, negative or above 1000 means 100, on
// every backend.
func testFindOrdersLimit(t *testing.T, s Store) {
	seed(t, s)
	var os []*smp.Order
	for i := range 102 {
		os = append(os, order(fmt.Sprintf("o%03d", i), T0.Add(time.Duration(i)*time.Second)))
	}
	insertOrders(t, s, os...)
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {1001, 100}, {2, 2}, {101, 101}, {1000, 102}} {
		got, err := s.FindOrders(ctx, smp.OrderFilter{Limit: tc.limit})
		must(t, err)
		if len(got) != tc.want {
			t.Errorf("FindOrders(Limit %d): %d orders, want %d", tc.limit, len(got), tc.want)
		}
	}
	if got, _ := s.FindOrders(ctx, smp.OrderFilter{Limit: 2}); !sameStrings(orderIDs(got), []string{"o101", "o100"}) {
		t.Errorf("newest first: %v", orderIDs(got))
	}
}

// testFindTransitions: oldest first; an unknown order has none (no error).
func testFindTransitions(t *testing.T, s Store) {
	seed(t, s)
	insertOrders(t, s, order("o1", T0))
	want := []smp.Transition{
		{OrderID: "o1", From: "", To: smp.StageCreated, At: T0, Actor: "customer:C1", Reason: ""},
		{OrderID: "o1", From: smp.StageCreated, To: smp.StageDispatching, At: T0.Add(time.Second), Actor: "system:order-svc", Reason: "auto"},
		{OrderID: "o1", From: smp.StageDispatching, To: smp.StageCancelled, At: T0.Add(time.Second), Actor: "admin:alice", Reason: "khách hủy"},
	}
	for _, tr := range want {
		inTx(t, s, func(tx smp.Tx) error { return tx.AddTransition(ctx, tr) })
	}
	got, err := s.FindTransitions(ctx, "o1")
	must(t, err)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("transitions\n got %+v\nwant %+v", got, want)
	}
	if got, err := s.FindTransitions(ctx, "nope"); err != nil || len(got) != 0 {
		t.Fatalf("unknown order: %v %v", got, err)
	}
}

// testOrderCounts: CountOrdersByStage has every stage (zero when empty);
// CountInStageSince counts orders whose stage began before the time.
func testOrderCounts(t *testing.T, s Store) {
	counts, err := s.CountOrdersByStage(ctx)
	must(t, err)
	if len(counts) != len(smp.Stages) {
		t.Fatalf("empty store: %v, want every stage at 0", counts)
	}
	seed(t, s)
	a, b, c := order("a", T0), order("b", T0.Add(time.Minute)), order("c", T0)
	c.Stage = smp.StageDispatching
	insertOrders(t, s, a, b, c)
	counts, err = s.CountOrdersByStage(ctx)
	must(t, err)
	for _, st := range smp.Stages {
		want := map[smp.Stage]int64{smp.StageCreated: 2, smp.StageDispatching: 1}[st]
		if n, ok := counts[st]; !ok || n != want {
			t.Errorf("count of %s = %d (present %v), want %d", st, n, ok, want)
		}
	}
	n, err := s.CountInStageSince(ctx, smp.StageCreated, T0.Add(time.Second))
	must(t, err)
	if n != 1 {
		t.Errorf("CountInStageSince = %d, want 1 (only a began before)", n)
	}
	if n, _ := s.CountInStageSince(ctx, smp.StageCreated, T0); n != 0 {
		t.Errorf("CountInStageSince(T0) = %d, want 0 (strictly before)", n)
	}
}

// testFindDispatchable: 02_dispatching orders whose hold has passed,
// longest waiting first, at most limit.
func testFindDispatchable(t *testing.T, s Store) {
	seed(t, s)
	a, b, c, d := order("a", T0), order("b", T0), order("c", T0), order("d", T0)
	a.Stage, b.Stage, d.Stage = smp.StageDispatching, smp.StageDispatching, smp.StageDispatching
	a.StageChangedAt, d.StageChangedAt = T0.Add(2*time.Second), T0.Add(time.Second)
	b.DispatchNotBefore = T0.Add(time.Minute)
	insertOrders(t, s, a, b, c, d)
	got, err := s.FindDispatchable(ctx, T0.Add(10*time.Second), 10)
	must(t, err)
	if !sameStrings(orderIDs(got), []string{"d", "a"}) {
		t.Fatalf("dispatchable = %v, want [d a]", orderIDs(got))
	}
	if got, _ := s.FindDispatchable(ctx, T0.Add(time.Minute), 10); len(got) != 3 {
		t.Fatalf("at the end of the hold: %v, want 3", orderIDs(got))
	}
	if got, _ := s.FindDispatchable(ctx, T0.Add(time.Minute), 1); !sameStrings(orderIDs(got), []string{"b"}) {
		t.Fatalf("limit 1: %v, want [b]", orderIDs(got))
	}
}

// testFindDispatchableInvalid: a limit that is not positive is EINVALID on
// every backend (SQLite would read -1 as no limit, MySQL fail).
func testFindDispatchableInvalid(t *testing.T, s Store) {
	for _, limit := range []int{0, -1} {
		_, err := s.FindDispatchable(ctx, T0, limit)
		wantCode(t, fmt.Sprintf("FindDispatchable(limit %d)", limit), err, smp.EINVALID)
	}
}

// testCountPaymentOverdue: completed orders still pending or failed in
// payment, finished before the time.
func testCountPaymentOverdue(t *testing.T, s Store) {
	seed(t, s)
	mk := func(id string, stage smp.Stage, ps smp.PaymentStatus, at time.Time) *smp.Order {
		o := order(id, at)
		o.Stage, o.PaymentStatus = stage, ps
		return o
	}
	old := T0.Add(-time.Hour)
	insertOrders(t, s,
		mk("pending", smp.StageCompleted, smp.PaymentPending, old),
		mk("failed", smp.StageCompleted, smp.PaymentFailed, old),
		mk("paid", smp.StageCompleted, smp.PaymentPaid, old),
		mk("open", smp.StageInProgress, smp.PaymentPending, old),
		mk("recent", smp.StageCompleted, smp.PaymentPending, T0))
	n, err := s.CountPaymentOverdue(ctx, T0.Add(-time.Minute))
	must(t, err)
	if n != 2 {
		t.Fatalf("overdue = %d, want 2", n)
	}
}
