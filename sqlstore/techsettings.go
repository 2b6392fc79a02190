package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"smp"
)

// Technicians' own settings: working hours, days off, travel radius
// (smp.TechnicianSettingsStore, smp.TechnicianSettingsTx).

var (
	_ smp.TechnicianSettingsStore = (*DB)(nil)
	_ smp.TechnicianSettingsTx    = (*Tx)(nil)
)

const settingsCols = `technician_id, work_start, work_end, weekly_days_off, days_off, max_radius_km, updated_at, updated_by`

func scanSettings(row scanner) (*smp.TechnicianSettings, error) {
	var s smp.TechnicianSettings
	var weekly, days string
	var at int64
	if err := row.Scan(&s.TechnicianID, &s.WorkStart, &s.WorkEnd, &weekly, &days, &s.MaxRadiusKm, &at, &s.UpdatedBy); err != nil {
		return nil, err
	}
	s.WeeklyDaysOff, s.DaysOff, s.UpdatedAt = splitList(weekly), splitList(days), fromMicros(at)
	return &s, nil
}

func splitList(v string) []string {
	if v == "" {
		return []string{}
	}
	return strings.Split(v, ",")
}

// FindTechnicianSettings returns the settings of those of ids that have
// any. The dispatch engine reads them for each wave: fresh.
func (db *DB) FindTechnicianSettings(ctx context.Context, ids ...string) (map[string]*smp.TechnicianSettings, error) {
	out := map[string]*smp.TechnicianSettings{}
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 500)]
		ids = ids[len(batch):]
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		rows, err := db.fresh().QueryContext(ctx, `SELECT `+settingsCols+` FROM technician_settings WHERE technician_id IN (`+placeholders(len(batch))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find technician settings: %w", err)
		}
		for rows.Next() {
			s, err := scanSettings(rows)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlstore: find technician settings: %w", err)
			}
			out[s.TechnicianID] = s
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find technician settings: %w", err)
		}
	}
	return out, nil
}

// FindTechnicianChecks returns, for those of ids that are technicians,
// their catalogue status and their settings (nil if they set none), in
// one read: what the dispatch engine checks of each search's candidates
// (suspended, off duty, out of their radius). Fresh.
func (db *DB) FindTechnicianChecks(ctx context.Context, ids ...string) (map[string]smp.CatalogStatus, map[string]*smp.TechnicianSettings, error) {
	status, settings := map[string]smp.CatalogStatus{}, map[string]*smp.TechnicianSettings{}
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 500)]
		ids = ids[len(batch):]
		args := make([]any, len(batch))
		for i, id := range batch {
			args[i] = id
		}
		rows, err := db.fresh().QueryContext(ctx, `SELECT t.id, t.status, s.technician_id IS NOT NULL, COALESCE(s.work_start, ''), COALESCE(s.work_end, ''),
			COALESCE(s.weekly_days_off, ''), COALESCE(s.days_off, ''), COALESCE(s.max_radius_km, 0), COALESCE(s.updated_at, 0), COALESCE(s.updated_by, '')
			FROM technicians t LEFT JOIN technician_settings s ON s.technician_id = t.id WHERE t.id IN (`+placeholders(len(batch))+`)`, args...)
		if err != nil {
			return nil, nil, fmt.Errorf("sqlstore: find technician checks: %w", err)
		}
		for rows.Next() {
			var id, st, weekly, days string
			var has bool
			var at int64
			s := &smp.TechnicianSettings{}
			if err := rows.Scan(&id, &st, &has, &s.WorkStart, &s.WorkEnd, &weekly, &days, &s.MaxRadiusKm, &at, &s.UpdatedBy); err != nil {
				rows.Close()
				return nil, nil, fmt.Errorf("sqlstore: find technician checks: %w", err)
			}
			status[id] = smp.CatalogStatus(st)
			if has {
				s.TechnicianID, s.WeeklyDaysOff, s.DaysOff, s.UpdatedAt = id, splitList(weekly), splitList(days), fromMicros(at)
				settings[id] = s
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("sqlstore: find technician checks: %w", err)
		}
	}
	return status, settings, nil
}

// PutTechnicianSettings replaces a technician's settings.
func (tx *Tx) PutTechnicianSettings(ctx context.Context, s *smp.TechnicianSettings) (*smp.TechnicianSettings, error) {
	weekly, days := strings.Join(s.WeeklyDaysOff, ","), strings.Join(s.DaysOff, ",")
	if err := checkSizes("put technician settings",
		chars("technician_id", s.TechnicianID, 64),
		chars("work_start", s.WorkStart, 5),
		chars("work_end", s.WorkEnd, 5),
		chars("weekly_days_off", weekly, 32),
		text("days_off", days, maxText),
		chars("updated_by", s.UpdatedBy, 200)); err != nil {
		return nil, err
	}
	var one int
	err := tx.tx.QueryRowContext(ctx, `SELECT 1 FROM technicians WHERE id = ?`, s.TechnicianID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "technician %s not found", s.TechnicianID)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: put technician settings: %w", err)
	}
	before, err := scanSettings(tx.tx.QueryRowContext(ctx, `SELECT `+settingsCols+` FROM technician_settings WHERE technician_id = ?`, s.TechnicianID))
	if errors.Is(err, sql.ErrNoRows) {
		before = nil
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: put technician settings: %w", err)
	}
	_, err = tx.tx.ExecContext(ctx, tx.db.dialect.Upsert("technician_settings", []string{"technician_id"},
		[]string{"technician_id", "work_start", "work_end", "weekly_days_off", "days_off", "max_radius_km", "updated_at", "updated_by"}),
		s.TechnicianID, s.WorkStart, s.WorkEnd, weekly, days, s.MaxRadiusKm, micros(s.UpdatedAt), s.UpdatedBy)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: put technician settings: %w", err)
	}
	return before, nil
}
