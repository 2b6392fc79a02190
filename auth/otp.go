package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"smp"
)

// Account is a customer or technician a phone number logs in as.
type Account struct {
	Kind string // smp.OwnerTechnician or smp.OwnerCustomer
	ID   string
}

// Directory finds the accounts registered with a phone number (E.164).
// An account that may not log in (a suspended technician) is left out.
type Directory interface {
	FindAccountsByPhone(ctx context.Context, phone string) ([]Account, error)
	// AccountActive reports whether an account may still use its
	// sessions (a technician suspended since logging in may not).
	AccountActive(ctx context.Context, a Account) (bool, error)
}

// PhoneBook is the catalogue's lookups by phone (smp.CatalogStore's).
type PhoneBook interface {
	FindTechnicianByPhone(ctx context.Context, phone string) (*smp.Technician, error)
	FindCustomerByPhone(ctx context.Context, phone string) (*smp.Customer, error)
	FindTechnicianByID(ctx context.Context, id string) (*smp.Technician, error)
	FindCustomerByID(ctx context.Context, id string) (*smp.Customer, error)
}

// CatalogDirectory is the Directory of the catalogue: the technician and
// the customer with the number, if active (a suspended technician or an
// inactive customer cannot log in).
func CatalogDirectory(pb PhoneBook) Directory { return catalogDirectory{pb} }

type catalogDirectory struct{ pb PhoneBook }

func (d catalogDirectory) AccountActive(ctx context.Context, a Account) (bool, error) {
	var status smp.CatalogStatus
	switch a.Kind {
	case smp.OwnerTechnician:
		t, err := d.pb.FindTechnicianByID(ctx, a.ID)
		if smp.ErrorCode(err) == smp.ENOTFOUND {
			return false, nil
		} else if err != nil {
			return false, err
		}
		status = t.Status
	case smp.OwnerCustomer:
		c, err := d.pb.FindCustomerByID(ctx, a.ID)
		if smp.ErrorCode(err) == smp.ENOTFOUND {
			return false, nil
		} else if err != nil {
			return false, err
		}
		status = c.Status
	default:
		return false, nil
	}
	return status.Active(), nil
}

func (d catalogDirectory) FindAccountsByPhone(ctx context.Context, phone string) ([]Account, error) {
	var out []Account
	t, err := d.pb.FindTechnicianByPhone(ctx, phone)
	switch {
	case err == nil && t.Status.Active():
		out = append(out, Account{Kind: smp.OwnerTechnician, ID: t.ID})
	case err != nil && smp.ErrorCode(err) != smp.ENOTFOUND:
		return nil, err
	}
	c, err := d.pb.FindCustomerByPhone(ctx, phone)
	switch {
	case err == nil && c.Status.Active():
		out = append(out, Account{Kind: smp.OwnerCustomer, ID: c.ID})
	case err != nil && smp.ErrorCode(err) != smp.ENOTFOUND:
		return nil, err
	}
	return out, nil
}

// LoginConfig configures Logins. Sender, Codes, Limits, Sessions and
// Directory are required.
type LoginConfig struct {
	Sender    smp.SMSSender
	Codes     smp.OTPStore
	Limits    smp.RateCounter
	Sessions  smp.SessionStore
	Directory Directory
	// CodeTTL: a code expires this long after it was sent (5 minutes).
	CodeTTL time.Duration
	// MaxAttempts against one code (5); then a new code is needed.
	MaxAttempts int
	// SessionTTL is a session's lifetime (30 days).
	SessionTTL time.Duration
	// Window of the rate limits (10 minutes) and how many requests each
	// allows in it: codes sent per phone (3) and per IP (20), verifications
	// per phone (10) and per IP (50).
	Window           time.Duration
	SendsPerPhone    int64
	SendsPerIP       int64
	VerifiesPerPhone int64
	VerifiesPerIP    int64
	// Rand is the source of codes and tokens (crypto/rand).
	Rand   io.Reader
	Now    func() time.Time
	Logger *slog.Logger
}

