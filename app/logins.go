package app

import (
	"context"

	"smp"
	"smp/auth"
	"smp/inmem"
	"smp/internal/startstop"
	"smp/sim"
	"smp/smsgw"
)

// initLogins builds customers' and technicians' logins: codes and rate
// counters in process (embedded) or on Redis (shared by every process),
// sessions in the database (embedded) or under Redis's session:* keys,
// and the SMS provider: Cfg.SMS, the HTTP gateway at --sms-url, or the
// simulator (its outbox at GET /admin/sms/outbox).
func (a *App) initLogins(ctx context.Context) (startstop.Service, error) {
	cfg := auth.LoginConfig{Directory: auth.CatalogDirectory(a.Store), SessionTTL: a.Cfg.SessionTTL, Now: a.Cfg.Now, Logger: a.Log}
	if a.Redis != nil {
		l := a.Redis.Logins()
		cfg.Codes, cfg.Limits, cfg.Sessions = l, l, l
	} else {
		codes := inmem.NewOTP(a.Cfg.Now)
		cfg.Codes, cfg.Limits, cfg.Sessions = codes, codes, a.Store
	}
	switch {
	case a.Cfg.SMS != nil:
		cfg.Sender = a.Cfg.SMS
		if s, ok := a.Cfg.SMS.(*sim.SMS); ok {
			a.SMS = s
		}
	case a.Cfg.SMSURL != "":
		gw, err := smsgw.New(smsgw.Config{URL: a.Cfg.SMSURL, Token: a.Cfg.SMSToken})
		if err != nil {
			return nil, err
		}
		cfg.Sender = gw
	default:
		a.SMS = &sim.SMS{Now: a.Cfg.Now}
		cfg.Sender = a.SMS
		a.Log.Warn("no --sms-url: login codes go to the SMS simulator; admins read them at GET /admin/sms/outbox")
	}
	a.sessions = cfg.Sessions
	var err error
	a.Logins, err = auth.NewLogins(cfg)
	return nil, err
}

// loggedOut tells a technician whose sessions ops revoked, wherever their
// WebSocket is (through Redis to another process), and the hub closes it.
func (a *App) loggedOut(kind, ownerID string) {
	a.logOut(kind, ownerID, "session revoked; log in again")
}

// logOut sends a technician logged_out with reason wherever their
// WebSocket is (through Redis to another process); the hub holding it
// closes it after writing the message.
func (a *App) logOut(kind, ownerID, reason string) {
	if kind != smp.OwnerTechnician {
		return
	}
	var n smp.Notifier = a.Hub
	if a.broadcaster != nil {
		n = a.broadcaster
	}
	if n != nil {
		n.Notify(ownerID, smp.TechnicianMessage{Type: smp.MessageLoggedOut, Reason: reason})
	}
}

// technicianSuspended takes a technician onboarding has just suspended
// out of dispatch at once, whatever process holds their connection:
// offline in the geo index with their open offers withdrawn (the engine),
// then their live WebSocket told (logged_out) and closed, as a revoked
// session's is. Their session is refused from now on (auth checks the
// account per request), and so is a reconnect.
func (a *App) technicianSuspended(ctx context.Context, id string) {
	if a.Engine != nil {
		if err := a.Engine.TechnicianSuspended(ctx, id); err != nil {
			// Candidate selection skips suspended technicians anyway.
			a.Log.Warn("suspended technician: taking them out of dispatch", "technician_id", id, "err", err)
		}
	}
	a.logOut(smp.OwnerTechnician, id, "account suspended")
}

// smsOutbox is the simulated provider's outbox for the admin API, or nil.
func (a *App) smsOutbox() func() any {
	if a.SMS == nil {
		return nil
	}
	return func() any {
		msgs := a.SMS.Outbox()
		if msgs == nil {
			msgs = []sim.SMSMessage{}
		}
		return msgs
	}
}

var _ smp.SMSSender = (*sim.SMS)(nil)
