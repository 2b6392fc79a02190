package smp

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// VietnamTime is the zone technicians' working hours are given in:
// Asia/Ho_Chi_Minh, UTC+7 all year (Vietnam keeps no daylight saving), so
// a fixed zone needs no tz database in the image.
var VietnamTime = time.FixedZone("Asia/Ho_Chi_Minh", 7*3600)

// Weekdays as TechnicianSettings names them.
var weekdayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// TechnicianSettings are a technician's own limits on the offers they
// get: working hours and days off (in VietnamTime) and how far they
// travel. Zero values mean no limit: no hours means all day, no radius
// means the city's search radius.
type TechnicianSettings struct {
	TechnicianID string `json:"technician_id"`
	// WorkStart and WorkEnd are "HH:MM"; both empty, or both set. An end
	// before the start is a night shift past midnight.
	WorkStart string `json:"work_start"`
	WorkEnd   string `json:"work_end"`
	// WeeklyDaysOff are weekdays ("sun" … "sat") off every week.
	WeeklyDaysOff []string `json:"weekly_days_off"`
	// DaysOff are dates ("2026-12-25") off.
	DaysOff []string `json:"days_off"`
	// MaxRadiusKm is the farthest the technician travels to a job (0: no
	// limit of their own).
	MaxRadiusKm float64   `json:"max_radius_km"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
	UpdatedBy   string    `json:"updated_by,omitempty"`
}

// Limits of the settings.
const (
	MaxDaysOff        = 366
	MaxTravelRadiusKm = 200
)

func parseClock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != 5 {
		return 0, Errorf(EINVALID, "%q is not a time of day as HH:MM", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// Normalize checks the settings and puts them in canonical form (weekdays
// lower case and sorted, dates sorted without repeats): EINVALID for a
// malformed time, weekday or date, a half-given working window, more than
// MaxDaysOff dates, or a radius outside 0..MaxTravelRadiusKm.
func (s *TechnicianSettings) Normalize() error {
	if (s.WorkStart == "") != (s.WorkEnd == "") {
		return Errorf(EINVALID, "work_start and work_end go together (both empty for all day)")
	}
	if s.WorkStart != "" {
		a, err := parseClock(s.WorkStart)
		if err != nil {
			return err
		}
		b, err := parseClock(s.WorkEnd)
		if err != nil {
			return err
		}
		if a == b {
			return Errorf(EINVALID, "work_start and work_end are the same time (leave both empty for all day)")
		}
	}
	days := make([]string, 0, len(s.WeeklyDaysOff))
	for _, d := range s.WeeklyDaysOff {
		d = strings.ToLower(strings.TrimSpace(d))
		if len(d) > 3 {
			d = d[:3]
		}
		if !slices.Contains(weekdayNames, d) {
			return Errorf(EINVALID, "weekly_days_off: %q is not a weekday (sun, mon, tue, wed, thu, fri, sat)", d)
		}
		if !slices.Contains(days, d) {
			days = append(days, d)
		}
	}
	slices.SortFunc(days, func(a, b string) int { return slices.Index(weekdayNames, a) - slices.Index(weekdayNames, b) })
	if len(days) == 7 {
		return Errorf(EINVALID, "weekly_days_off: every day of the week is off")
	}
	s.WeeklyDaysOff = days
	if len(s.DaysOff) > MaxDaysOff {
		return Errorf(EINVALID, "days_off: at most %d dates", MaxDaysOff)
	}
	dates := make([]string, 0, len(s.DaysOff))
	for _, d := range s.DaysOff {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return Errorf(EINVALID, "days_off: %q is not a date as YYYY-MM-DD", d)
		}
		dates = append(dates, d)
	}
	slices.Sort(dates)
	s.DaysOff = slices.Compact(dates)
	if s.MaxRadiusKm < 0 || s.MaxRadiusKm > MaxTravelRadiusKm || s.MaxRadiusKm != s.MaxRadiusKm {
		return Errorf(EINVALID, "max_radius_km must be between 0 (no limit) and %d", MaxTravelRadiusKm)
	}
	return nil
}

// WorksAt reports whether t falls in the technician's working time: not a
// day off and inside the working window, in VietnamTime. A night shift
// (end before start) belongs to the day it starts on.
func (s *TechnicianSettings) WorksAt(t time.Time) bool {
	if s == nil {
		return true
	}
	local := t.In(VietnamTime)
	minute := local.Hour()*60 + local.Minute()
	day := local
	if s.WorkStart != "" {
		start, err1 := parseClock(s.WorkStart)
		end, err2 := parseClock(s.WorkEnd)
		if err1 != nil || err2 != nil {
			return true // not normalized: no limit rather than no work
		}
		if start < end {
			if minute < start || minute >= end {
				return false
			}
		} else {
			switch {
			case minute >= start: // the evening part
			case minute < end: // past midnight: the shift began yesterday
				day = local.AddDate(0, 0, -1)
			default:
				return false
			}
		}
	}
	if slices.Contains(s.WeeklyDaysOff, weekdayNames[day.Weekday()]) {
		return false
	}
	_, off := slices.BinarySearch(s.DaysOff, day.Format(time.DateOnly))
	return !off
}

// Reaches reports whether a job distanceM away is within the technician's
// travel radius.
func (s *TechnicianSettings) Reaches(distanceM float64) bool {
	return s == nil || s.MaxRadiusKm <= 0 || distanceM <= s.MaxRadiusKm*1000
}

// String describes the settings for audit entries and traces.
func (s *TechnicianSettings) String() string {
	hours := "all day"
	if s.WorkStart != "" {
		hours = s.WorkStart + "-" + s.WorkEnd
	}
	return fmt.Sprintf("hours %s, weekly off %v, %d days off, radius %g km", hours, s.WeeklyDaysOff, len(s.DaysOff), s.MaxRadiusKm)
}

// TechnicianSettingsStore reads technicians' settings.
type TechnicianSettingsStore interface {
	// FindTechnicianSettings returns the settings of those of ids that
	// have any, by technician id. No codes.
	FindTechnicianSettings(ctx context.Context, ids ...string) (map[string]*TechnicianSettings, error)
}

// TechnicianSettingsTx writes them with their audit entry.
type TechnicianSettingsTx interface {
	// PutTechnicianSettings replaces a technician's settings and returns
	// the previous ones (nil if none). ENOTFOUND for an unknown technician.
	PutTechnicianSettings(ctx context.Context, s *TechnicianSettings) (before *TechnicianSettings, err error)
}
