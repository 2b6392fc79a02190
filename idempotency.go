package smp

import (
	"context"
	"time"
)

// IdempotencyKeyTTL is how long a client's Idempotency-Key is kept: a
// retry within it gets the first answer again (Stripe keeps keys 24 h).
const IdempotencyKeyTTL = 24 * time.Hour

// MaxIdempotencyKey is the longest Idempotency-Key accepted, in characters.
const MaxIdempotencyKey = 255

// IdempotentRequest is a request made with an Idempotency-Key and the
// answer it got, recorded in the transaction of what it created (so a
// request acknowledged once is answered the same after a crash).
type IdempotentRequest struct {
	// CustomerID scopes the key: two customers may use the same key.
	CustomerID string
	Key        string
	// RequestHash identifies the request's parameters (hex SHA-256): the
	// same key with other parameters is a conflict, not a replay.
	RequestHash string
	OrderID     string
	// Response is the created resource as first answered (JSON).
	Response  []byte
	CreatedAt time.Time
}

// IdempotencyStore reads recorded idempotent requests.
type IdempotencyStore interface {
	// FindIdempotentRequest returns customerID's request recorded under
	// key at or after since (older ones have expired). ENOTFOUND.
	FindIdempotentRequest(ctx context.Context, customerID, key string, since time.Time) (*IdempotentRequest, error)
}

// IdempotencyTx records an idempotent request with what it created.
type IdempotencyTx interface {
	// RecordIdempotentRequest records r; a record of the same customer and
	// key created before expiredBefore is replaced. ECONFLICT if the key is
	// recorded and has not expired (another request with it committed
	// first).
	RecordIdempotentRequest(ctx context.Context, r *IdempotentRequest, expiredBefore time.Time) error
}
