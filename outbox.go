package smp

import (
	"context"
	"time"
)

// OutboxStore is the relay's access to the transactional outbox: events
// committed with their change, published to the bus at least once.
type OutboxStore interface {
	// FetchOutbox returns at most limit unpublished events in commit
	// order; EINVALID if limit is not positive.
	FetchOutbox(ctx context.Context, limit int) ([]OutboxRecord, error)
	// FetchOutboxAfter is FetchOutbox from the first unpublished event
	// whose id is above afterID: the pipelined relay fetches its next batch
	// after the last one it fetched, before the earlier ones are marked.
	// EINVALID if limit is not positive.
	FetchOutboxAfter(ctx context.Context, afterID int64, limit int) ([]OutboxRecord, error)
	// MarkOutboxPublished marks events as handed to the bus (none is a
	// no-op; unknown ids are ignored). No codes.
	MarkOutboxPublished(ctx context.Context, ids []int64, at time.Time) error
	// OutboxBacklog returns the number of unpublished events and the
	// oldest one's time (zero when there is none). No codes.
	OutboxBacklog(ctx context.Context) (count int64, oldest time.Time, err error)
}

// OutboxTx appends events in the transaction of the change they announce.
type OutboxTx interface {
	// AddEvent appends the event to the outbox. Event IDs are unique: a
	// second event with the same ID fails the transaction. No codes.
	AddEvent(ctx context.Context, e Event) error
}

// OutboxRecord is an event waiting in the outbox.
type OutboxRecord struct {
	ID    int64
	Event Event
	// Payload is the event as stored (its JSON encoding), which the relay
	// publishes as is; nil: the relay encodes Event.
	Payload   []byte
	CreatedAt time.Time
}
