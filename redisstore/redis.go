package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"smp"
)

// Config of the Redis backends.
type Config struct {
	Addr string
	// Prefix is prepended to every key (tests use it to share a server).
	Prefix string
	// PoolSize bounds connections (default 64). Redis counts each
	// connection's buffers in used_memory.
	PoolSize int
}

// Store bundles the Redis implementations on one client.
type Store struct {
	rdb    *redis.Client
	prefix string
	counts *commandCounts
}

// Open connects to Redis and checks that it answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Addr == "" {
		return nil, smp.Errorf(smp.EINVALID, "redis: address is required")
	}
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = 64
	}
	rdb := redis.NewClient(&redis.Options{Addr: cfg.Addr, PoolSize: cfg.PoolSize, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second})
	counts := &commandCounts{}
	rdb.AddHook(counts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		rdb.Close()
		return nil, smp.Errorf(smp.EUNAVAILABLE, "redis %s: %v", cfg.Addr, err)
	}
	return &Store{rdb: rdb, prefix: cfg.Prefix, counts: counts}, nil
}

// Client returns the underlying client.
func (s *Store) Client() *redis.Client { return s.rdb }

// Prefix returns the key prefix.
func (s *Store) Prefix() string { return s.prefix }

// Close closes the client.
func (s *Store) Close() error { return s.rdb.Close() }

func (s *Store) key(parts ...string) string { return s.prefix + strings.Join(parts, "") }

// IsOOM reports Redis's out-of-memory refusal (runbook INC-004), also
// when it aborted a MULTI whose commands it refused.
func IsOOM(err error) bool {
	return err != nil && (strings.HasPrefix(err.Error(), "OOM ") || strings.HasPrefix(err.Error(), "EXECABORT "))
}

// unreachable reports a Redis that cannot answer now: the network, a
// server still loading its data.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || strings.HasPrefix(err.Error(), "LOADING ")
}

// wrap translates Redis errors at the boundary: EUNAVAILABLE while Redis
// refuses writes (out of memory, INC-004) or cannot be reached, so that
// callers can wait for it instead of giving up.
func wrap(what string, err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	if IsOOM(err) {
		return smp.Errorf(smp.EUNAVAILABLE, "redis refused the write (out of memory?): %s: %v", what, err)
	}
	if unreachable(err) {
		return smp.Errorf(smp.EUNAVAILABLE, "redis unreachable: %s: %v", what, err)
	}
	return fmt.Errorf("redis: %s: %w", what, err)
}

// Queue is the Redis smp.DispatchQueue: LIST dispatch:queue:{CITY}
// (LPUSH, BRPOP) with a per-order dedupe marker.
type Queue struct{ s *Store }

var _ smp.DispatchQueue = Queue{}

// Queue returns the dispatch queue.
func (s *Store) Queue() Queue { return Queue{s} }

// Scripts carry a shebang so that Redis 7 refuses a writing script while
// out of memory instead of letting it grow past maxmemory (INC-004).
//
// The marker says "maybe queued": set at push, never deleted at pop (so a
// pop is one BRPOP, one round trip), it expires. A push that finds it
// looks in the list itself (LPOS) before suppressing the duplicate.
var pushScript = redis.NewScript(`#!lua
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  redis.call('LPUSH', KEYS[1], ARGV[1])
  return 1
end
if redis.call('LPOS', KEYS[1], ARGV[1]) then return 0 end
redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
redis.call('LPUSH', KEYS[1], ARGV[1])
return 1`)

// Push appends orderID unless it is already queued.
func (q Queue) Push(ctx context.Context, city, orderID string) error {
	keys := []string{q.s.key(smp.QueueKey(city)), q.s.key(PrefixQueued, orderID)}
	return wrap("push "+smp.QueueKey(city), pushScript.Run(ctx, q.s.rdb, keys, orderID, int(ttlOf(PrefixQueued).Seconds())).Err())
}

