package smp

import (
	"context"
	"time"
)

// Logins of customers and technicians: a one-time code sent by SMS
// (SMSSender) is exchanged for a session (SessionStore). The codes and the
// rate counters are short-lived shared state (OTPStore, RateCounter: in
// process on the embedded default, on Redis otherwise); sessions are kept
// by the database on the embedded default and under the runbook's
// session:* keys on Redis.

// MessageLoggedOut tells a technician's app that ops revoked its session
// or suspended the technician; the WebSocket closes after it.
const MessageLoggedOut = "logged_out"

// Session owner kinds.
const (
	OwnerTechnician = "technician"
	OwnerCustomer   = "customer"
)

// SMSSender sends a text message to a phone number (E.164). The provider
// is a third party: production uses an HTTP gateway, tests and the demo a
// simulator (sim.SMS). An error means the message was not accepted.
type SMSSender interface {
	SendSMS(ctx context.Context, to, text string) error
}

// Session is a customer's or technician's login. The bearer token is
// "ses_<id>_<secret>"; only the secret's hash is kept.
type Session struct {
	ID         string    `json:"id"`
	OwnerKind  string    `json:"owner_kind"`
	OwnerID    string    `json:"owner_id"`
	SecretHash string    `json:"-"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	// IP the login came from.
	IP string `json:"ip,omitempty"`
}

// SessionFilter narrows FindSessions. Sessions expired at Now are left
// out (zero Now: none are).
type SessionFilter struct {
	OwnerKind string
	OwnerID   string
	Now       time.Time
	Limit     int
}

// SessionStore keeps sessions. A backend may forget a session once it has
// expired (Redis keys carry its TTL); callers check ExpiresAt themselves.
type SessionStore interface {
	// CreateSession stores a new session. ECONFLICT if the id exists,
	// EINVALID for a session without an id, owner or expiry.
	CreateSession(ctx context.Context, s *Session) error
	// FindSession returns a session by id; ENOTFOUND if there is none.
	FindSession(ctx context.Context, id string) (*Session, error)
	// FindSessions lists sessions, newest first; a Limit of 0, negative
	// or above 1000 means 100. No codes.
	FindSessions(ctx context.Context, f SessionFilter) ([]*Session, error)
	// DeleteSession removes a session and returns it; ENOTFOUND if there
	// is none with id.
	DeleteSession(ctx context.Context, id string) (*Session, error)
	// DeleteSessions removes every session of an owner and returns how
	// many there were. No codes.
	DeleteSessions(ctx context.Context, ownerKind, ownerID string) (int, error)
}

// OTPChallenge is a one-time code waiting to be verified: only its hash is
// kept, with its expiry and the attempts made against it.
type OTPChallenge struct {
	Phone     string
	CodeHash  string
	Kind      string // the owner kind the code logs in as
	ExpiresAt time.Time
	Attempts  int
}

// OTPStore keeps the one-time codes, one per phone number.
type OTPStore interface {
	// PutOTP replaces the phone's challenge; the backend forgets it after
	// ttl at the latest. No codes.
	PutOTP(ctx context.Context, c OTPChallenge, ttl time.Duration) error
	// AttemptOTP counts one attempt against the phone's challenge and
	// returns it with Attempts including this one; ok is false when the
	// phone has none. Concurrent attempts are each counted. No codes.
	AttemptOTP(ctx context.Context, phone string) (c OTPChallenge, ok bool, err error)
	// DeleteOTP removes the phone's challenge if its code hash is
	// codeHash; deleted is false when it was not there (already used or
	// replaced), so a code logs in once. No codes.
	DeleteOTP(ctx context.Context, phone, codeHash string) (deleted bool, err error)
}

// RateCounter counts events per key in fixed windows.
type RateCounter interface {
	// Hit counts one event for key in the window of length window that
	// holds now, and returns the window's count including it. No codes.
	Hit(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error)
}
