// Package sqldb is the one SQL layer under SMP's SQL adapters (sqlstore,
// sqlbus): the SQLite configuration and its writer/reader pools, MySQL DSN
// parsing and pools, the dialect differences, the error codes a retry or a
// conflict is recognised by, and the migration runner over embedded
// per-dialect folders.
package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
)

// SQLiteDSN returns the modernc.org/sqlite DSN SMP uses for every database
// file: WAL, fsync on every commit (what was acknowledged is durable), a
// busy timeout, and write transactions that take the write lock at BEGIN
// (no deadlock upgrading a read lock).
func SQLiteDSN(path string, foreignKeys bool) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	if foreignKeys {
		q.Add("_pragma", "foreign_keys(ON)")
	}
	q.Set("_txlock", "immediate")
	return "file:" + abs + "?" + q.Encode(), nil
}

// SQLite pool sizes: one writer (SQLite has one; queuing in Go is cheaper
// than busy-waiting in SQLite) and a few readers (WAL lets them run beside
// the writer).
const (
	SQLiteWriters = 1
	SQLiteReaders = 4
)

// OpenSQLitePools opens the file at path twice: a pool of one connection
// for writes and a pool of SQLiteReaders for reads. Both see every
// committed write. WithCounters counts both pools' statements and commits.
// The writer's WAL checkpoints run beside it, not in its commits
// (checkpoint.go; WithCheckpoint tunes them).
func OpenSQLitePools(path string, foreignKeys bool, opts ...Option) (write, read *sql.DB, err error) {
	if write, err = openSQLiteWriter(path, foreignKeys, applyOptions(opts)); err != nil {
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	write.SetMaxOpenConns(SQLiteWriters)
	// The writer connects first: its journal_mode(WAL) converts a new
	// file alone. Readers opening together on a file not yet in WAL mode
	// each try that conversion, and SQLite refuses all but one at once
	// with SQLITE_BUSY (no busy wait for it).
	if err = write.PingContext(context.Background()); err != nil {
		write.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	if read, err = OpenSQLite(path, foreignKeys, opts...); err != nil {
		write.Close()
		return nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	read.SetMaxOpenConns(SQLiteReaders)
	// Keep every reader open: database/sql keeps 2 idle by default, so
	// with 4 busy the other 2 were closed after each use and opened again
	// (a connection's open, pragmas and prepared statements: 10 % of the
	// dispatch bench's CPU once the log's consumers shared this pool).
	read.SetMaxIdleConns(SQLiteReaders)
	return write, read, nil
}
