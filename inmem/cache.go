package inmem

import (
	"context"
	"sync"
	"time"
)

// Cache is the embedded byte cache: entries expire after ttl.
type Cache struct {
	ttl func(key string) time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]cacheEntry
}

type cacheEntry struct {
	v   []byte
	exp time.Time
}

// NewCache returns a cache whose entries live ttl(key).
func NewCache(ttl func(key string) time.Duration) *Cache {
	return &Cache{ttl: ttl, now: time.Now, m: map[string]cacheEntry{}}
}

// Get returns the value of key, and whether it was there.
func (c *Cache) Get(_ context.Context, key string) ([]byte, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || c.now().After(e.exp) {
		delete(c.m, key)
		return nil, false, nil
	}
	return e.v, true, nil
}

// Set stores value under key.
func (c *Cache) Set(_ context.Context, key string, value []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 100000 { // bounded: drop expired entries first, then everything
		now := c.now()
		for k, e := range c.m {
			if now.After(e.exp) {
				delete(c.m, k)
			}
		}
		if len(c.m) > 100000 {
			c.m = map[string]cacheEntry{}
		}
	}
	c.m[key] = cacheEntry{v: append([]byte(nil), value...), exp: c.now().Add(c.ttl(key))}
	return nil
}
