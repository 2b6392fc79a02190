// Package sqlstore implements the store interfaces of package smp (one
// file per aggregate) on database/sql: SQLite (embedded
// default) with migrations per dialect in migrations/<dialect>/.
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"smp"
	"smp/internal/sqldb"
)

//go:embed migrations
var migrationsFS embed.FS

// Config of a Store. Path selects embedded SQLite; MySQLDSN selects MySQL
// (the primary), with MySQLReadDSN as an optional replica for reads.
type Config struct {
	Path         string
	MySQLDSN     string
	MySQLReadDSN string
	// ReplicaLagThreshold: above it (or when the replica does not answer)
	// reads move to the primary (default 30 s, the runbook's threshold).
	ReplicaLagThreshold time.Duration
	// LagInterval is how often replica lag is measured (default 1 s).
	LagInterval time.Duration
	// MaxConns bounds each MySQL pool (default 32).
	MaxConns int
	// NoGroupCommit turns SQLite's group commit off: every write
	// transaction then commits (and fsyncs) on its own, as before issue
	// 22. By default the writer runs the transactions waiting at the same
	// moment as one database transaction, each under its own savepoint,
	// with one fsync for all (sqldb.GroupCommitter). MySQL never groups
	// callers (InnoDB groups its log flushes itself).
	NoGroupCommit bool
	// Now is the clock; time.Now by default.
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	switch {
	case c.Path == "" && c.MySQLDSN == "":
		return smp.Errorf(smp.EINVALID, "sqlstore: a SQLite path or a MySQL DSN is required")
	case c.Path != "" && c.MySQLDSN != "":
		return smp.Errorf(smp.EINVALID, "sqlstore: give a SQLite path or a MySQL DSN, not both")
	case c.MySQLReadDSN != "" && c.MySQLDSN == "":
		return smp.Errorf(smp.EINVALID, "sqlstore: a read DSN needs a MySQL primary DSN")
	}
	for _, dsn := range []string{c.MySQLDSN, c.MySQLReadDSN} {
		if dsn == "" {
			continue
		}
		if _, err := sqldb.ParseMySQLDSN(dsn); err != nil {
			return smp.Errorf(smp.EINVALID, "sqlstore: invalid MySQL DSN: %v", err)
		}
	}
	if c.ReplicaLagThreshold <= 0 {
		c.ReplicaLagThreshold = 30 * time.Second
	}
	if c.LagInterval <= 0 {
		c.LagInterval = time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 32
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// DB is SMP's system of record on SQL. On SQLite, writes go through one connection
// (SQLite has one writer; queuing in Go is cheaper than busy-waiting in
// SQLite) and reads through a pool (sqldb.OpenSQLitePools). On MySQL, writes and reads that must
// see them go to the primary; other reads go to the replica while its lag
// is under the threshold.
type DB struct {
	write   *sql.DB
	read    *sql.DB // SQLite read pool, or the MySQL replica
	dialect Dialect
	cfg     Config
	now     func() time.Time

	mu        sync.Mutex
	onCommit  []chan struct{}
	onOutbox  []chan struct{}
	closeOnce sync.Once

	// outboxLog appends outbox events to the event log in their own
	// transaction (SetOutboxLog).
	outboxLog atomic.Pointer[OutboxLog]

	replica *replicaMonitor
	// gc runs SQLite's write transactions (nil on MySQL or with
	// NoGroupCommit): see writeTx.
	gc     *sqldb.GroupCommitter
	offers offerBatch
	// counters count every statement and commit on both pools
	// (smp_sql_*_total{db="store"}).
	counters *sqldb.Counters
	// tokens caches customers' and technicians' token owners (tokens.go).
	tokens tokenCache
}

// Open opens (creating if needed) the database and applies migrations.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db := &DB{cfg: cfg, now: cfg.Now, counters: sqldb.NewCounters("store")}
	if err := registerCounters(cfg.Registerer, db.counters); err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
	}
	var err error
	if cfg.MySQLDSN != "" {
		err = db.openMySQL(ctx)
	} else {
		err = db.openSQLite()
	}
	if err != nil {
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if cfg.MySQLReadDSN != "" {
		if db.replica, err = newReplicaMonitor(db, cfg); err != nil {
			db.Close()
			return nil, err
		}
	}
	db.startOffers()
	return db, nil
}

func (db *DB) openSQLite() error {
	var err error
	if db.write, db.read, err = sqldb.OpenSQLitePools(db.cfg.Path, true, sqldb.WithCounters(db.counters)); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	db.dialect = SQLite
	if !db.cfg.NoGroupCommit {
		db.gc = sqldb.NewGroupCommitter(db.write, 0, db.counters)
	}
	return nil
}

func (db *DB) openMySQL(ctx context.Context) error {
	pool := sqldb.Pool{MaxOpen: db.cfg.MaxConns, MaxIdle: max(2, db.cfg.MaxConns/4), MaxIdleTime: time.Minute, MaxLifetime: 30 * time.Minute}
	open := func(dsn string) (*sql.DB, error) {
		return sqldb.OpenMySQL(dsn, true, pool, sqldb.WithCounters(db.counters))
	}
	var err error
	if db.write, err = open(db.cfg.MySQLDSN); err != nil {
		return fmt.Errorf("sqlstore: open mysql: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.write.PingContext(pctx); err != nil {
		db.write.Close()
		return smp.Errorf(smp.EUNAVAILABLE, "sqlstore: mysql primary: %v", err)
	}
	db.read = db.write
	if db.cfg.MySQLReadDSN != "" {
		// A replica that is down at start is not fatal: reads stay on the
		// primary until it answers.
		if db.read, err = open(db.cfg.MySQLReadDSN); err != nil {
			db.write.Close()
			return fmt.Errorf("sqlstore: open mysql replica: %w", err)
		}
	}
	db.dialect = MySQL
	return nil
}

// reader returns the pool for reads that may lag: the replica while it is
// healthy, the primary otherwise.
func (db *DB) reader() *sql.DB {
	if db.replica != nil && !db.replica.healthy() {
		return db.write
	}
	return db.read
}

// fresh returns the pool for reads that must see every committed write
// (the caller's own above all): the MySQL primary, or SQLite's read pool,
// which is always current.
func (db *DB) fresh() *sql.DB {
	if db.dialect.Name == SQLite.Name {
		return db.read
	}
	return db.write
}

// ReadTarget says where lag-tolerant reads go now: "sqlite", "primary" or "replica".
func (db *DB) ReadTarget() string {
	switch {
	case db.dialect.Name == SQLite.Name:
		return "sqlite"
	case db.replica == nil || !db.replica.healthy():
		return "primary"
	}
	return "replica"
}

// ReplicaLag returns the last measured replica lag and whether the replica
// answered; ok is false without a replica.
func (db *DB) ReplicaLag() (lag time.Duration, reachable, ok bool) {
	if db.replica == nil {
		return 0, false, false
	}
	lag, reachable = db.replica.status()
	return lag, reachable, true
}

// SQLCounts is what the store has asked of its database so far:
// statements by kind, commits, write commits (on SQLite, the fsyncs of
// commits). smp-bench divides them per order; /metrics has them as
// smp_sql_*_total{db="store"}.
func (db *DB) SQLCounts() sqldb.CounterSnapshot { return db.counters.Snapshot() }

// registerCounters exports c on reg (nil: not exported); a second store
// on the same registry keeps the first one's.
func registerCounters(reg prometheus.Registerer, c *sqldb.Counters) error {
	if reg == nil {
		return nil
	}
	var are prometheus.AlreadyRegisteredError
	if err := reg.Register(c); err != nil && !errors.As(err, &are) {
		return err
	}
	return nil
}

// Dialect returns the database's dialect name.
func (db *DB) Dialect() string { return db.dialect.Name }

// Migrate applies pending migrations; Open already does. On MySQL a named
// lock keeps several processes from migrating at once.
func (db *DB) migrate(ctx context.Context) error {
	m := sqldb.Migrations{FS: migrationsFS, Dir: "migrations", Table: "schema_migrations", Lock: "smp_migrate", Now: db.now}
	if err := m.Migrate(ctx, db.write, db.dialect); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	}
	return nil
}

// SchemaVersion returns the newest applied migration.
func (db *DB) SchemaVersion(ctx context.Context) (string, error) {
	var v sql.NullString
	err := db.write.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	return v.String, err
}

// Close closes the database; it is safe to call twice.
func (db *DB) Close() error {
	var err error
	db.closeOnce.Do(func() {
		db.stopOffers() // its last flush goes through gc
		if db.gc != nil {
			db.gc.Close()
		}
		if db.replica != nil {
			db.replica.stop()
		}
		if db.read != nil && db.read != db.write {
			err = db.read.Close()
		}
		if db.write != nil {
			err = errors.Join(err, db.write.Close())
		}
	})
	return err
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.write.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
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

// OutboxSignal returns a channel that receives (without blocking the
// committer) after every commit that left outbox events for the relay:
// not after those whose events went to the event log in their own
// transaction (SetOutboxLog). The relay waits on it.
func (db *DB) OutboxSignal() <-chan struct{} {
	ch := make(chan struct{}, 1)
	db.mu.Lock()
	db.onOutbox = append(db.onOutbox, ch)
	db.mu.Unlock()
	return ch
}

func (db *DB) signalCommit(unpublished bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	notify := func(chs []chan struct{}) {
		for _, ch := range chs {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	notify(db.onCommit)
	if unpublished {
		notify(db.onOutbox)
	}
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
