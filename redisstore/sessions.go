package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Sessions records which process holds each technician's connection:
// session:{technician_id} = process, with a TTL refreshed by heartbeats,
// so a process that dies leaves no session behind for long.
type Sessions struct {
	s     *Store
	owner string
}

// Sessions returns the session store of process owner.
func (s *Store) Sessions(owner string) Sessions { return Sessions{s, owner} }

// Touch records or refreshes the technician's session here.
func (x Sessions) Touch(ctx context.Context, techID string) error {
	return wrap("touch session", x.s.rdb.Set(ctx, x.s.key(PrefixSession, techID), x.owner, ttlOf(PrefixSession)).Err())
}

// Drop removes the session if this process still holds it (a newer
// connection elsewhere keeps its own).
func (x Sessions) Drop(ctx context.Context, techID string) error {
	return wrap("drop session", unlockScript.Run(ctx, x.s.rdb, []string{x.s.key(PrefixSession, techID)}, x.owner).Err())
}

// Holder returns the process holding the technician's connection.
func (x Sessions) Holder(ctx context.Context, techID string) (string, bool, error) {
	v, err := x.s.rdb.Get(ctx, x.s.key(PrefixSession, techID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	return v, err == nil, wrap("session", err)
}
