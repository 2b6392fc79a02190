package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"smp"
)

var alertTests = []Test{
	{"Alerts/UpsertAndFind", testAlerts},
	{"Alerts/FindAlerts/Limit", testAlertsLimit},
}

func alert(fp, status string, updated time.Time) *smp.Alert {
	return &smp.Alert{Fingerprint: fp, Name: "DispatchEngineDown", Status: status, Severity: "critical",
		Labels: map[string]string{"incident": "INC-001", "component": "dispatch"}, Annotations: map[string]string{"summary": "thợ không đến"},
		StartsAt: T0, EndsAt: time.Time{}, UpdatedAt: updated}
}

// testAlerts: one alert per fingerprint, the latest state wins; firing
// first, then most recently updated; filtered by status.
func testAlerts(t *testing.T, s Store) {
	a := alert("a", "firing", T0)
	b := alert("b", "resolved", T0.Add(2*time.Minute))
	c := alert("c", "firing", T0.Add(time.Minute))
	for _, al := range []*smp.Alert{a, b, c} {
		must(t, s.UpsertAlert(ctx, al))
	}
	got, err := s.FindAlerts(ctx, "", 10)
	must(t, err)
	fps := func(as []*smp.Alert) []string { return ids(as, func(a *smp.Alert) string { return a.Fingerprint }) }
	if !sameStrings(fps(got), []string{"c", "a", "b"}) {
		t.Fatalf("alerts %v, want [c a b]", fps(got))
	}
	if !reflect.DeepEqual(got[1], a) {
		t.Fatalf("alert\n got %+v\nwant %+v", got[1], a)
	}
	resolved := alert("a", "resolved", T0.Add(3*time.Minute))
	resolved.EndsAt = T0.Add(3 * time.Minute)
	must(t, s.UpsertAlert(ctx, resolved))
	if got, _ := s.FindAlerts(ctx, "firing", 10); !sameStrings(fps(got), []string{"c"}) {
		t.Fatalf("firing: %v", fps(got))
	}
	got, _ = s.FindAlerts(ctx, "resolved", 10)
	if !sameStrings(fps(got), []string{"a", "b"}) || !got[0].EndsAt.Equal(resolved.EndsAt) {
		t.Fatalf("resolved: %v", fps(got))
	}
}

// testAlertsLimit: 0, negative or above 1000 means 100.
func testAlertsLimit(t *testing.T, s Store) {
	for i := range 102 {
		must(t, s.UpsertAlert(ctx, alert(fmt.Sprintf("fp%03d", i), "firing", T0.Add(time.Duration(i)*time.Second))))
	}
	for _, tc := range []struct{ limit, want int }{{0, 100}, {-1, 100}, {1001, 100}, {5, 5}, {101, 101}, {1000, 102}} {
		if got, err := s.FindAlerts(ctx, "", tc.limit); err != nil || len(got) != tc.want {
			t.Errorf("FindAlerts(limit %d): %d alerts (%v), want %d", tc.limit, len(got), err, tc.want)
		}
	}
}

var statusTests = []Test{
	{"Status/SetComponentStatus/ReturnsPrevious", testSetComponentStatus},
	{"Status/SetComponentStatus/RolledBack", testSetComponentStatusRolledBack},
}

func setStatus(t *testing.T, s Store, cs smp.ComponentStatus) smp.ComponentStatus {
	t.Helper()
	var before smp.ComponentStatus
	inTx(t, s, func(tx smp.Tx) (err error) {
		before, err = tx.SetComponentStatus(ctx, cs)
		return err
	})
	return before
}

// testSetComponentStatus: the previous state is operational until set,
// then the last state set; FindComponentStatuses lists those set, by
// component.
func testSetComponentStatus(t *testing.T, s Store) {
	if got, err := s.FindComponentStatuses(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty store: %v %v", got, err)
	}
	p1 := smp.ComponentStatus{Component: "payments", State: smp.StateDegraded, Message: "Thanh toán đang xác nhận", UpdatedBy: "ops1", UpdatedAt: T0}
	if before := setStatus(t, s, p1); before != (smp.ComponentStatus{Component: "payments", State: smp.StateOperational}) {
		t.Fatalf("first set: before = %+v, want operational", before)
	}
	d := smp.ComponentStatus{Component: "dispatch", State: smp.StateOutage, Message: "", UpdatedBy: "ops2", UpdatedAt: T0.Add(time.Second)}
	setStatus(t, s, d)
	p2 := smp.ComponentStatus{Component: "payments", State: smp.StateOperational, UpdatedBy: "ops2", UpdatedAt: T0.Add(time.Minute)}
	if before := setStatus(t, s, p2); before != p1 {
		t.Fatalf("second set: before\n got %+v\nwant %+v", before, p1)
	}
	got, err := s.FindComponentStatuses(ctx)
	must(t, err)
	if want := []smp.ComponentStatus{d, p2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("statuses\n got %+v\nwant %+v", got, want)
	}
}

func testSetComponentStatusRolledBack(t *testing.T, s Store) {
	p1 := smp.ComponentStatus{Component: "payments", State: smp.StateDegraded, UpdatedBy: "ops1", UpdatedAt: T0}
	setStatus(t, s, p1)
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if _, err := tx.SetComponentStatus(ctx, smp.ComponentStatus{Component: "payments", State: smp.StateOutage, UpdatedBy: "ops2", UpdatedAt: T0.Add(time.Second)}); err != nil {
			return err
		}
		return errBoom
	})
	if err == nil {
		t.Fatal("the failing transaction committed")
	}
	if before := setStatus(t, s, p1); before != p1 {
		t.Fatalf("before = %+v, want %+v (the rolled-back outage must not show)", before, p1)
	}
}