func (c *LoginConfig) setDefaults() {
	if c.CodeTTL <= 0 {
		c.CodeTTL = 5 * time.Minute
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.SessionTTL <= 0 {
		c.SessionTTL = 30 * 24 * time.Hour
	}
	if c.Window <= 0 {
		c.Window = 10 * time.Minute
	}
	if c.SendsPerPhone <= 0 {
		c.SendsPerPhone = 3
	}
	if c.SendsPerIP <= 0 {
		c.SendsPerIP = 20
	}
	if c.VerifiesPerPhone <= 0 {
		c.VerifiesPerPhone = 10
	}
	if c.VerifiesPerIP <= 0 {
		c.VerifiesPerIP = 50
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Logins logs customers and technicians in with a one-time code sent by
// SMS, and resolves the session tokens it hands out. Codes are kept
// hashed, compared in constant time, and never logged.
type Logins struct {
	cfg LoginConfig
	log *slog.Logger
}

// NewLogins returns the login service; EINVALID without a dependency.
func NewLogins(cfg LoginConfig) (*Logins, error) {
	if cfg.Sender == nil || cfg.Codes == nil || cfg.Limits == nil || cfg.Sessions == nil || cfg.Directory == nil {
		return nil, smp.Errorf(smp.EINVALID, "auth: logins need an SMS sender, code and rate stores, a session store and a directory")
	}
	cfg.setDefaults()
	return &Logins{cfg: cfg, log: cfg.Logger.With("service", "logins")}, nil
}

// SessionTTL is a new session's lifetime.
func (l *Logins) SessionTTL() time.Duration { return l.cfg.SessionTTL }

// RateLimited is the error of a request over a rate limit: its code is
// smp.ETOOMANY and RetryAfter says when the window ends.
type RateLimited struct {
	Err        *smp.Error
	RetryAfter time.Duration
}

func (e *RateLimited) Error() string { return e.Err.Error() }
func (e *RateLimited) Unwrap() error { return e.Err }

// limit counts one request against key and refuses it over max.
func (l *Logins) limit(ctx context.Context, key string, max int64, what string) error {
	now := l.cfg.Now()
	n, err := l.cfg.Limits.Hit(ctx, key, l.cfg.Window, now)
	if err != nil {
		return err
	}
	if n > max {
		retry := now.Truncate(l.cfg.Window).Add(l.cfg.Window).Sub(now)
		return &RateLimited{Err: smp.Errorf(smp.ETOOMANY, "too many %s; try again in %d seconds", what, int(retry.Seconds())+1), RetryAfter: retry}
	}
	return nil
}

// account picks the account to log in as: kind when given, the only one
// otherwise. ok is false when there is none.
func account(accts []Account, kind string) (Account, bool, error) {
	var match []Account
	for _, a := range accts {
		if kind == "" || a.Kind == kind {
			match = append(match, a)
		}
	}
	switch {
	case len(match) == 0:
		return Account{}, false, nil
	case len(match) > 1:
		return Account{}, false, smp.Errorf(smp.EINVALID, "this phone number has a customer and a technician account: say which with \"as\"")
	}
	return match[0], true, nil
}

func checkKind(kind string) error {
	if kind != "" && kind != smp.OwnerTechnician && kind != smp.OwnerCustomer {
		return smp.Errorf(smp.EINVALID, "as must be %q or %q", smp.OwnerTechnician, smp.OwnerCustomer)
	}
	return nil
}

// codeHash binds a code to its phone, so equal codes of two phones differ.
func codeHash(phone, code string) string {
	h := sha256.Sum256([]byte(phone + "\x00" + code))
	return hex.EncodeToString(h[:])
}

func (l *Logins) code() (string, error) {
	b := make([]byte, 4)
	if _, err := io.ReadFull(l.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("auth: random code: %w", err)
	}
	n := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) % 1_000_000
	return fmt.Sprintf("%06d", n), nil
}

// SendCode sends a one-time code to phone by SMS (kind, "" or
// smp.OwnerTechnician/smp.OwnerCustomer, picks the account when the number
// has both), from ip. It answers the same whether or not the number has an
// account, so the endpoint does not tell who is registered; only a
// registered number gets a text. It returns how long the code lives.
// EINVALID for a malformed phone or kind, ETOOMANY (*RateLimited) over the
// limits per phone and per IP, EUNAVAILABLE when the SMS provider refused.
func (l *Logins) SendCode(ctx context.Context, phone, kind, ip string) (time.Duration, error) {
	phone, err := smp.ParsePhone(phone)
	if err != nil {
		return 0, err
	}
	if err := checkKind(kind); err != nil {
		return 0, err
	}
	if err := l.limit(ctx, "otp:ip:"+ip, l.cfg.SendsPerIP, "codes requested from this address"); err != nil {
		return 0, err
	}
	if err := l.limit(ctx, "otp:phone:"+phone, l.cfg.SendsPerPhone, "codes requested for this number"); err != nil {
		return 0, err
	}
	accts, err := l.cfg.Directory.FindAccountsByPhone(ctx, phone)
	if err != nil {
		return 0, err
	}
	acct, ok, err := account(accts, kind)
	if err != nil {
		return 0, err
	}
	if !ok {
		l.log.Info("login code requested for a number without an account", "ip", ip)
		return l.cfg.CodeTTL, nil
	}
	code, err := l.code()
	if err != nil {
		return 0, err
	}
	hash := codeHash(phone, code)
	c := smp.OTPChallenge{Phone: phone, CodeHash: hash, Kind: acct.Kind, ExpiresAt: l.cfg.Now().Add(l.cfg.CodeTTL)}
	if err := l.cfg.Codes.PutOTP(ctx, c, l.cfg.CodeTTL); err != nil {
		return 0, err
	}
	text := fmt.Sprintf("SMP: mã đăng nhập của bạn là %s, hết hạn sau %d phút. Không chia sẻ mã này.", code, int(l.cfg.CodeTTL.Minutes()))
	if err := l.cfg.Sender.SendSMS(ctx, phone, text); err != nil {
		// A code nobody received must not stay valid.
		l.cfg.Codes.DeleteOTP(context.WithoutCancel(ctx), phone, hash)
		l.log.Warn("login code not sent: the SMS provider failed", "err", err)
		return 0, smp.Errorf(smp.EUNAVAILABLE, "the code could not be sent; try again shortly")
	}
	return l.cfg.CodeTTL, nil
}

// errBadCode is the one answer to every wrong, expired, used or unknown
// code, so a guesser learns nothing.
func errBadCode() error {
	return smp.Errorf(smp.EUNAUTHORIZED, "the code is wrong or has expired; request a new one")
}

// Verify exchanges a code for a session: the bearer token (returned once,
// kept only hashed) and the session. EINVALID for a malformed phone, code
// or kind; EUNAUTHORIZED for a wrong, expired or used code, or one with
// too many attempts (then a new code is needed); ETOOMANY (*RateLimited).
func (l *Logins) Verify(ctx context.Context, phone, code, kind, ip string) (string, *smp.Session, error) {
	phone, err := smp.ParsePhone(phone)
	if err != nil {
		return "", nil, err
	}
	if err := checkKind(kind); err != nil {
		return "", nil, err
	}
	code = strings.TrimSpace(code)
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return "", nil, smp.Errorf(smp.EINVALID, "code must be the 6 digits of the SMS")
	}
	if err := l.limit(ctx, "verify:ip:"+ip, l.cfg.VerifiesPerIP, "attempts from this address"); err != nil {
		return "", nil, err
	}
	if err := l.limit(ctx, "verify:phone:"+phone, l.cfg.VerifiesPerPhone, "attempts for this number"); err != nil {
		return "", nil, err
	}
	c, ok, err := l.cfg.Codes.AttemptOTP(ctx, phone)
	if err != nil {
		return "", nil, err
	}
	if !ok || !l.cfg.Now().Before(c.ExpiresAt) || (kind != "" && kind != c.Kind) {
		return "", nil, errBadCode()
	}
	if c.Attempts > l.cfg.MaxAttempts {
		l.cfg.Codes.DeleteOTP(ctx, phone, c.CodeHash)
		return "", nil, smp.Errorf(smp.EUNAUTHORIZED, "too many wrong codes; request a new one")
	}
	if subtle.ConstantTimeCompare([]byte(codeHash(phone, code)), []byte(c.CodeHash)) != 1 {
		return "", nil, errBadCode()
	}
	// Used once: of two verifications with the right code, one wins.
	if deleted, err := l.cfg.Codes.DeleteOTP(ctx, phone, c.CodeHash); err != nil {
		return "", nil, err
	} else if !deleted {
		return "", nil, errBadCode()
	}
	accts, err := l.cfg.Directory.FindAccountsByPhone(ctx, phone)
	if err != nil {
		return "", nil, err
	}
	acct, ok, err := account(accts, c.Kind)
	if err != nil {
		return "", nil, err
	}
	if !ok {
		// Suspended or removed since the code was sent.
		return "", nil, errBadCode()
	}
	return l.newSession(ctx, acct, ip)
}

func (l *Logins) newSession(ctx context.Context, acct Account, ip string) (string, *smp.Session, error) {
	b := make([]byte, 8+32)
	if _, err := io.ReadFull(l.cfg.Rand, b); err != nil {
		return "", nil, fmt.Errorf("auth: random token: %w", err)
	}
	id, secret := hex.EncodeToString(b[:8]), hex.EncodeToString(b[8:])
	now := l.cfg.Now().UTC()
	s := &smp.Session{ID: id, OwnerKind: acct.Kind, OwnerID: acct.ID, SecretHash: HashToken(secret), CreatedAt: now,
		ExpiresAt: now.Add(l.cfg.SessionTTL), IP: ip}
	if err := l.cfg.Sessions.CreateSession(ctx, s); err != nil {
		return "", nil, err
	}
	l.log.Info("logged in", "owner_kind", acct.Kind, "owner_id", acct.ID, "session_id", id)
	return SessionPrefix + id + "_" + secret, s, nil
}

// SessionPrefix starts every session token: "ses_<id>_<secret>".
const SessionPrefix = "ses_"

// IsSessionToken reports whether token has a session token's shape.
func IsSessionToken(token string) bool { return strings.HasPrefix(token, SessionPrefix) }

// Resolve returns the live session of a token: EUNAUTHORIZED for a
// malformed, unknown, revoked or expired one, or one whose account has
// been suspended or deactivated since.
func (l *Logins) Resolve(ctx context.Context, token string) (*smp.Session, error) {
	rest, ok := strings.CutPrefix(token, SessionPrefix)
	id, secret, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 16 || len(secret) != 64 {
		return nil, smp.Errorf(smp.EUNAUTHORIZED, "invalid session token")
	}
	s, err := l.cfg.Sessions.FindSession(ctx, id)
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		return nil, smp.Errorf(smp.EUNAUTHORIZED, "the session has ended; log in again")
	} else if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(HashToken(secret)), []byte(s.SecretHash)) != 1 {
		return nil, smp.Errorf(smp.EUNAUTHORIZED, "invalid session token")
	}
	if !l.cfg.Now().Before(s.ExpiresAt) {
		return nil, smp.Errorf(smp.EUNAUTHORIZED, "the session has expired; log in again")
	}
	// Suspended (or deactivated) since logging in: the session no longer
	// works, without waiting for ops to revoke it.
	if ok, err := l.cfg.Directory.AccountActive(ctx, Account{Kind: s.OwnerKind, ID: s.OwnerID}); err != nil {
		return nil, err
	} else if !ok {
		return nil, smp.Errorf(smp.EUNAUTHORIZED, "this account is suspended")
	}
	return s, nil
}

// Logout ends the token's own session. EUNAUTHORIZED as Resolve.
func (l *Logins) Logout(ctx context.Context, token string) error {
	s, err := l.Resolve(ctx, token)
	if err != nil {
		return err
	}
	_, err = l.cfg.Sessions.DeleteSession(ctx, s.ID)
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		return nil
	}
	return err
}
