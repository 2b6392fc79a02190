package dispatch_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
)

// Set moves the clock to t.
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// vn is a time of day in Ho Chi Minh City on Tuesday 1 December 2026.
func vn(hour, minute int) time.Time {
	return time.Date(2026, 12, 1, hour, minute, 0, 0, smp.VietnamTime)
}

// TestSettingsKeepOffersInsideHoursAndRadius: technicians' own working
// hours, days off and travel radius decide who gets an offer. The nearest
// technicians are off duty or too far for their own radius and get none;
// a farther one without limits gets it. Inside the hours, the nearest
// gets it again.
func TestSettingsKeepOffersInsideHoursAndRadius(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: vn(9, 0)}
	h := newHarness(t, options{waveSize: 5, maxWaves: 1, steps: []float64{5}, ttl: time.Second, now: clock.Now})
	ctx := context.Background()
	// The order is at (10.7769, 106.7009); 0.001° of latitude is ~111 m.
	h.addTech("T_DAY", 10.7779, 106.7009)   // ~110 m: works 08:00-17:00
	h.addTech("T_NEAR", 10.7789, 106.7009)  // ~220 m: travels at most 0.1 km
	h.addTech("T_OFF", 10.7799, 106.7009)   // ~330 m: Tuesdays off
	h.addTech("T_NIGHT", 10.7809, 106.7009) // ~440 m: works 18:00-02:00
	h.addTech("T_FAR", 10.7969, 106.7009)   // ~2.2 km: no settings
	for _, s := range []smp.TechnicianSettings{
		{TechnicianID: "T_DAY", WorkStart: "08:00", WorkEnd: "17:00"},
		{TechnicianID: "T_NEAR", MaxRadiusKm: 0.1},
		{TechnicianID: "T_OFF", WeeklyDaysOff: []string{"tue"}},
		{TechnicianID: "T_NIGHT", WorkStart: "18:00", WorkEnd: "02:00"},
	} {
		if _, err := h.engine.SetSettings(ctx, s, nil, ""); err != nil {
			t.Fatal(err)
		}
	}

	// Each step's order is cancelled before the clock moves on, so every
	// technician is free for the next.
	step := func(at time.Time, want ...string) {
		t.Helper()
		clock.Set(at)
		o := h.createOrder(10.7769, 106.7009)
		got := h.waitOffered(o.ID, len(want))
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("at %s offers went to %v, want %v", at.Format("Mon 15:04"), got, want)
		}
		trace, err := h.engine.Trace(ctx, o.ID)
		must(t, err)
		if len(trace.Waves) != 1 || trace.Waves[0].Candidates != len(want) {
			t.Fatalf("at %s the trace has %+v, want one wave of %d candidates", at.Format("Mon 15:04"), trace.Waves, len(want))
		}
		_, err = h.orders.Cancel(ctx, o.ID, smp.Actor{Kind: "customer", ID: "C1"}, "test step over")
		must(t, err)
		wait.Until(t, 10*time.Second, "offers withdrawn", func() bool {
			n, err := h.invs.Count(ctx)
			return err == nil && n == 0
		})
	}
	// Tuesday 10:00: T_NIGHT is off duty, T_OFF's day is off, the job is
	// beyond T_NEAR's own radius: the day worker and the far one get it.
	step(vn(10, 0), "T_DAY", "T_FAR")
	// Tuesday 20:00: the night shift has begun, the day's is over.
	step(vn(20, 0), "T_FAR", "T_NIGHT")
	// Wednesday 01:00 is still Tuesday night's shift; T_OFF's day off is over.
	step(vn(25, 0), "T_FAR", "T_NIGHT", "T_OFF")
}

// TestSetSettingsAuditsOps: ops' changes are audited with the reason and
// the settings before; the technician's own are not; bad settings change
// nothing.
func TestSetSettingsAuditsOps(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: vn(9, 0)}
	h := newHarness(t, options{now: clock.Now, noStart: true})
	ctx := context.Background()
	h.addTech("T1", 10.78, 106.70)
	if _, err := h.engine.SetSettings(ctx, smp.TechnicianSettings{TechnicianID: "T1", MaxRadiusKm: 5}, nil, ""); err != nil {
		t.Fatal(err)
	}
	ops := smp.Principal{Name: "alice", Role: smp.RoleOps}
	s, err := h.engine.SetSettings(ctx, smp.TechnicianSettings{TechnicianID: "T1", WorkStart: "07:00", WorkEnd: "19:00", WeeklyDaysOff: []string{"Sunday"}}, &ops, "agreed by phone")
	must(t, err)
	if s.UpdatedBy != "alice" || !slices.Equal(s.WeeklyDaysOff, []string{"sun"}) {
		t.Fatalf("settings = %+v", s)
	}
	entries, err := h.store.FindAudit(ctx, smp.AuditFilter{Target: "technician:T1"})
	must(t, err)
	if len(entries) != 1 || entries[0].Actor != "alice" || entries[0].Reason != "agreed by phone" || entries[0].Action != "technicians.settings" ||
		!contains(entries[0].Before, `"max_radius_km":5`) || !contains(entries[0].After, `"work_start":"07:00"`) {
		t.Fatalf("audit = %+v, want one entry by alice with before and after", entries)
	}
	for _, bad := range []smp.TechnicianSettings{
		{TechnicianID: "T1", WorkStart: "7h"}, {TechnicianID: "T1", WorkStart: "25:00", WorkEnd: "26:00"},
		{TechnicianID: "T1", WeeklyDaysOff: []string{"someday"}}, {TechnicianID: "T1", DaysOff: []string{"31/12/2026"}},
		{TechnicianID: "T1", MaxRadiusKm: -1}, {TechnicianID: "T1", MaxRadiusKm: 1000},
	} {
		if _, err := h.engine.SetSettings(ctx, bad, &ops, "x"); smp.ErrorCode(err) != smp.EINVALID {
			t.Fatalf("SetSettings(%+v) = %v, want EINVALID", bad, err)
		}
	}
	if _, err := h.engine.SetSettings(ctx, smp.TechnicianSettings{TechnicianID: "T404"}, &ops, "x"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("unknown technician: %v", err)
	}
	cur, err := h.engine.Settings(ctx, "T1")
	must(t, err)
	if cur.WorkStart != "07:00" {
		t.Fatalf("refused changes changed the settings: %+v", cur)
	}
	if entries, _ := h.store.FindAudit(ctx, smp.AuditFilter{Target: "technician:T1"}); len(entries) != 1 {
		t.Fatalf("refused changes were audited: %d entries", len(entries))
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
