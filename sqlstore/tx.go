package sqlstore

import (
	"context"
	"database/sql"
	"fmt"

	"smp"
)

var (
	_ smp.Transactor = (*DB)(nil)
	_ smp.Tx         = (*Tx)(nil)
)

// Tx implements smp.Tx.
type Tx struct {
	tx     *sql.Tx
	db     *DB
	events int
}

// InTx runs fn in a transaction on the primary. A transaction MySQL
// aborted for a deadlock or lock wait is run again (up to 3 times), so fn
// must only act through the Tx.
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
	sqlTx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlstore: begin: %w", err)
	}
	tx := &Tx{tx: sqlTx, db: db}
	if err := fn(tx); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	if tx.events > 0 {
		db.signalCommit()
	}
	return nil
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
	if _, err := db.write.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("sqlstore: %s: %w", what, err)
	}
	return nil
}
