// Package sqlstore implements smp.Store on database/sql: SQLite (embedded
// default) with migrations per dialect in migrations/<dialect>/.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"smp"
)

//go:embed migrations
var migrationsFS embed.FS

// Config of a Store.
type Config struct {
	// Path of the SQLite database file.
	Path string
	// Now is the clock; time.Now by default.
	Now func() time.Time
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Path == "" {
		return smp.Errorf(smp.EINVALID, "sqlstore: database path is required")
	}
	return nil
}

// DB is an smp.Store on SQL. Writes go through one connection (SQLite has
// one writer; queuing in Go is cheaper than busy-waiting in SQLite), reads
// through a pool.
type DB struct {
	write   *sql.DB
	read    *sql.DB
	dialect Dialect
	now     func() time.Time

	mu        sync.Mutex
	onCommit  []chan struct{}
	closeOnce sync.Once
}

var _ smp.Store = (*DB)(nil)

// Open opens (creating if needed) the database and applies migrations.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	abs, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + abs + "?" + q.Encode()

	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: open: %w", err)
	}
	r.SetMaxOpenConns(4)
	db := &DB{write: w, read: r, dialect: SQLite, now: cfg.Now}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Migrate applies pending migrations; Open already does.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlstore: migrations table: %w", err)
	}
	dir := "migrations/" + db.dialect.Name
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return fmt.Errorf("sqlstore: read migrations: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		version := strings.TrimSuffix(e.Name(), ".sql")
		var n int
		if err := db.write.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
			return fmt.Errorf("sqlstore: check migration %s: %w", version, err)
		}
		if n > 0 {
			continue
		}
		body, err := fs.ReadFile(migrationsFS, dir+"/"+e.Name())
		if err != nil {
			return err
		}
		tx, err := db.write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, stmt := range strings.Split(string(body), ";\n") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("sqlstore: migration %s: %w", version, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, db.now().UnixMicro()); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlstore: commit migration %s: %w", version, err)
		}
	}
	return nil
}

// SchemaVersion returns the newest applied migration.
func (db *DB) SchemaVersion(ctx context.Context) (string, error) {
	var v sql.NullString
	err := db.read.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	return v.String, err
}

// Close closes the database; it is safe to call twice.
func (db *DB) Close() error {
	var err error
	db.closeOnce.Do(func() {
		err = errors.Join(db.write.Close(), db.read.Close())
	})
	return err
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return smp.Errorf(smp.EUNAVAILABLE, "database: %v", err)
	}
	return nil
}

// CommitSignal returns a channel that receives (without blocking the
// committer) after every commit that wrote outbox events.
func (db *DB) CommitSignal() <-chan struct{} {
	ch := make(chan struct{}, 1)
	db.mu.Lock()
	db.onCommit = append(db.onCommit, ch)
	db.mu.Unlock()
	return ch
}

func (db *DB) signalCommit() {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, ch := range db.onCommit {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// InTx runs fn in a transaction on the primary.
func (db *DB) InTx(ctx context.Context, fn func(smp.Tx) error) error {
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

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func nullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}
