package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"smp"
	"smp/internal/sqldb"
)

var (
	_ smp.Transactor = (*DB)(nil)
	_ smp.Tx         = (*Tx)(nil)
)

// Tx implements smp.Tx.
type Tx struct {
	tx     sqlTx
	db     *DB
	events int // outbox rows written unpublished (the relay's)

	// The event log in the same database (DB.SetOutboxLog): direct is 0
	// until the first event decides, then 1 (appended here) or -1 (left to
	// the relay); pending are the messages appended at the end of the
	// transaction's function, in one call.
	direct  int8
	log     OutboxLog
	pending []smp.Message
}

// sqlTx is the transaction a Tx's statements run in. In a group commit
// (keep) they run without their ctx's cancellation: on SQLite an
// interrupted write rolls back the whole transaction, every caller's of
// the batch (see sqldb.GroupCommitter).
type sqlTx struct {
	*sql.Tx
	keep bool
}

func (t sqlTx) ctx(ctx context.Context) context.Context {
	if t.keep {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (t sqlTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(t.ctx(ctx), q, args...)
}

func (t sqlTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(t.ctx(ctx), q, args...)
}

func (t sqlTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(t.ctx(ctx), q, args...)
}

// InTx runs fn in a transaction on the primary. On SQLite (unless
// Config.NoGroupCommit) it shares a database transaction with the other
// callers waiting at that moment, under its own savepoint, and returns
// after that transaction's commit (see sqldb.GroupCommitter): fn's
// statements then ignore ctx's cancellation once fn has started. A
// transaction MySQL aborted for a deadlock or lock wait is run again (up
// to 3 times), so fn must only act through the Tx.
func (db *DB) InTx(ctx context.Context, fn func(smp.Tx) error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if err = db.inTx(ctx, fn); !isRetryable(err) {
			return err
		}
	}
	return err
}

func (db *DB) inTx(ctx context.Context, fn func(smp.Tx) error) error {
	if t, ok := sqldb.TxFrom(ctx, db.write); ok {
		return db.inBorrowedTx(ctx, t, fn)
	}
	var (
		events, logged int
		after          func()
	)
	err := db.writeTx(ctx, func(ctx context.Context, t *sql.Tx) error {
		tx := &Tx{tx: sqlTx{Tx: t, keep: db.gc != nil}, db: db}
		events, logged, after = 0, 0, nil
		if err := fn(tx); err != nil {
			return err
		}
		var err error
		if after, err = tx.flushLog(ctx); err != nil {
			return err
		}
		events, logged = tx.events, len(tx.pending)
		return nil
	})
	if err != nil {
		return err
	}
	db.committed(after, events, logged)
	return nil
}

// committed follows the commit that made a transaction's events visible:
// after wakes the log's consumers of the partitions appended to (nil:
// none), and the relay is signalled when it has events to copy.
func (db *DB) committed(after func(), events, logged int) {
	if after != nil {
		after()
	}
	if events+logged > 0 {
		db.signalCommit(events > 0)
	}
}

// inBorrowedTx runs fn in t, the transaction of a borrower of this
// database (sqldb.WithTx: sqlbus committing a batch's offset with its
// deferred effects and the records of its processed events,
// smp.WithBatchFinish): it commits with the borrower's, and a failure of
// fn fails the borrower's transaction. fn's events are appended as in a
// transaction of its own; what follows their commit (the log's wake-up,
// the relay's signal) is handed to the borrower to run after its commit
// (smp.AfterCommit), and without such a borrower events are refused.
func (db *DB) inBorrowedTx(ctx context.Context, t *sql.Tx, fn func(smp.Tx) error) error {
	tx := &Tx{tx: sqlTx{Tx: t, keep: true}, db: db}
	if err := fn(tx); err != nil {
		return err
	}
	after, err := tx.flushLog(ctx)
	if err != nil {
		return err
	}
	events, logged := tx.events, len(tx.pending)
	if events+logged == 0 {
		return nil
	}
	if !smp.AfterCommit(ctx, func() { db.committed(after, events, logged) }) {
		return fmt.Errorf("sqlstore: an event added in a borrowed transaction that runs nothing after its commit: not supported")
	}
	return nil
}

// writeTx runs fn in a write transaction: on SQLite through the group
// committer (fn under a savepoint of a shared transaction, its ctx without
// cancellation), otherwise in a transaction of its own on the primary.
// It returns fn's error, or the commit's.
func (db *DB) writeTx(ctx context.Context, fn func(context.Context, *sql.Tx) error) error {
	return sqldb.WriteTx(ctx, db.gc, db.write, fn)
}

// dbtx is what a write outside InTx runs its statements on.
type dbtx interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// onWriter runs fn's statements on the writer: on SQLite as one caller of
// the group committer (they commit together), on MySQL each in its own
// autocommit transaction on the primary, as without group commit.
func (db *DB) onWriter(ctx context.Context, fn func(context.Context, dbtx) error) error {
	if db.gc != nil {
		return db.gc.Run(ctx, func(ctx context.Context, tx *sql.Tx) error { return fn(ctx, tx) })
	}
	return fn(ctx, db.write)
}

// execFunc is a function as an execer (execFunc(db.execWrite)).
type execFunc func(ctx context.Context, q string, args ...any) (sql.Result, error)

func (f execFunc) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return f(ctx, q, args...)
}

// execWrite runs one statement on the writer and returns after its
// commit.
func (db *DB) execWrite(ctx context.Context, q string, args ...any) (res sql.Result, err error) {
	err = db.onWriter(ctx, func(ctx context.Context, x dbtx) error {
		res, err = x.ExecContext(ctx, q, args...)
		return err
	})
	return res, err
}

// checkLimit rejects a limit that is not positive: passed to LIMIT ?, a
// negative one means "no limit" on SQLite and a syntax error on MySQL.
func checkLimit(limit int) error {
	if limit <= 0 {
		return smp.Errorf(smp.EINVALID, "limit %d: must be positive", limit)
	}
	return nil
}

type scanner interface{ Scan(...any) error }

func (db *DB) exec(ctx context.Context, what, q string, args ...any) error {
	if _, err := db.execWrite(ctx, q, args...); err != nil {
		return fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	return nil
}
