package dispatch

import (
	"context"
	"encoding/json"
	"strings"

	"smp"
)

// Technicians' own settings (working hours, days off, travel radius):
// set by the technician or by ops, honoured by candidate selection.

// eligible keeps the candidates the catalogue says are active and whose
// settings allow an offer now. Active: the geo index may still list a
// technician suspended while connected (the suspension's own update of
// the index lost, or raced by a reconnect, or made by a process without an
// engine such as smp import). Settings: in their working time
// (VietnamTime) and within their travel radius. One read per search
// (FindTechnicianChecks) for both.
func (e *Engine) eligible(ctx context.Context, found []smp.Candidate) ([]smp.Candidate, error) {
	if len(found) == 0 {
		return found, nil
	}
	ids := make([]string, len(found))
	for i, c := range found {
		ids[i] = c.TechnicianID
	}
	status, settings, err := e.d.Store.FindTechnicianChecks(ctx, ids...)
	if err != nil {
		return nil, err
	}
	now := e.cfg.Now()
	out := found[:0:0]
	for _, c := range found {
		st, ok := status[c.TechnicianID]
		if !ok || !st.Active() {
			continue
		}
		if s := settings[c.TechnicianID]; s != nil && !(s.WorksAt(now) && s.Reaches(c.DistanceM)) {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// Settings returns a technician's settings (all zero, no limits, if they
// set none). ENOTFOUND for an unknown technician.
func (e *Engine) Settings(ctx context.Context, techID string) (*smp.TechnicianSettings, error) {
	if _, err := e.d.Store.FindTechnicianByID(ctx, techID); err != nil {
		return nil, err
	}
	all, err := e.d.Store.FindTechnicianSettings(ctx, techID)
	if err != nil {
		return nil, err
	}
	if s := all[techID]; s != nil {
		return s, nil
	}
	return &smp.TechnicianSettings{TechnicianID: techID, WeeklyDaysOff: []string{}, DaysOff: []string{}}, nil
}

// SetSettings replaces a technician's settings. by is nil when the
// technician sets their own; ops' changes (by set) are audited in the same
// transaction, with the reason. The next dispatch search honours them.
// EINVALID for malformed settings, ENOTFOUND for an unknown technician.
func (e *Engine) SetSettings(ctx context.Context, s smp.TechnicianSettings, by *smp.Principal, reason string) (*smp.TechnicianSettings, error) {
	if err := s.Normalize(); err != nil {
		return nil, err
	}
	s.UpdatedAt = e.cfg.Now().UTC()
	s.UpdatedBy = "technician:" + s.TechnicianID
	if by != nil {
		s.UpdatedBy = by.Name
	}
	err := e.d.Store.InTx(ctx, func(tx smp.Tx) error {
		before, err := tx.PutTechnicianSettings(ctx, &s)
		if err != nil || by == nil {
			return err
		}
		a := smp.AuditEntry{At: s.UpdatedAt, Actor: by.Name, Role: by.Role, Action: "technicians.settings", Target: "technician:" + s.TechnicianID,
			After: settingsJSON(&s), Reason: strings.TrimSpace(reason)}
		if before != nil {
			a.Before = settingsJSON(before)
		}
		return tx.AddAudit(ctx, a)
	})
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func settingsJSON(s *smp.TechnicianSettings) string {
	v := *s
	v.UpdatedAt, v.UpdatedBy = v.UpdatedAt.UTC(), ""
	b, _ := json.Marshal(v)
	return string(b)
}