// Pop removes the oldest order, waiting up to wait: one BRPOP (the
// dedupe marker is left to expire; see pushScript).
func (q Queue) Pop(ctx context.Context, city string, wait time.Duration) (string, bool, error) {
	// BRPOP takes fractional seconds (Redis 6+); go-redis's BRPop would round up to 1 s.
	timeout := strconv.FormatFloat(max(wait, 10*time.Millisecond).Seconds(), 'f', 3, 64)
	res, err := q.s.rdb.Do(ctx, "BRPOP", q.s.key(smp.QueueKey(city)), timeout).StringSlice()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	} else if err != nil {
		if ctx.Err() != nil {
			return "", false, ctx.Err()
		}
		return "", false, wrap("pop", err)
	}
	return res[1], true, nil
}

// Len is the runbook's LLEN dispatch:queue:{CITY}.
func (q Queue) Len(ctx context.Context, city string) (int64, error) {
	n, err := q.s.rdb.LLen(ctx, q.s.key(smp.QueueKey(city))).Result()
	return n, wrap("llen", err)
}

// Locker is the Redis smp.Locker (SET NX PX; compare-and-delete).
type Locker struct{ s *Store }

var _ smp.Locker = Locker{}

// Locker returns the lease locker.
func (s *Store) Locker() Locker { return Locker{s} }

var lockScript = redis.NewScript(`#!lua
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`)

