package redisstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"smp"
)

// FraudWindows is the smp.FraudWindows on Redis, shared by every fraud
// detector: per partner a ZSET of its top-ups (fraud:partner:topups:{P})
// and a HASH of its history (fraud:partner:{P}: count, sum, the largest
// ratio to the average, the registered country); per IP a ZSET of its
// top-ups (fraud:ip:topups:{IP}); per event the answer it got
// (fraud:seen:{event id}), so that a redelivered event sees what it saw
// the first time. One script does each record, atomically.
type FraudWindows struct{ s *Store }

var _ smp.FraudWindows = FraudWindows{}

// FraudWindows returns the fraud detector's windows.
func (s *Store) FraudWindows() FraudWindows { return FraudWindows{s} }

// KEYS: seen, partner zset, ip zset ("" key when no IP), partner hash.
// ARGV: at (ms), keep (ms), member, amount.
// Members are "txn|partner|amount|at_ms"; the answer is JSON with every
// number as a string (Lua's doubles would round large sums).
var fraudRecordScript = redis.NewScript(`#!lua
local seen = redis.call('GET', KEYS[1])
if seen then return seen end
local at, keep, member, amount = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local from = at - keep
local c = redis.call('HGET', KEYS[4], 'count') or '0'
local s = redis.call('HGET', KEYS[4], 'sum') or '0'
local m = redis.call('HGET', KEYS[4], 'max_ratio_milli') or '0'
local ttl = math.ceil(keep / 1000) + 3600
redis.call('ZADD', KEYS[2], at, member)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. from)
redis.call('EXPIRE', KEYS[2], ttl)
local p = redis.call('ZRANGE', KEYS[2], 0, -1)
local i = {}
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[3], at, member)
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. from)
  redis.call('EXPIRE', KEYS[3], ttl)
  i = redis.call('ZRANGE', KEYS[3], 0, -1)
end
local cn, sn = tonumber(c), tonumber(s)
if cn > 0 and sn > 0 then
  local r = math.ceil(tonumber(amount) * 1000 * cn / sn)
  if r > tonumber(m) then redis.call('HSET', KEYS[4], 'max_ratio_milli', string.format('%d', r)) end
end
redis.call('HINCRBY', KEYS[4], 'count', 1)
redis.call('HINCRBY', KEYS[4], 'sum', amount)
local out = cjson.encode({c = c, s = s, m = m, p = table.concat(p, '\n'), i = table.concat(i, '\n')})
redis.call('SET', KEYS[1], out, 'EX', ttl)
return out
`)

type fraudAnswer struct {
	C, S, M, P, I string
}

// RecordTopup adds o once by event id (see smp.FraudWindows).
func (w FraudWindows) RecordTopup(ctx context.Context, o smp.FraudTopupObs, keep time.Duration) (*smp.FraudWindowView, error) {
	s := w.s
	hasIP := "0"
	ipKey := s.key(PrefixFraudIP, "-")
	if o.IP != "" {
		hasIP, ipKey = "1", s.key(PrefixFraudIP, o.IP)
	}
	member := strings.Join([]string{o.TxnID, o.PartnerID, strconv.FormatInt(o.AmountVND, 10), strconv.FormatInt(o.At.UnixMilli(), 10)}, "|")
	raw, err := fraudRecordScript.Run(ctx, s.rdb, []string{s.key(PrefixFraudSeen, o.EventID), s.key(PrefixFraudPartnerTopups, o.PartnerID),
		ipKey, s.key(PrefixFraudPartner, o.PartnerID)}, o.At.UnixMilli(), keep.Milliseconds(), member, o.AmountVND, hasIP).Text()
	if err != nil {
		return nil, wrap("fraud record topup", err)
	}
	var a fraudAnswer
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return nil, fmt.Errorf("redis: fraud record topup: answer %q: %w", raw, err)
	}
	v := &smp.FraudWindowView{}
	for _, f := range []struct {
		s string
		p *int64
	}{{a.C, &v.PriorCount}, {a.S, &v.PriorSumVND}, {a.M, &v.PriorMaxRatioMilli}} {
		if *f.p, err = strconv.ParseInt(f.s, 10, 64); err != nil {
			return nil, fmt.Errorf("redis: fraud record topup: %q: %w", f.s, err)
		}
	}
	if v.Partner, err = parseFraudMembers(a.P); err == nil {
		v.IP, err = parseFraudMembers(a.I)
	}
	return v, err
}

func parseFraudMembers(s string) ([]smp.FraudWindowTopup, error) {
	var out []smp.FraudWindowTopup
	if s == "" {
		return out, nil
	}
	for _, m := range strings.Split(s, "\n") {
		f := strings.Split(m, "|")
		if len(f) != 4 {
			return nil, fmt.Errorf("redis: fraud window member %q", m)
		}
		amt, err1 := strconv.ParseInt(f[2], 10, 64)
		ms, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("redis: fraud window member %q", m)
		}
		out = append(out, smp.FraudWindowTopup{TxnID: f[0], PartnerID: f[1], AmountVND: amt, At: time.UnixMilli(ms).UTC()})
	}
	return out, nil
}

// SetPartnerCountry records a partner's registered country.
func (w FraudWindows) SetPartnerCountry(ctx context.Context, partnerID, country string) error {
	return wrap("fraud partner country", w.s.rdb.HSet(ctx, w.s.key(PrefixFraudPartner, partnerID), "country", country).Err())
}

// PartnerCountry returns it, "" when unknown.
func (w FraudWindows) PartnerCountry(ctx context.Context, partnerID string) (string, error) {
	c, err := w.s.rdb.HGet(ctx, w.s.key(PrefixFraudPartner, partnerID), "country").Result()
	if err == redis.Nil {
		return "", nil
	}
	return c, wrap("fraud partner country", err)
}
