package sqlstore

import (
	"context"
	"fmt"
	"time"

	"smp"
)

// Retention (smp.PruneStore): old rows deleted in bounded batches.

var _ smp.PruneStore = (*DB)(nil)

// pruneWhere is each prunable table's condition on "older than ?"; each
// has an index that serves it (migration 0007_retention).
var pruneWhere = map[string]string{
	smp.PruneOutbox:         "published_at IS NOT NULL AND published_at < ?",
	smp.PruneProcessed:      "at < ?",
	smp.PruneDispatchWaves:  "started_at < ?",
	smp.PruneDispatchOffers: "sent_at < ?",
	smp.PruneInbox:          "status = 'processed' AND processed_at < ?",
	smp.PruneIdempotency:    "created_at < ?",
	smp.PruneAudit:          "at < ?",
	smp.PruneCDCChanges:     "at < ?",
}

// Prune deletes one batch: a short write transaction, so that pruning a
// large backlog never holds the writer (SQLite) or many row locks (MySQL)
// for long.
func (db *DB) Prune(ctx context.Context, table string, before time.Time, limit int) (int64, error) {
	where, ok := pruneWhere[table]
	if !ok {
		return 0, smp.Errorf(smp.EINVALID, "no retention for table %q", table)
	}
	if err := checkLimit(limit); err != nil {
		return 0, err
	}
	if table == smp.PruneCDCChanges && db.dialect.Name != "sqlite" {
		return 0, nil // MySQL's changes are its binlog, which expires by itself
	}
	if table == smp.PruneDispatchWaves || table == smp.PruneDispatchOffers {
		if err := db.flushOffers(ctx); err != nil { // the trace written behind
			return 0, err
		}
	}
	res, err := db.execWrite(ctx, deleteBatchSQL(db.dialect, table, where), micros(before), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: prune %s: %w", table, err)
	}
	return res.RowsAffected()
}