// Renewing only moves an expiry: allowed when Redis is full, so that a
// live holder keeps its lease through an out-of-memory episode (INC-004).
var renewScript = redis.NewScript(`#!lua flags=allow-oom
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)

// Unlocking only frees memory: allowed when Redis is full.
var unlockScript = redis.NewScript(`#!lua flags=allow-oom
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// TryLock takes key for ttl unless another owner holds it.
func (l Locker) TryLock(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	n, err := lockScript.Run(ctx, l.s.rdb, []string{l.s.key(key)}, owner, ttl.Milliseconds()).Int()
	return n == 1, wrap("lock", err)
}

// Renew extends owner's lease (PEXPIRE if it still holds key).
func (l Locker) Renew(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	n, err := renewScript.Run(ctx, l.s.rdb, []string{l.s.key(key)}, owner, ttl.Milliseconds()).Int()
	return n == 1, wrap("renew lock", err)
}

// Unlock releases key if owner holds it.
func (l Locker) Unlock(ctx context.Context, key, owner string) error {
	return wrap("unlock", unlockScript.Run(ctx, l.s.rdb, []string{l.s.key(key)}, owner).Err())
}

// Invitations is the Redis smp.InvitationStore: HASH
// dispatch:invitations:{order_id} (technician -> JSON), an index per
// technician and a set of the open ones.
type Invitations struct{ s *Store }

var _ smp.InvitationStore = Invitations{}

// Invitations returns the invitation store.
func (s *Store) Invitations() Invitations { return Invitations{s} }

func openMember(orderID, techID string) string { return orderID + "|" + techID }

// storedInvitation is an invitation as stored: with its expiry in unix
// milliseconds too, which the claim script of earlier versions compared
// with the caller's clock (kept while such processes may run; this
// version's script reads expires_at itself: luaExpired).
type storedInvitation struct {
	smp.Invitation
	ExpiresMS int64 `json:"exp_ms"`
}

// luaExpired is a Lua function expired(inv, s, ns): whether the decoded
// invitation inv has expired at unix time s seconds + ns nanoseconds,
// from its expires_at (RFC 3339 with up to nine fractional digits and a
// zone, as Go writes it) at full precision, as the Go side compares
// (!now.Before(ExpiresAt)). Every invitation has expires_at, also those
// written before exp_ms existed; an expiry it cannot read counts as
// expired.
const luaExpired = `
local function expired(inv, s, ns)
  local e = inv['expires_at']
  if type(e) ~= 'string' then return true end
  local y, mo, d, h, mi, sec, rest = string.match(e, '^(%d%d%d%d)-(%d%d)-(%d%d)T(%d%d):(%d%d):(%d%d)(.*)$')
  if not y then return true end
  local frac, zone = string.match(rest, '^%.(%d+)(.*)$')
  if not frac then frac, zone = '', rest end
  local enano = tonumber(string.sub(frac .. '000000000', 1, 9))
  local off = 0
  if zone ~= 'Z' then
    local sign, zh, zm = string.match(zone, '^([+-])(%d%d):(%d%d)$')
    if not sign then return true end
    off = tonumber(zh) * 3600 + tonumber(zm) * 60
    if sign == '-' then off = -off end
  end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (mo + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  local esec = days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) - off
  return s > esec or (s == esec and ns >= enano)
end
`

// putScript stores invitations: ARGV = the key prefix, the hashes' and
// the technician indexes' TTLs in seconds, then per invitation its order,
// technician, encoding and "1" if open. Each order's hash and each
// technician's index get their TTL once, however many invitations they
// take (the keys are derived, as in heldScript).
var putScript = redis.NewScript(`#!lua
local p = ARGV[1]
local expired = {}
for i = 4, #ARGV, 4 do
  local o, t = ARGV[i], ARGV[i+1]
  local hk = p .. '` + PrefixInvitations + `' .. o
  local tk = p .. '` + PrefixTechInv + `' .. t
  redis.call('HSET', hk, t, ARGV[i+2])
  redis.call('SADD', tk, o)
  if ARGV[i+3] == '1' then redis.call('SADD', p .. '` + PrefixOpen + `', o .. '|' .. t) end
  if not expired[hk] then redis.call('EXPIRE', hk, ARGV[2]); expired[hk] = true end
  if not expired[tk] then redis.call('EXPIRE', tk, ARGV[3]); expired[tk] = true end
end
return #ARGV`)

// Put stores invitations: one script, one round trip (a MULTI/EXEC of
// five commands per invitation was 17 commands for a wave of three).
func (iv Invitations) Put(ctx context.Context, invs ...smp.Invitation) error {
	if len(invs) == 0 {
		return nil
	}
	args := make([]any, 0, 3+4*len(invs))
	args = append(args, iv.s.prefix, int(ttlOf(PrefixInvitations).Seconds()), int(ttlOf(PrefixTechInv).Seconds()))
	for _, inv := range invs {
		b, _ := json.Marshal(storedInvitation{inv, inv.ExpiresAt.UnixMilli()})
		args = append(args, inv.OrderID, inv.TechnicianID, string(b), boolStr(inv.State.Open()))
	}
	return wrap("put invitations", putScript.Run(ctx, iv.s.rdb, nil, args...).Err())
}

// Get returns one invitation.
func (iv Invitations) Get(ctx context.Context, orderID, techID string) (smp.Invitation, bool, error) {
	b, err := iv.s.rdb.HGet(ctx, iv.s.key(smp.InvitationsKey(orderID)), techID).Bytes()
	if errors.Is(err, redis.Nil) {
		return smp.Invitation{}, false, nil
	} else if err != nil {
		return smp.Invitation{}, false, wrap("get invitation", err)
	}
	var inv smp.Invitation
	if err := json.Unmarshal(b, &inv); err != nil {
		return inv, false, fmt.Errorf("redis: invitation %s/%s: %w", orderID, techID, err)
	}
	return inv, true, nil
}

// GetMany returns the order's invitations of the given technicians: one
// HMGET.
func (iv Invitations) GetMany(ctx context.Context, orderID string, techIDs []string) (map[string]smp.Invitation, error) {
	out := make(map[string]smp.Invitation, len(techIDs))
	if len(techIDs) == 0 {
		return out, nil
	}
	vals, err := iv.s.rdb.HMGet(ctx, iv.s.key(smp.InvitationsKey(orderID)), techIDs...).Result()
	if err != nil {
		return nil, wrap("get invitations", err)
	}
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok || i >= len(techIDs) {
			continue // absent
		}
		var inv smp.Invitation
		if err := json.Unmarshal([]byte(raw), &inv); err != nil {
			return nil, fmt.Errorf("redis: invitation %s/%s: %w", orderID, techIDs[i], err)
		}
		out[techIDs[i]] = inv
	}
	return out, nil
}

