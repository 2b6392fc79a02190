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
	{"Alerts/UpsertAlert/ReturnsBefore", testUpsertAlertBefore},
	{"Alerts/UpsertAlert/RolledBack", testUpsertAlertRolledBack},
	{"Alerts/FindAlerts/Limit", testAlertsLimit},
}

// upsertAlert records a in its own transaction and returns its status before.
func upsertAlert(t testing.TB, s Store, a *smp.Alert) string {
	t.Helper()
	var before string
	inTx(t, s, func(tx smp.Tx) (err error) {
		before, err = tx.UpsertAlert(ctx, a)
		return err
	})
	return before
}

// testUpsertAlertBefore: the status before is "" for a new fingerprint,
// then the last one recorded.
func testUpsertAlertBefore(t *testing.T, s Store) {
	if before := upsertAlert(t, s, alert("a", "firing", T0)); before != "" {
		t.Fatalf("new alert: before = %q, want \"\"", before)
	}
	if before := upsertAlert(t, s, alert("a", "firing", T0.Add(time.Minute))); before != "firing" {
		t.Fatalf("repeat: before = %q, want firing", before)
	}
	if before := upsertAlert(t, s, alert("a", "resolved", T0.Add(2*time.Minute))); before != "firing" {
		t.Fatalf("resolved: before = %q, want firing", before)
	}
	if got, _ := s.FindAlerts(ctx, "resolved", 10); len(got) != 1 || got[0].Fingerprint != "a" {
		t.Fatalf("resolved alerts: %+v", got)
	}
}

// testUpsertAlertRolledBack: alerts recorded in a failed transaction are
// not kept (a post of several alerts is all or nothing).
func testUpsertAlertRolledBack(t *testing.T, s Store) {
	upsertAlert(t, s, alert("a", "firing", T0))
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if _, err := tx.UpsertAlert(ctx, alert("a", "resolved", T0.Add(time.Minute))); err != nil {
			return err
		}
		if _, err := tx.UpsertAlert(ctx, alert("b", "firing", T0.Add(time.Minute))); err != nil {
			return err
		}
		return errBoom
	})
	if err == nil {
		t.Fatal("the failing transaction committed")
	}
	got, err := s.FindAlerts(ctx, "", 10)
	must(t, err)
	if len(got) != 1 || got[0].Fingerprint != "a" || got[0].Status != "firing" {
		t.Fatalf("after a rolled-back post: %+v, want only a, firing", got)
	}
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
		upsertAlert(t, s, al)
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
	upsertAlert(t, s, resolved)
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
		upsertAlert(t, s, alert(fmt.Sprintf("fp%03d", i), "firing", T0.Add(time.Duration(i)*time.Second)))
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
