package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"smp"
)

// Bearer token hashes (smp.TokenStore).

var _ smp.TokenStore = (*DB)(nil)

// tokenCacheTTL is how long a customer's or technician's token owner is
// answered from memory: every API call and WebSocket connection of theirs
// looked its token up (one statement per request). Their tokens are never
// deleted and a hash changes owner only when it is stored again (PutToken
// here forgets it at once; through another process, within the TTL).
// Suspension and deactivation are the owner's status, checked where they
// matter, not the token's. Admin tokens (their role may change) and
// unknown hashes are always read.
const tokenCacheTTL = 30 * time.Second

// tokenCacheMax bounds the cache; when full it starts again empty.
const tokenCacheMax = 100_000

type tokenCache struct {
	mu sync.RWMutex
	m  map[string]cachedToken
}

type cachedToken struct {
	kind, owner string
	until       time.Time
}

func (c *tokenCache) get(hash string, now time.Time) (cachedToken, bool) {
	c.mu.RLock()
	t, ok := c.m[hash]
	c.mu.RUnlock()
	return t, ok && now.Before(t.until)
}

func (c *tokenCache) put(hash string, t cachedToken) {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= tokenCacheMax {
		c.m = map[string]cachedToken{}
	}
	c.m[hash] = t
	c.mu.Unlock()
}

func (c *tokenCache) forget(hash string) {
	c.mu.Lock()
	delete(c.m, hash)
	c.mu.Unlock()
}

// FindTokenOwner resolves a token hash; a customer's or technician's from
// memory for tokenCacheTTL after it was read.
func (db *DB) FindTokenOwner(ctx context.Context, tokenHash string) (string, string, smp.Role, error) {
	now := db.now()
	if t, ok := db.tokens.get(tokenHash, now); ok {
		return t.kind, t.owner, "", nil
	}
	var kind, owner, role string
	err := db.fresh().QueryRowContext(ctx, `SELECT kind, owner_id, role FROM tokens WHERE token_hash = ?`, tokenHash).Scan(&kind, &owner, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", "", smp.Errorf(smp.EUNAUTHORIZED, "invalid token")
	} else if err != nil {
		return "", "", "", fmt.Errorf("sqlstore: find token: %w", err)
	}
	if (kind == "customer" || kind == "technician") && role == "" {
		db.tokens.put(tokenHash, cachedToken{kind: kind, owner: owner, until: now.Add(tokenCacheTTL)})
	}
	return kind, owner, smp.Role(role), nil
}

// PutToken stores a token hash.
func (db *DB) PutToken(ctx context.Context, tokenHash, kind, ownerID string, role smp.Role) error {
	if err := checkSizes("put token",
		chars("token_hash", tokenHash, 64),
		chars("kind", kind, 16),
		chars("owner_id", ownerID, 64),
		chars("role", string(role), 16)); err != nil {
		return err
	}
	defer db.tokens.forget(tokenHash) // after the write: a read meanwhile may have cached the old owner
	return db.exec(ctx, "put token", db.dialect.Upsert("tokens", []string{"token_hash"}, []string{"token_hash", "kind", "owner_id", "role"}),
		tokenHash, kind, ownerID, string(role))
}