// ForOrder returns an order's invitations, in the order they were sent.
func (iv Invitations) ForOrder(ctx context.Context, orderID string) ([]smp.Invitation, error) {
	m, err := iv.s.rdb.HGetAll(ctx, iv.s.key(smp.InvitationsKey(orderID))).Result()
	if err != nil {
		return nil, wrap("invitations of order", err)
	}
	out := make([]smp.Invitation, 0, len(m))
	for _, v := range m {
		var inv smp.Invitation
		if err := json.Unmarshal([]byte(v), &inv); err != nil {
			return nil, err
		}
		out = append(out, inv)
	}
	sortBySent(out)
	return out, nil
}

// sortBySent orders invitations as they were sent (then by id).
func sortBySent(out []smp.Invitation) {
	slices.SortFunc(out, func(a, b smp.Invitation) int {
		if c := a.SentAt.Compare(b.SentAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// forTechScript: KEYS[1] the technician's index; ARGV = the key prefix,
// the technician. Their invitations, one per order of the index, as
// stored; an order whose invitations are gone leaves the index (removing
// frees memory: allowed when Redis is full, so a connect still gets its
// offers back then).
var forTechScript = redis.NewScript(`#!lua flags=allow-oom
local out = {}
for _, o in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local raw = redis.call('HGET', ARGV[1] .. '` + PrefixInvitations + `' .. o, ARGV[2])
  if raw then out[#out+1] = raw else redis.call('SREM', KEYS[1], o) end
end
return out`)

// ForTechnician returns a technician's open invitations: one script, one
// round trip (it was SMEMBERS and an HGET per order).
func (iv Invitations) ForTechnician(ctx context.Context, techID string) ([]smp.Invitation, error) {
	raws, err := forTechScript.Run(ctx, iv.s.rdb, []string{iv.s.key(PrefixTechInv, techID)}, iv.s.prefix, techID).StringSlice()
	if err != nil {
		return nil, wrap("invitations of technician", err)
	}
	var out []smp.Invitation
	for _, raw := range raws {
		var inv smp.Invitation
		if err := json.Unmarshal([]byte(raw), &inv); err != nil {
			return nil, fmt.Errorf("redis: invitation of %s: %w", techID, err)
		}
		if inv.State.Open() {
			out = append(out, inv)
		}
	}
	slices.SortFunc(out, func(a, b smp.Invitation) int { return a.SentAt.Compare(b.SentAt) })
	return out, nil
}

// casScript: ARGV = technician, new state, "1" if the new state is open,
// the open-set member, then the allowed current states. Returns 1 or 0 and
// the invitation as found or as set (” when missing).
var casScript = redis.NewScript(`#!lua
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {0, ''} end
local inv = cjson.decode(raw)
local ok = false
for i = 5, #ARGV do
  if inv['state'] == ARGV[i] then ok = true end
end
if not ok then return {0, raw} end
inv['state'] = ARGV[2]
local enc = cjson.encode(inv)
redis.call('HSET', KEYS[1], ARGV[1], enc)
if ARGV[3] == '0' then redis.call('SREM', KEYS[2], ARGV[4]) end
return {1, enc}`)

// CompareAndSet atomically moves an invitation between states and returns
// it: one script, one round trip (no read before it).
func (iv Invitations) CompareAndSet(ctx context.Context, orderID, techID string, from []smp.InvitationState, to smp.InvitationState) (smp.Invitation, bool, error) {
	open := "0"
	if to.Open() {
		open = "1"
	}
	args := []any{techID, string(to), open, openMember(orderID, techID)}
	for _, f := range from {
		args = append(args, string(f))
	}
	keys := []string{iv.s.key(smp.InvitationsKey(orderID)), iv.s.key(PrefixOpen)}
	res, err := casScript.Run(ctx, iv.s.rdb, keys, args...).Slice()
	if err != nil {
		return smp.Invitation{}, false, wrap("compare and set invitation", err)
	}
	if len(res) != 2 {
		return smp.Invitation{}, false, fmt.Errorf("redis: compare and set invitation: unexpected reply %v", res)
	}
	n, _ := res[0].(int64)
	raw, _ := res[1].(string)
	var inv smp.Invitation
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &inv); err != nil {
			return smp.Invitation{}, false, fmt.Errorf("redis: invitation %s/%s: %w", orderID, techID, err)
		}
	}
	return inv, n == 1, nil
}

// claimScript: ARGV = technician, the open-set member, now in unix
// seconds and its nanoseconds. The technician's invitation must be open,
// not expired (luaExpired) and no other of the order accepted; then it is
// accepted. Returns 1 or 0, the holder (” unless another's accepted
// invitation refused it) and the invitation as found or accepted (” when
// missing).
var claimScript = redis.NewScript(`#!lua
` + luaExpired + `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {0, '', ''} end
local inv = cjson.decode(raw)
if inv['state'] ~= 'sent' and inv['state'] ~= 'delivered' then return {0, '', raw} end
if expired(inv, tonumber(ARGV[3]), tonumber(ARGV[4])) then return {0, '', raw} end
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] and string.find(all[i+1], '"state":"accepted"', 1, true) then
    local other = cjson.decode(all[i+1])
    if other['state'] == 'accepted' then return {0, all[i], raw} end
  end
end
inv['state'] = 'accepted'
local enc = cjson.encode(inv)
redis.call('HSET', KEYS[1], ARGV[1], enc)
redis.call('SREM', KEYS[2], ARGV[2])
return {1, '', enc}`)

// Claim accepts the technician's open invitation unless it expired at now
// or another of the order's is accepted: one round trip, which also
// returns the invitation.
func (iv Invitations) Claim(ctx context.Context, orderID, techID string, now time.Time) (smp.Invitation, bool, string, error) {
	keys := []string{iv.s.key(smp.InvitationsKey(orderID)), iv.s.key(PrefixOpen)}
	res, err := claimScript.Run(ctx, iv.s.rdb, keys, techID, openMember(orderID, techID), now.Unix(), now.Nanosecond()).Slice()
	if err != nil {
		return smp.Invitation{}, false, "", wrap("claim invitation", err)
	}
	if len(res) != 3 {
		return smp.Invitation{}, false, "", fmt.Errorf("redis: claim invitation: unexpected reply %v", res)
	}
	n, _ := res[0].(int64)
	holder, _ := res[1].(string)
	raw, _ := res[2].(string)
	var inv smp.Invitation
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &inv); err != nil {
			return smp.Invitation{}, false, "", fmt.Errorf("redis: invitation %s/%s: %w", orderID, techID, err)
		}
	}
	return inv, n == 1, holder, nil
}

