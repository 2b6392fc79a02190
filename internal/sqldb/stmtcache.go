package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"

	"modernc.org/sqlite"
)

// OpenSQLite opens the SQLite database at path (see SQLiteDSN) behind a connector that
// keeps each connection's prepared statements. The driver otherwise parses
// every query anew; under load SQL parsing was the first CPU hotspot of
// smp-bench dispatch (docs/performance.md). WithCounters counts its
// statements and commits.
func OpenSQLite(path string, foreignKeys bool, opts ...Option) (*sql.DB, error) {
	dsn, err := SQLiteDSN(path, foreignKeys)
	if err != nil {
		return nil, err
	}
	if o := applyOptions(opts); o.counters != nil {
		return sql.OpenDB(countingConnector{Connector: connector{dsn: dsn}, c: o.counters}), nil
	}
	return sql.OpenDB(connector{dsn: dsn}), nil
}

// maxCached bounds each connection's statements: queries built with
// varying text (IN lists) beyond it run unprepared.
const maxCached = 256

type connector struct{ dsn string }

func (c connector) Connect(context.Context) (driver.Conn, error) {
	inner, err := (&sqlite.Driver{}).Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachedConn{Conn: inner, stmts: map[string]*cachedStmt{}}, nil
}

func (c connector) Driver() driver.Driver { return &sqlite.Driver{} }

type cachedStmt struct {
	driver.Stmt
	busy bool // its rows are open (a query may run again before they close)
}

// cachedConn is a modernc connection with a statement cache. database/sql
// uses a connection from one goroutine at a time, so the map needs no lock.
type cachedConn struct {
	driver.Conn
	stmts    map[string]*cachedStmt
	prepares int // statements prepared for the cache (tests read it)
}

// stmt returns the cached statement for query, preparing it on first use;
// nil when it is busy or the cache is full (the caller runs it unprepared).
func (c *cachedConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		return s, nil
	}
	if len(c.stmts) >= maxCached {
		return nil, nil
	}
	ds, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s := &cachedStmt{Stmt: ds}
	c.stmts[query] = s
	c.prepares++
	return s, nil
}

func (c *cachedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	rows, err := s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &cachedRows{Rows: rows, s: s}, nil
}

func (c *cachedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *cachedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *cachedConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

func (c *cachedConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *cachedConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

func (c *cachedConn) Close() error {
	for _, s := range c.stmts {
		s.Stmt.Close()
	}
	c.stmts = nil
	return c.Conn.Close()
}

type cachedRows struct {
	driver.Rows
	s *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close() // resets the statement for its next use
	r.s.busy = false
	return err
}
