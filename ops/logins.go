package ops

import (
	"context"
	"strings"

	"smp"
	"smp/auth"
)

// Sessions is the session store ops reads and revokes from
// (smp.SessionStore: the database, or Redis's session:* keys).
type Sessions interface {
	FindSession(ctx context.Context, id string) (*smp.Session, error)
	DeleteSession(ctx context.Context, id string) (*smp.Session, error)
	DeleteSessions(ctx context.Context, ownerKind, ownerID string) (int, error)
}

// Technicians sets a technician's settings with its audit entry
// (dispatch.Engine).
type Technicians interface {
	SetSettings(ctx context.Context, s smp.TechnicianSettings, by *smp.Principal, reason string) (*smp.TechnicianSettings, error)
}

// RevokeSession ends one login session (the customer or technician must
// log in again: their next request is a 401). The session store may be
// Redis, outside the database: the intent is recorded before, the outcome
// after. EFORBIDDEN; EINVALID without a reason; ENOTFOUND for an unknown
// (or already ended) session; EUNAVAILABLE without logins.
func (s *Service) RevokeSession(ctx context.Context, p smp.Principal, id, reason string) (*smp.Session, error) {
	if err := auth.Check(p, "sessions.revoke"); err != nil {
		return nil, err
	}
	if s.cfg.Sessions == nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "logins are not served in this process")
	}
	if err := needReason(reason, "reason is required to revoke a session"); err != nil {
		return nil, err
	}
	cur, err := s.cfg.Sessions.FindSession(ctx, id)
	if err != nil {
		return nil, err
	}
	before := jsonString(map[string]any{"owner_kind": cur.OwnerKind, "owner_id": cur.OwnerID, "expires_at": cur.ExpiresAt})
	err = s.external(ctx, p, "sessions.revoke", "session:"+id, before, reason, map[string]any{"revoked": true},
		func(ctx context.Context) (map[string]any, error) {
			_, err := s.cfg.Sessions.DeleteSession(ctx, id)
			return map[string]any{"revoked": true}, err
		})
	if err != nil {
		return nil, err
	}
	s.loggedOut(cur.OwnerKind, cur.OwnerID)
	return cur, nil
}

func (s *Service) loggedOut(kind, ownerID string) {
	if s.cfg.LoggedOut != nil {
		s.cfg.LoggedOut(kind, ownerID)
	}
}

// RevokeSessions ends every session of a customer or technician (kind is
// smp.OwnerTechnician or smp.OwnerCustomer) and returns how many there
// were, audited as RevokeSession. EFORBIDDEN; EINVALID for a missing
// owner or reason or an unknown kind; EUNAVAILABLE without logins.
func (s *Service) RevokeSessions(ctx context.Context, p smp.Principal, kind, ownerID, reason string) (int, error) {
	if err := auth.Check(p, "sessions.revoke"); err != nil {
		return 0, err
	}
	if s.cfg.Sessions == nil {
		return 0, smp.Errorf(smp.EUNAVAILABLE, "logins are not served in this process")
	}
	if kind != smp.OwnerTechnician && kind != smp.OwnerCustomer {
		return 0, smp.Errorf(smp.EINVALID, "owner_kind must be %q or %q", smp.OwnerTechnician, smp.OwnerCustomer)
	}
	if strings.TrimSpace(ownerID) == "" || len(ownerID) > 64 {
		return 0, smp.Errorf(smp.EINVALID, "owner_id is required (at most 64 characters)")
	}
	if err := needReason(reason, "reason is required to revoke sessions"); err != nil {
		return 0, err
	}
	var n int
	err := s.external(ctx, p, "sessions.revoke", kind+":"+ownerID, "", reason, map[string]any{"all_sessions_of": kind + ":" + ownerID},
		func(ctx context.Context) (map[string]any, error) {
			var err error
			n, err = s.cfg.Sessions.DeleteSessions(ctx, kind, ownerID)
			return map[string]any{"revoked": n}, err
		})
	if err == nil {
		s.loggedOut(kind, ownerID)
	}
	return n, err
}

// SetTechnicianSettings sets a technician's working hours, days off and
// travel radius on their behalf, audited in the same transaction with the
// settings before and after. EFORBIDDEN; EINVALID for bad settings or a
// missing reason; ENOTFOUND for an unknown technician; EUNAVAILABLE
// without the engine.
func (s *Service) SetTechnicianSettings(ctx context.Context, p smp.Principal, st smp.TechnicianSettings, reason string) (*smp.TechnicianSettings, error) {
	if err := auth.Check(p, "technicians.settings"); err != nil {
		return nil, err
	}
	if s.cfg.Technicians == nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "technicians' settings are not served in this process")
	}
	if err := needReason(reason, "reason is required to change a technician's settings"); err != nil {
		return nil, err
	}
	return s.cfg.Technicians.SetSettings(ctx, st, &p, reason)
}