// heldScript: ARGV = the key prefix, then technicians. For each
// technician, the expiry times of their open invitations (the keys are
// derived from the technician index, so they are not declared: SMP's
// Redis is one server, not a cluster).
var heldScript = redis.NewScript(`#!lua flags=no-writes
local out = {}
for i = 2, #ARGV do
  local t = ARGV[i]
  local exp = {}
  for _, o in ipairs(redis.call('SMEMBERS', ARGV[1] .. '` + PrefixTechInv + `' .. t)) do
    local raw = redis.call('HGET', ARGV[1] .. '` + PrefixInvitations + `' .. o, t)
    if raw then
      local inv = cjson.decode(raw)
      if inv['state'] == 'sent' or inv['state'] == 'delivered' then exp[#exp+1] = inv['expires_at'] end
    end
  end
  out[#out+1] = exp
end
return out`)

// Held counts each technician's open invitations not expired at now: one
// round trip for all of them.
func (iv Invitations) Held(ctx context.Context, techIDs []string, now time.Time) (map[string]int, error) {
	out := make(map[string]int, len(techIDs))
	if len(techIDs) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(techIDs)+1)
	args = append(args, iv.s.prefix)
	for _, t := range techIDs {
		args = append(args, t)
	}
	res, err := heldScript.Run(ctx, iv.s.rdb, nil, args...).Slice()
	if err != nil {
		return nil, wrap("offers held", err)
	}
	for i, r := range res {
		if i >= len(techIDs) {
			break
		}
		exps, _ := r.([]any)
		for _, e := range exps {
			s, _ := e.(string)
			at, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				return nil, fmt.Errorf("redis: offers held by %s: expiry %q: %w", techIDs[i], s, err)
			}
			if now.Before(at) {
				out[techIDs[i]]++
			}
		}
	}
	return out, nil
}

