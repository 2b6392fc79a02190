package smp_test

import (
	"testing"
	"time"

	"smp"
)

func TestTechnicianSettingsWorksAt(t *testing.T) {
	t.Parallel()
	at := func(day, hour, minute int) time.Time { // December 2026: the 1st is a Tuesday
		return time.Date(2026, 12, day, hour, minute, 0, 0, smp.VietnamTime).UTC()
	}
	day := &smp.TechnicianSettings{WorkStart: "08:00", WorkEnd: "17:30", WeeklyDaysOff: []string{"sun"}, DaysOff: []string{"2026-12-02"}}
	night := &smp.TechnicianSettings{WorkStart: "22:00", WorkEnd: "06:00", WeeklyDaysOff: []string{"tue"}}
	for _, c := range []struct {
		name string
		s    *smp.TechnicianSettings
		t    time.Time
		want bool
	}{
		{"no settings", nil, at(1, 3, 0), true},
		{"no limits", &smp.TechnicianSettings{}, at(6, 3, 0), true},
		{"day: start", day, at(1, 8, 0), true},
		{"day: before", day, at(1, 7, 59), false},
		{"day: end is out", day, at(1, 17, 30), false},
		{"day: UTC evening is the next morning in Vietnam", day, time.Date(2026, 12, 3, 1, 0, 0, 0, time.UTC), true},
		{"day: Sunday", day, at(6, 10, 0), false},
		{"day: a date off", day, at(2, 10, 0), false},
		{"night: Monday 23:00", night, at(7, 23, 0), true},
		{"night: Tuesday 05:00 belongs to Monday's shift", night, at(8, 5, 0), true},
		{"night: Tuesday 23:00 is off", night, at(8, 23, 0), false},
		{"night: Wednesday 05:00 belongs to Tuesday's shift, off", night, at(9, 5, 0), false},
		{"night: midday", night, at(7, 12, 0), false},
	} {
		if got := c.s.WorksAt(c.t); got != c.want {
			t.Errorf("%s: WorksAt(%s) = %v, want %v", c.name, c.t.In(smp.VietnamTime).Format("Mon 02 15:04"), got, c.want)
		}
	}
}

func TestTechnicianSettingsNormalize(t *testing.T) {
	t.Parallel()
	s := smp.TechnicianSettings{WorkStart: "08:00", WorkEnd: "17:00", WeeklyDaysOff: []string{"Sunday", "sat", "SUN"},
		DaysOff: []string{"2026-12-25", "2026-01-01", "2026-12-25"}, MaxRadiusKm: 12}
	if err := s.Normalize(); err != nil {
		t.Fatal(err)
	}
	if len(s.WeeklyDaysOff) != 2 || s.WeeklyDaysOff[0] != "sun" || s.WeeklyDaysOff[1] != "sat" || len(s.DaysOff) != 2 || s.DaysOff[0] != "2026-01-01" {
		t.Fatalf("normalized = %+v", s)
	}
	if !s.Reaches(12000) || s.Reaches(12001) || !(&smp.TechnicianSettings{}).Reaches(1e9) {
		t.Fatal("Reaches")
	}
	for _, bad := range []smp.TechnicianSettings{
		{WorkStart: "08:00"}, {WorkStart: "8:00", WorkEnd: "17:00"}, {WorkStart: "08:00", WorkEnd: "08:00"},
		{WorkStart: "08:00", WorkEnd: "24:00"}, {WeeklyDaysOff: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
		{WeeklyDaysOff: []string{"xyz"}}, {DaysOff: []string{"2026-02-30"}}, {MaxRadiusKm: -0.5}, {MaxRadiusKm: 201},
		{DaysOff: make([]string, smp.MaxDaysOff+1)},
	} {
		if err := bad.Normalize(); smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("Normalize(%+v) = %v, want EINVALID", bad, err)
		}
	}
}
