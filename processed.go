package smp

import (
	"context"
	"time"
)

// ProcessedStore remembers which events each consumer group applied
// (idempotent consumers: an event is applied once per group).
type ProcessedStore interface {
	// IsProcessed reports whether consumer already recorded eventID, as
	// last committed. No codes.
	IsProcessed(ctx context.Context, consumer, eventID string) (bool, error)
	// ProcessedAmong reports which of eventIDs consumer already recorded,
	// as last committed, in one query: the returned set holds only those
	// recorded (an event not in it is not). No ids: an empty set and no
	// query. No codes.
	ProcessedAmong(ctx context.Context, consumer string, eventIDs []string) (map[string]bool, error)
}

// ProcessedTx records an event as applied in the effect's own transaction.
type ProcessedTx interface {
	// MarkProcessed records that consumer handled eventID; first is false
	// if it had already been recorded (the event is a duplicate). Groups
	// are independent. No codes.
	MarkProcessed(ctx context.Context, consumer, eventID string, at time.Time) (first bool, err error)
}
