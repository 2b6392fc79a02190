package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"smp"
)

// Logins on Redis: customers' and technicians' sessions under the
// runbook's session:* keys (session:login:{id}, a HASH whose TTL is the
// session's lifetime, and session:owner:{kind}:{owner}, the SET of an
// owner's session ids), one-time codes (otp:{phone}) and rate counters
// (ratelimit:{key}:{window}). Every key expires by itself: an abandoned
// login leaves nothing behind (INC-004's "quá nhiều active sessions").

var (
	_ smp.SessionStore = Logins{}
	_ smp.OTPStore     = Logins{}
	_ smp.RateCounter  = Logins{}
)

// Logins is the Redis smp.SessionStore, smp.OTPStore and smp.RateCounter.
type Logins struct{ s *Store }

// Logins returns the login stores.
func (s *Store) Logins() Logins { return Logins{s} }

func (l Logins) sessionKey(id string) string { return l.s.key(PrefixLoginSession, id) }
func (l Logins) ownerKey(kind, owner string) string {
	return l.s.key(PrefixSessionOwner, kind, ":", owner)
}

// createSession: the session's HASH unless the id exists, its TTL, and
// its id in the owner's SET, whose TTL is raised to the longest session's.
var createSession = redis.NewScript(`#!lua
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner_kind', ARGV[2], 'owner_id', ARGV[3], 'secret_hash', ARGV[4], 'created_at', ARGV[5], 'expires_at', ARGV[6], 'ip', ARGV[7])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[8]) then redis.call('PEXPIRE', KEYS[2], ARGV[8]) end
return 1`)

// CreateSession stores a new session with a TTL of its lifetime.
func (l Logins) CreateSession(ctx context.Context, s *smp.Session) error {
	if s.ID == "" || s.OwnerKind == "" || s.OwnerID == "" || s.ExpiresAt.IsZero() {
		return smp.Errorf(smp.EINVALID, "create session: id, owner and expiry are required")
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"id", s.ID, 32}, {"owner_kind", s.OwnerKind, 16}, {"owner_id", s.OwnerID, 64}, {"secret_hash", s.SecretHash, 64}, {"ip", s.IP, 64}} {
		if n := len([]rune(f.v)); n > f.max {
			return smp.Errorf(smp.EINVALID, "create session: %s is %d characters long, at most %d", f.name, n, f.max)
		}
	}
	ttl := s.ExpiresAt.Sub(s.CreatedAt)
	if s.CreatedAt.IsZero() || ttl < time.Second {
		ttl = time.Second
	}
	n, err := createSession.Run(ctx, l.s.rdb, []string{l.sessionKey(s.ID), l.ownerKey(s.OwnerKind, s.OwnerID)},
		s.ID, s.OwnerKind, s.OwnerID, s.SecretHash, s.CreatedAt.UnixMicro(), s.ExpiresAt.UnixMicro(), s.IP, ttl.Milliseconds()).Int()
	if err != nil {
		return wrap("create session", err)
	}
	if n == 0 {
		return smp.Errorf(smp.ECONFLICT, "session %s exists", s.ID)
	}
	return nil
}

func sessionFrom(id string, m map[string]string) (*smp.Session, error) {
	created, err1 := strconv.ParseInt(m["created_at"], 10, 64)
	expires, err2 := strconv.ParseInt(m["expires_at"], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("redis: session %s: %w", id, err)
	}
	return &smp.Session{ID: id, OwnerKind: m["owner_kind"], OwnerID: m["owner_id"], SecretHash: m["secret_hash"],
		CreatedAt: time.UnixMicro(created).UTC(), ExpiresAt: time.UnixMicro(expires).UTC(), IP: m["ip"]}, nil
}

// FindSession returns a session by id.
func (l Logins) FindSession(ctx context.Context, id string) (*smp.Session, error) {
	m, err := l.s.rdb.HGetAll(ctx, l.sessionKey(id)).Result()
	if err != nil {
		return nil, wrap("find session", err)
	}
	if len(m) == 0 {
		return nil, smp.Errorf(smp.ENOTFOUND, "no session %s", id)
	}
	return sessionFrom(id, m)
}

// FindSessions lists sessions, newest first: an owner's from their SET,
// everyone's by SCAN.
func (l Logins) FindSessions(ctx context.Context, f smp.SessionFilter) ([]*smp.Session, error) {
	var ids []string
	if f.OwnerID != "" && f.OwnerKind != "" {
		var err error
		if ids, err = l.s.rdb.SMembers(ctx, l.ownerKey(f.OwnerKind, f.OwnerID)).Result(); err != nil {
			return nil, wrap("find sessions", err)
		}
	} else {
		prefix := l.s.key(PrefixLoginSession)
		iter := l.s.rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			ids = append(ids, iter.Val()[len(prefix):])
		}
		if err := iter.Err(); err != nil {
			return nil, wrap("find sessions", err)
		}
	}
	pipe := l.s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.HGetAll(ctx, l.sessionKey(id))
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, wrap("find sessions", err)
		}
	}
	var out []*smp.Session
	for i, id := range ids {
		m := cmds[i].Val()
		if len(m) == 0 {
			continue // expired: its id leaves the owner's SET with the SET
		}
		s, err := sessionFrom(id, m)
		if err != nil {
			return nil, err
		}
		if (f.OwnerKind != "" && s.OwnerKind != f.OwnerKind) || (f.OwnerID != "" && s.OwnerID != f.OwnerID) ||
			(!f.Now.IsZero() && !s.ExpiresAt.After(f.Now)) {
			continue
		}
		out = append(out, s)
	}
	sortSessions(out)
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	return out[:min(len(out), limit)], nil
}

