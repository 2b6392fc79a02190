package storetest

import (
	"fmt"
	"testing"
	"time"

	"smp"
)

var sessionTests = []Test{
	{"Sessions/CreateSession/OK", func(t *testing.T, s Store) { testSessionsOK(t, s) }},
	{"Sessions/CreateSession/ErrConflict", func(t *testing.T, s Store) { testSessionConflict(t, s) }},
	{"Sessions/CreateSession/ErrInvalid", func(t *testing.T, s Store) { testSessionInvalid(t, s) }},
	{"Sessions/FindSession/ErrNotFound", func(t *testing.T, s Store) { testSessionNotFound(t, s) }},
	{"Sessions/DeleteSession", func(t *testing.T, s Store) { testSessionDelete(t, s) }},
	{"Sessions/DeleteSessions", func(t *testing.T, s Store) { testSessionsDeleteOwner(t, s) }},
}

// SessionTests are the smp.SessionStore cases, for backends of sessions
// outside the system of record (redisstore): open returns a fresh store.
func SessionTests(t *testing.T, open func(t *testing.T) smp.SessionStore) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s smp.SessionStore)
	}{
		{"OK", testSessionsOK}, {"ErrConflict", testSessionConflict}, {"ErrInvalid", testSessionInvalid},
		{"ErrNotFound", testSessionNotFound}, {"DeleteSession", testSessionDelete}, {"DeleteSessions", testSessionsDeleteOwner},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func session(id, kind, owner string, at time.Time) *smp.Session {
	return &smp.Session{ID: id, OwnerKind: kind, OwnerID: owner, SecretHash: hashA, CreatedAt: at, ExpiresAt: at.Add(time.Hour), IP: "10.0.0.1"}
}

func sameSession(t testing.TB, got, want *smp.Session) {
	t.Helper()
	g, w := *got, *want
	if !g.CreatedAt.Equal(w.CreatedAt) || !g.ExpiresAt.Equal(w.ExpiresAt) {
		t.Fatalf("session %s times = %v/%v, want %v/%v", w.ID, g.CreatedAt, g.ExpiresAt, w.CreatedAt, w.ExpiresAt)
	}
	g.CreatedAt, g.ExpiresAt, w.CreatedAt, w.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if g != w {
		t.Fatalf("session = %+v, want %+v", g, w)
	}
}

// testSessionsOK: a session reads back whole, secret hash included;
// listings filter by owner, leave out what expired at Now and come newest
// first.
func testSessionsOK(t *testing.T, s smp.SessionStore) {
	a := session("s1", smp.OwnerTechnician, "T1", T0)
	b := session("s2", smp.OwnerTechnician, "T1", T0.Add(time.Minute))
	c := session("s3", smp.OwnerCustomer, "C1", T0.Add(2*time.Minute))
	for _, x := range []*smp.Session{a, b, c} {
		must(t, s.CreateSession(ctx, x))
	}
	got, err := s.FindSession(ctx, "s1")
	must(t, err)
	sameSession(t, got, a)
	list, err := s.FindSessions(ctx, smp.SessionFilter{OwnerKind: smp.OwnerTechnician, OwnerID: "T1"})
	must(t, err)
	if ids := ids(list, func(s *smp.Session) string { return s.ID }); fmt.Sprint(ids) != "[s2 s1]" {
		t.Fatalf("T1's sessions = %v, want [s2 s1]", ids)
	}
	all, err := s.FindSessions(ctx, smp.SessionFilter{})
	must(t, err)
	if len(all) != 3 {
		t.Fatalf("all sessions = %d, want 3", len(all))
	}
	live, err := s.FindSessions(ctx, smp.SessionFilter{Now: T0.Add(time.Hour + 30*time.Second)})
	must(t, err)
	if ids := ids(live, func(s *smp.Session) string { return s.ID }); fmt.Sprint(ids) != "[s3 s2]" {
		t.Fatalf("sessions live an hour later = %v, want [s3 s2]", ids)
	}
}

func testSessionConflict(t *testing.T, s smp.SessionStore) {
	must(t, s.CreateSession(ctx, session("s1", smp.OwnerTechnician, "T1", T0)))
	wantCode(t, "CreateSession(same id)", s.CreateSession(ctx, session("s1", smp.OwnerCustomer, "C1", T0)), smp.ECONFLICT)
	got, err := s.FindSession(ctx, "s1")
	must(t, err)
	if got.OwnerID != "T1" {
		t.Fatalf("the first session was replaced: %+v", got)
	}
}

func testSessionInvalid(t *testing.T, s smp.SessionStore) {
	for name, x := range map[string]*smp.Session{
		"no id":     session("", smp.OwnerTechnician, "T1", T0),
		"no owner":  session("s1", smp.OwnerTechnician, "", T0),
		"no expiry": {ID: "s2", OwnerKind: smp.OwnerCustomer, OwnerID: "C1", CreatedAt: T0},
		"long id":   session(long(33), smp.OwnerCustomer, "C1", T0),
		"long ip":   {ID: "s3", OwnerKind: smp.OwnerCustomer, OwnerID: "C1", CreatedAt: T0, ExpiresAt: T0.Add(time.Hour), IP: long(65)},
	} {
		wantCode(t, "CreateSession("+name+")", s.CreateSession(ctx, x), smp.EINVALID)
	}
	if list, err := s.FindSessions(ctx, smp.SessionFilter{}); err != nil || len(list) != 0 {
		t.Fatalf("after refused writes: %d sessions, %v", len(list), err)
	}
}

func testSessionNotFound(t *testing.T, s smp.SessionStore) {
	_, err := s.FindSession(ctx, "nope")
	wantCode(t, "FindSession(unknown)", err, smp.ENOTFOUND)
	_, err = s.DeleteSession(ctx, "nope")
	wantCode(t, "DeleteSession(unknown)", err, smp.ENOTFOUND)
}

func testSessionDelete(t *testing.T, s smp.SessionStore) {
	must(t, s.CreateSession(ctx, session("s1", smp.OwnerTechnician, "T1", T0)))
	must(t, s.CreateSession(ctx, session("s2", smp.OwnerTechnician, "T1", T0)))
	got, err := s.DeleteSession(ctx, "s1")
	must(t, err)
	if got.ID != "s1" || got.OwnerID != "T1" {
		t.Fatalf("DeleteSession returned %+v", got)
	}
	_, err = s.FindSession(ctx, "s1")
	wantCode(t, "FindSession(deleted)", err, smp.ENOTFOUND)
	_, err = s.DeleteSession(ctx, "s1")
	wantCode(t, "DeleteSession(twice)", err, smp.ENOTFOUND)
	if _, err := s.FindSession(ctx, "s2"); err != nil {
		t.Fatalf("the other session went too: %v", err)
	}
}

func testSessionsDeleteOwner(t *testing.T, s smp.SessionStore) {
	must(t, s.CreateSession(ctx, session("s1", smp.OwnerTechnician, "T1", T0)))
	must(t, s.CreateSession(ctx, session("s2", smp.OwnerTechnician, "T1", T0)))
	must(t, s.CreateSession(ctx, session("s3", smp.OwnerCustomer, "T1", T0)))
	n, err := s.DeleteSessions(ctx, smp.OwnerTechnician, "T1")
	must(t, err)
	if n != 2 {
		t.Fatalf("DeleteSessions = %d, want 2", n)
	}
	if _, err := s.FindSession(ctx, "s3"); err != nil {
		t.Fatalf("a customer's session with the same id went too: %v", err)
	}
	if n, err := s.DeleteSessions(ctx, smp.OwnerTechnician, "T1"); err != nil || n != 0 {
		t.Fatalf("DeleteSessions again = %d, %v", n, err)
	}
}

var settingsTests = []Test{
	{"TechnicianSettings/Put/OK", testSettingsOK},
	{"TechnicianSettings/Put/ErrNotFound", testSettingsUnknown},
	{"TechnicianSettings/Put/RollsBack", testSettingsRollback},
}

func settings(id string) *smp.TechnicianSettings {
	return &smp.TechnicianSettings{TechnicianID: id, WorkStart: "08:00", WorkEnd: "17:30", WeeklyDaysOff: []string{"sun"},
		DaysOff: []string{"2026-03-08", "2026-04-30"}, MaxRadiusKm: 7.5, UpdatedAt: T0, UpdatedBy: "technician:" + id}
}

// testSettingsOK: settings read back whole; a second put replaces them
// and returns the first; technicians without settings are absent.
func testSettingsOK(t *testing.T, s Store) {
	seed(t, s)
	first := settings("T1")
	var before *smp.TechnicianSettings
	inTx(t, s, func(tx smp.Tx) (err error) { before, err = tx.PutTechnicianSettings(ctx, first); return err })
	if before != nil {
		t.Fatalf("first put returned previous settings %+v", before)
	}
	got, err := s.FindTechnicianSettings(ctx, "T1", "T2", "T9")
	must(t, err)
	if len(got) != 1 || fmt.Sprintf("%+v", *got["T1"]) != fmt.Sprintf("%+v", *first) {
		t.Fatalf("settings = %v, want T1's %+v", got, *first)
	}
	second := &smp.TechnicianSettings{TechnicianID: "T1", WeeklyDaysOff: []string{}, DaysOff: []string{}, UpdatedAt: T0.Add(time.Hour), UpdatedBy: "alice"}
	inTx(t, s, func(tx smp.Tx) (err error) { before, err = tx.PutTechnicianSettings(ctx, second); return err })
	if before == nil || before.WorkStart != "08:00" || before.MaxRadiusKm != 7.5 {
		t.Fatalf("second put returned %+v, want the first", before)
	}
	got, err = s.FindTechnicianSettings(ctx, "T1")
	must(t, err)
	if fmt.Sprintf("%+v", *got["T1"]) != fmt.Sprintf("%+v", *second) {
		t.Fatalf("after replace = %+v, want %+v", *got["T1"], *second)
	}
	none, err := s.FindTechnicianSettings(ctx)
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("no ids: %v", none)
	}
}

func testSettingsUnknown(t *testing.T, s Store) {
	seed(t, s)
	err := s.InTx(ctx, func(tx smp.Tx) error { _, err := tx.PutTechnicianSettings(ctx, settings("T9")); return err })
	wantCode(t, "PutTechnicianSettings(unknown)", err, smp.ENOTFOUND)
}

// testSettingsRollback: settings written in a failed transaction (with
// their audit entry) are not kept.
func testSettingsRollback(t *testing.T, s Store) {
	seed(t, s)
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if _, err := tx.PutTechnicianSettings(ctx, settings("T1")); err != nil {
			return err
		}
		if err := tx.AddAudit(ctx, smp.AuditEntry{At: T0, Actor: "alice", Role: smp.RoleOps, Action: "technicians.settings", Target: "technician:T1"}); err != nil {
			return err
		}
		return errBoom
	})
	if err != errBoom {
		t.Fatalf("InTx = %v, want errBoom", err)
	}
	got, err := s.FindTechnicianSettings(ctx, "T1")
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("settings kept after rollback: %+v", got["T1"])
	}
}
