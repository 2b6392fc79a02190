package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Sessions records each technician's newest WebSocket connection across
// processes: session:{technician_id} = the connection's id (which names
// its process), with a TTL refreshed by its heartbeats, so a process that
// dies leaves no session behind for long. A connection claims the key when
// it opens (the newest wins); an older connection's heartbeat, close or
// offer finds another id there and knows it was superseded.
type Sessions struct{ s *Store }

// Sessions returns the session store.
func (s *Store) Sessions() Sessions { return Sessions{s} }

// Claim makes connID the technician's newest connection.
func (x Sessions) Claim(ctx context.Context, techID, connID string) error {
	return wrap("claim session", x.s.rdb.Set(ctx, x.s.key(PrefixSession, techID), connID, ttlOf(PrefixSession)).Err())
}

// touchScript refreshes the session if connID holds it, or takes it back
// if nobody does (it expired, or was flushed); 0 when another holds it.
var touchScript = redis.NewScript(`#!lua
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`)

// Touch refreshes connID's session; held is false when a newer connection
// holds it (the caller's connection is superseded).
func (x Sessions) Touch(ctx context.Context, techID, connID string) (bool, error) {
	n, err := touchScript.Run(ctx, x.s.rdb, []string{x.s.key(PrefixSession, techID)}, connID, ttlOf(PrefixSession).Milliseconds()).Int()
	return n == 1, wrap("touch session", err)
}

// Drop removes the session if connID still holds it (compare-and-delete:
// a newer connection, here or elsewhere, keeps its own).
func (x Sessions) Drop(ctx context.Context, techID, connID string) error {
	return wrap("drop session", unlockScript.Run(ctx, x.s.rdb, []string{x.s.key(PrefixSession, techID)}, connID).Err())
}

// Holder returns the technician's newest connection's id.
func (x Sessions) Holder(ctx context.Context, techID string) (string, bool, error) {
	v, err := x.s.rdb.Get(ctx, x.s.key(PrefixSession, techID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, wrap("session", err)
}
