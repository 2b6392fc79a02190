package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Cache is a byte cache under cache:* keys; every entry gets its class's
// TTL (KeyClasses), so nothing cached lives forever.
type Cache struct{ s *Store }

// Cache returns the cache.
func (s *Store) Cache() *Cache { return &Cache{s: s} }

// Get returns the value of key, and whether it was there.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := c.s.rdb.Get(ctx, c.s.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis: cache get: %w", err)
	}
	return v, true, nil
}

// Set stores value under key with the TTL of key's class.
func (c *Cache) Set(ctx context.Context, key string, value []byte) error {
	class, ok := ClassOf(key)
	if !ok || !class.Cache || class.TTL <= 0 {
		return fmt.Errorf("redis: %s is not a declared cache key", key)
	}
	if err := c.s.rdb.Set(ctx, c.s.key(key), value, class.TTL).Err(); err != nil {
		return fmt.Errorf("redis: cache set: %w", err)
	}
	return nil
}