// DeleteOrder removes an order's invitations.
func (iv Invitations) DeleteOrder(ctx context.Context, orderID string) error {
	hk := iv.s.key(smp.InvitationsKey(orderID))
	techs, err := iv.s.rdb.HKeys(ctx, hk).Result()
	if err != nil {
		return wrap("delete invitations", err)
	}
	_, err = iv.s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range techs {
			p.SRem(ctx, iv.s.key(PrefixTechInv, t), orderID)
			p.SRem(ctx, iv.s.key(PrefixOpen), openMember(orderID, t))
		}
		p.Del(ctx, hk)
		return nil
	})
	return wrap("delete invitations", err)
}

// closeScript: KEYS = the order's hash, the open set; ARGV = the key
// prefix, the winner, the order. Every open invitation but the winner's is
// withdrawn (returned, encoded), then the order's invitations are removed
// with their index entries (the technician indexes are derived keys, as
// in heldScript).
var closeScript = redis.NewScript(`#!lua
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local t = all[i]
  if t ~= ARGV[2] and (string.find(all[i+1], '"state":"sent"', 1, true) or string.find(all[i+1], '"state":"delivered"', 1, true)) then
    local inv = cjson.decode(all[i+1])
    if inv['state'] == 'sent' or inv['state'] == 'delivered' then
      inv['state'] = 'withdrawn'
      out[#out+1] = cjson.encode(inv)
    end
  end
  redis.call('SREM', ARGV[1] .. '` + PrefixTechInv + `' .. t, ARGV[3])
  redis.call('SREM', KEYS[2], ARGV[3] .. '|' .. t)
end
redis.call('DEL', KEYS[1])
return out`)

// CloseOrder withdraws the order's open invitations but the winner's and
// removes them all: one script, one round trip.
func (iv Invitations) CloseOrder(ctx context.Context, orderID, winner string) ([]smp.Invitation, error) {
	keys := []string{iv.s.key(smp.InvitationsKey(orderID)), iv.s.key(PrefixOpen)}
	res, err := closeScript.Run(ctx, iv.s.rdb, keys, iv.s.prefix, winner, orderID).StringSlice()
	if err != nil {
		return nil, wrap("close invitations", err)
	}
	out := make([]smp.Invitation, 0, len(res))
	for _, raw := range res {
		var inv smp.Invitation
		if err := json.Unmarshal([]byte(raw), &inv); err != nil {
			return nil, fmt.Errorf("redis: invitation of %s: %w", orderID, err)
		}
		out = append(out, inv)
	}
	sortBySent(out)
	return out, nil
}

// Count returns the number of open invitations.
func (iv Invitations) Count(ctx context.Context) (int64, error) {
	n, err := iv.s.rdb.SCard(ctx, iv.s.key(PrefixOpen)).Result()
	return n, wrap("count invitations", err)
}
