package smp

import (
	"context"
	"time"
)

// Tables whose rows a retention policy prunes (package retention). Audit
// entries and the money rows (orders, their transitions) are not among
// them unless configured (PruneAudit): they are kept.
const (
	PruneOutbox         = "outbox"           // events the relay published
	PruneProcessed      = "processed_events" // which events each consumer group applied
	PruneDispatchWaves  = "dispatch_waves"   // the dispatch trace: waves
	PruneDispatchOffers = "dispatch_offers"  // the dispatch trace: offers
	PruneInbox          = "event_log"        // provider events processed (dlq and pending kept)
	PruneIdempotency    = "idempotency_keys" // customers' Idempotency-Keys
	PruneAudit          = "audit_log"        // operator actions (kept by default)
	PruneBus            = "bus_messages"     // the embedded event log (sqlbus)
	PruneCDCChanges     = "cdc_changes"      // the embedded change table (change data capture; none on MySQL)
)

// PruneStore deletes rows past their retention.
type PruneStore interface {
	// Prune deletes at most limit rows of table (a Prune… constant, not
	// PruneBus) older than before: for the outbox, published before; for
	// event_log, processed before; for the others, created before. It
	// returns how many it deleted. EINVALID for an unknown table or a
	// limit that is not positive.
	Prune(ctx context.Context, table string, before time.Time, limit int) (int64, error)
}
