package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"smp"
	"smp/internal/sqldb"
)

// The outbox append as the event log's append (issue 22, embedded
// default): when the event log lives in the store's SQLite database
// (sqlbus opened on Shared), each transaction's outbox events are also
// appended to the log in that same transaction, and their outbox rows are
// written already published. The relay then has nothing to copy: one
// commit, one fsync, carries the change, its outbox row and the message.

// OutboxLog appends msgs to the event log inside the store's transaction
// tx (its statements must not commit or roll it back) and returns what to
// run once that transaction has committed (waking the log's consumers),
// or nil. sqlbus.(*Bus).AppendTx is one.
type OutboxLog func(ctx context.Context, tx *sql.Tx, msgs []smp.Message) (afterCommit func(), err error)

// Shared lends the SQLite database's handles to a package that keeps its
// tables in the same file (sqlbus on the embedded default), so that there
// is one writer and one group committer. EINVALID on MySQL. The borrower
// must be closed before the store.
func (db *DB) Shared() (sqldb.Shared, error) {
	if db.dialect.Name != SQLite.Name {
		return sqldb.Shared{}, smp.Errorf(smp.EINVALID, "sqlstore: only SQLite shares its database")
	}
	return sqldb.Shared{Write: db.write, Read: db.read, GC: db.gc, Counters: db.counters}, nil
}

// SetOutboxLog makes every later transaction append its outbox events to
// the event log through f (nil: no longer). SQLite only (EINVALID on
// MySQL: concurrent transactions there would take offsets in one order
// and commit in another, so a consumer could skip a message). Call it
// before the first transaction that should use it.
//
// Order per key across the switch: events the relay has not yet published
// were appended before; a transaction appends directly only once it sees
// no unpublished outbox row (checked in its own transaction, on the one
// writer, until the first time there is none), so the relay delivers the
// older events first.
func (db *DB) SetOutboxLog(f OutboxLog) error {
	if db.dialect.Name != SQLite.Name {
		return smp.Errorf(smp.EINVALID, "sqlstore: the outbox appends to the event log only on SQLite")
	}
	if f == nil {
		db.outboxLog.Store(nil)
		return nil
	}
	db.outboxLog.Store(&f)
	return nil
}

// logDirect reports whether this transaction's events go straight to the
// log: a log is set and no unpublished outbox row waits for the relay.
func (tx *Tx) logDirect(ctx context.Context) (bool, error) {
	if tx.direct != 0 {
		return tx.direct > 0, nil
	}
	tx.direct = -1
	f := tx.db.outboxLog.Load()
	if f == nil {
		return false, nil
	}
	// Every transaction looks (one indexed read, outbox_unpublished): an
	// unpublished row can come at any time from another process writing
	// this database without the log (smp import, smp demo's loading), and
	// an event appended here before the relay copies that one would
	// overtake it (a per-key order broken). Remembering the first empty
	// look, as this once did, let exactly that happen.
	var one int
	err := tx.tx.QueryRowContext(ctx, `SELECT 1 FROM outbox WHERE published_at IS NULL LIMIT 1`).Scan(&one)
	switch {
	case err == nil:
		return false, nil // the relay has events to publish first
	case err != sql.ErrNoRows:
		return false, fmt.Errorf("sqlstore: outbox backlog: %w", err)
	}
	tx.direct, tx.log = 1, *f
	return true, nil
}

// flushLog appends the transaction's pending messages to the log (in the
// transaction, before it commits).
func (tx *Tx) flushLog(ctx context.Context) (func(), error) {
	if len(tx.pending) == 0 {
		return nil, nil
	}
	after, err := tx.log(tx.tx.ctx(ctx), tx.tx.Tx, tx.pending)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: append to the event log: %w", err)
	}
	return after, nil
}