func sortSessions(ss []*smp.Session) {
	for i := 1; i < len(ss); i++ {
		for j := i; j > 0 && newer(ss[j], ss[j-1]); j-- {
			ss[j], ss[j-1] = ss[j-1], ss[j]
		}
	}
}

func newer(a, b *smp.Session) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.ID > b.ID
}

// deleteSession: the HASH and its id in the owner's SET; returns the HASH.
var deleteSession = redis.NewScript(`#!lua flags=allow-oom
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return h end
local kind, owner
for i = 1, #h, 2 do
  if h[i] == 'owner_kind' then kind = h[i+1] elseif h[i] == 'owner_id' then owner = h[i+1] end
end
redis.call('DEL', KEYS[1])
redis.call('SREM', ARGV[2] .. kind .. ':' .. owner, ARGV[1])
return h`)

// DeleteSession removes a session and returns it.
func (l Logins) DeleteSession(ctx context.Context, id string) (*smp.Session, error) {
	v, err := deleteSession.Run(ctx, l.s.rdb, []string{l.sessionKey(id)}, id, l.s.key(PrefixSessionOwner)).StringSlice()
	if err != nil {
		return nil, wrap("delete session", err)
	}
	if len(v) == 0 {
		return nil, smp.Errorf(smp.ENOTFOUND, "no session %s", id)
	}
	m := map[string]string{}
	for i := 0; i+1 < len(v); i += 2 {
		m[v[i]] = v[i+1]
	}
	return sessionFrom(id, m)
}

// DeleteSessions removes every session of an owner.
func (l Logins) DeleteSessions(ctx context.Context, ownerKind, ownerID string) (int, error) {
	set := l.ownerKey(ownerKind, ownerID)
	ids, err := l.s.rdb.SMembers(ctx, set).Result()
	if err != nil {
		return 0, wrap("delete sessions", err)
	}
	n := 0
	for _, id := range ids {
		if _, err := l.DeleteSession(ctx, id); err == nil {
			n++
		} else if smp.ErrorCode(err) != smp.ENOTFOUND {
			return n, err
		}
	}
	return n, wrap("delete sessions", l.s.rdb.Del(ctx, set).Err())
}

func (l Logins) otpKey(phone string) string { return l.s.key(PrefixOTP, phone) }

// PutOTP replaces the phone's challenge for ttl.
func (l Logins) PutOTP(ctx context.Context, c smp.OTPChallenge, ttl time.Duration) error {
	key := l.otpKey(c.Phone)
	_, err := l.s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		p.HSet(ctx, key, "code_hash", c.CodeHash, "kind", c.Kind, "expires_at", c.ExpiresAt.UnixMicro(), "attempts", 0)
		p.PExpire(ctx, key, max(ttl, time.Millisecond))
		return nil
	})
	return wrap("put otp", err)
}

var attemptOTP = redis.NewScript(`#!lua
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return redis.call('HGETALL', KEYS[1])`)

// AttemptOTP counts an attempt and returns the challenge.
func (l Logins) AttemptOTP(ctx context.Context, phone string) (smp.OTPChallenge, bool, error) {
	v, err := attemptOTP.Run(ctx, l.s.rdb, []string{l.otpKey(phone)}).StringSlice()
	if err != nil {
		return smp.OTPChallenge{}, false, wrap("attempt otp", err)
	}
	if len(v) == 0 {
		return smp.OTPChallenge{}, false, nil
	}
	m := map[string]string{}
	for i := 0; i+1 < len(v); i += 2 {
		m[v[i]] = v[i+1]
	}
	exp, err1 := strconv.ParseInt(m["expires_at"], 10, 64)
	attempts, err2 := strconv.Atoi(m["attempts"])
	if err := errors.Join(err1, err2); err != nil {
		return smp.OTPChallenge{}, false, fmt.Errorf("redis: otp: %w", err)
	}
	return smp.OTPChallenge{Phone: phone, CodeHash: m["code_hash"], Kind: m["kind"], ExpiresAt: time.UnixMicro(exp).UTC(), Attempts: attempts}, true, nil
}

var deleteOTP = redis.NewScript(`#!lua flags=allow-oom
if redis.call('HGET', KEYS[1], 'code_hash') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// DeleteOTP removes the challenge if its code hash is codeHash.
func (l Logins) DeleteOTP(ctx context.Context, phone, codeHash string) (bool, error) {
	n, err := deleteOTP.Run(ctx, l.s.rdb, []string{l.otpKey(phone)}, codeHash).Int()
	return n == 1, wrap("delete otp", err)
}

var hitRate = redis.NewScript(`#!lua
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

// Hit counts an event in key's window holding now: one counter per
// window, expiring with it.
func (l Logins) Hit(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error) {
	if window <= 0 {
		return 0, smp.Errorf(smp.EINVALID, "rate window must be positive")
	}
	k := l.s.key(PrefixRate, key, ":", strconv.FormatInt(now.UnixNano()/int64(window), 10))
	n, err := hitRate.Run(ctx, l.s.rdb, []string{k}, window.Milliseconds()).Int64()
	return n, wrap("rate limit", err)
}
