package sqldb

import (
	"context"
	"database/sql/driver"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Op is the kind of an SQL statement, by its first keyword.
type Op int

// The statement kinds Counters tells apart.
const (
	OpSelect Op = iota // SELECT, WITH
	OpInsert           // INSERT, REPLACE
	OpUpdate
	OpDelete
	OpOther // DDL, PRAGMA, SET, SAVEPOINT…
	numOps
)

var opNames = [numOps]string{"select", "insert", "update", "delete", "other"}

func (o Op) String() string { return opNames[o] }

// Counters counts what a process asks of one SQL database: statements by
// kind, commits, and write commits. A write commit is the commit of a
// transaction that ran a statement other than a SELECT, or such a
// statement outside a transaction (its own implicit transaction). On
// SQLite in WAL mode with synchronous=FULL (sqldb's setting) every write
// commit appends to the WAL and fsyncs it, so write commits are the
// fsyncs of commits (checkpoints add a few more, not counted); on MySQL
// with innodb_flush_log_at_trx_commit=1 each is a redo log flush, which
// InnoDB may group with others'. Counting costs an atomic add per
// statement. Safe for concurrent use; a nil *Counters counts nothing.
//
// Counters is a prometheus.Collector: smp_sql_statements_total{db,op},
// smp_sql_commits_total{db}, smp_sql_write_commits_total{db},
// smp_sql_rollbacks_total{db}, where db is the name given to NewCounters
// ("store", "bus").
type Counters struct {
	db           string
	statements   [numOps]atomic.Uint64
	commits      atomic.Uint64
	writeCommits atomic.Uint64
	rollbacks    atomic.Uint64
	// group commit (GroupCommitter): batches committed, callers in them
	groupCommits atomic.Uint64
	groupCallers atomic.Uint64
	batchSize    prometheus.Histogram
	// census counts statements by text while EnableCensus is on (nil:
	// off, and counting costs one atomic load more).
	census atomic.Pointer[census]
	// background WAL checkpoints (checkpoint.go)
	checkpoints *checkpointMetrics

	stmtDesc, commitDesc, writeDesc, rollbackDesc *prometheus.Desc
}

// NewCounters returns counters for the database named db (the label
// db of its metrics).
func NewCounters(db string) *Counters {
	l := prometheus.Labels{"db": db}
	return &Counters{db: db,
		stmtDesc: prometheus.NewDesc("smp_sql_statements_total",
			"SQL statements run, by database (store, bus) and kind (select, insert, update, delete, other); BEGIN and COMMIT are not statements here.", []string{"op"}, l),
		commitDesc: prometheus.NewDesc("smp_sql_commits_total",
			"Transactions committed (read-only ones included), by database.", nil, l),
		writeDesc: prometheus.NewDesc("smp_sql_write_commits_total",
			"Commits that wrote: transactions that ran a statement other than SELECT, and such statements run outside a transaction. On SQLite (WAL, synchronous=FULL) each is one fsync of the WAL; on MySQL one redo log flush (innodb_flush_log_at_trx_commit=1), possibly grouped.", nil, l),
		rollbackDesc: prometheus.NewDesc("smp_sql_rollbacks_total",
			"Transactions rolled back, by database.", nil, l),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "smp_sql_group_commit_batch_size",
			Help:        "Callers whose transactions one group commit (one COMMIT, on SQLite one fsync) committed together, by database.",
			ConstLabels: l, Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}}),
		checkpoints: newCheckpointMetrics(l),
	}
}

// observeBatch records a group commit of n callers.
func (c *Counters) observeBatch(n int) {
	if c == nil {
		return
	}
	c.groupCommits.Add(1)
	c.groupCallers.Add(uint64(n))
	c.batchSize.Observe(float64(n))
}

// CounterSnapshot is what Counters counted up to a moment.
type CounterSnapshot struct {
	Statements   [numOps]uint64
	Commits      uint64
	WriteCommits uint64
	Rollbacks    uint64
	// GroupCommits are the commits of GroupCommitter batches, GroupCallers
	// the callers they committed: GroupCallers/GroupCommits callers per fsync.
	GroupCommits uint64
	GroupCallers uint64
}

// TotalStatements is the sum over kinds.
func (s CounterSnapshot) TotalStatements() uint64 {
	var n uint64
	for _, v := range s.Statements {
		n += v
	}
	return n
}

// Sub is s minus an earlier snapshot.
func (s CounterSnapshot) Sub(earlier CounterSnapshot) CounterSnapshot {
	out := CounterSnapshot{Commits: s.Commits - earlier.Commits, WriteCommits: s.WriteCommits - earlier.WriteCommits, Rollbacks: s.Rollbacks - earlier.Rollbacks,
		GroupCommits: s.GroupCommits - earlier.GroupCommits, GroupCallers: s.GroupCallers - earlier.GroupCallers}
	for i := range s.Statements {
		out.Statements[i] = s.Statements[i] - earlier.Statements[i]
	}
	return out
}

// Add is the sum of two snapshots (two databases').
func (s CounterSnapshot) Add(o CounterSnapshot) CounterSnapshot {
	out := CounterSnapshot{Commits: s.Commits + o.Commits, WriteCommits: s.WriteCommits + o.WriteCommits, Rollbacks: s.Rollbacks + o.Rollbacks,
		GroupCommits: s.GroupCommits + o.GroupCommits, GroupCallers: s.GroupCallers + o.GroupCallers}
	for i := range s.Statements {
		out.Statements[i] = s.Statements[i] + o.Statements[i]
	}
	return out
}

// Snapshot reads the counters; the zero snapshot for nil.
func (c *Counters) Snapshot() CounterSnapshot {
	var s CounterSnapshot
	if c == nil {
		return s
	}
	for i := range c.statements {
		s.Statements[i] = c.statements[i].Load()
	}
	s.Commits, s.WriteCommits, s.Rollbacks = c.commits.Load(), c.writeCommits.Load(), c.rollbacks.Load()
	s.GroupCommits, s.GroupCallers = c.groupCommits.Load(), c.groupCallers.Load()
	return s
}

// Describe implements prometheus.Collector.
func (c *Counters) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.stmtDesc
	ch <- c.commitDesc
	ch <- c.writeDesc
	ch <- c.rollbackDesc
	c.batchSize.Describe(ch)
	c.checkpoints.describe(ch)
}

// Collect implements prometheus.Collector.
func (c *Counters) Collect(ch chan<- prometheus.Metric) {
	s := c.Snapshot()
	for i, n := range s.Statements {
		ch <- prometheus.MustNewConstMetric(c.stmtDesc, prometheus.CounterValue, float64(n), opNames[i])
	}
	ch <- prometheus.MustNewConstMetric(c.commitDesc, prometheus.CounterValue, float64(s.Commits))
	ch <- prometheus.MustNewConstMetric(c.writeDesc, prometheus.CounterValue, float64(s.WriteCommits))
	ch <- prometheus.MustNewConstMetric(c.rollbackDesc, prometheus.CounterValue, float64(s.Rollbacks))
	c.batchSize.Collect(ch)
	c.checkpoints.collect(ch)
}

// OpOf classifies a statement by its first keyword (leading spaces and
// comments skipped).
func OpOf(query string) Op {
	switch w := firstWord(query); {
	case eqFold(w, "select"), eqFold(w, "with"):
		return OpSelect
	case eqFold(w, "insert"), eqFold(w, "replace"):
		return OpInsert
	case eqFold(w, "update"):
		return OpUpdate
	case eqFold(w, "delete"):
		return OpDelete
	}
	return OpOther
}

// isTxControl reports SAVEPOINT, RELEASE and ROLLBACK [TO]: statements
// that write nothing of their own (a group commit's savepoints must not
// turn a read-only batch into a write commit).
func isTxControl(query string) bool {
	w := firstWord(query)
	return eqFold(w, "savepoint") || eqFold(w, "release") || eqFold(w, "rollback")
}

// firstWord returns the statement's first keyword ("" if none), leading
// spaces, parentheses and comments skipped.
func firstWord(query string) string {
	i := 0
	for i < len(query) {
		switch c := query[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(':
			i++
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			for i < len(query) && query[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			j := i + 2
			for j+1 < len(query) && !(query[j] == '*' && query[j+1] == '/') {
				j++
			}
			i = j + 2
		default:
			goto word
		}
	}
	return ""
word:
	j := i
	for j < len(query) && (query[j]|0x20) >= 'a' && (query[j]|0x20) <= 'z' {
		j++
	}
	return query[i:j]
}

// eqFold compares an ASCII word with a lower-case keyword.
func eqFold(w, kw string) bool {
	if len(w) != len(kw) {
		return false
	}
	for i := 0; i < len(w); i++ {
		if w[i]|0x20 != kw[i] {
			return false
		}
	}
	return true
}

// Option changes how a database is opened.
type Option func(*options)

type options struct {
	counters   *Counters
	checkpoint *CheckpointConfig // the writer's (checkpoint.go)
}

// WithCounters counts the database's statements and commits in c.
func WithCounters(c *Counters) Option { return func(o *options) { o.counters = c } }

func applyOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// countingConnector wraps a connector so that its connections count.
type countingConnector struct {
	driver.Connector
	c *Counters
}

func (cc countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := cc.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, c: cc.c}, nil
}

// countingConn counts the statements run on a connection. database/sql
// uses a connection from one goroutine at a time, so inTx and wrote need
// no lock. It forwards every optional interface the drivers SMP uses
// implement (a missing one on the inner connection answers ErrSkip, which
// database/sql takes as "use the fallback").
type countingConn struct {
	driver.Conn
	c     *Counters
	inTx  bool
	wrote bool
}

func (cc *countingConn) count(query string) {
	op := OpOf(query)
	cc.c.statements[op].Add(1)
	if cs := cc.c.census.Load(); cs != nil {
		cs.add(query)
	}
	if op == OpSelect || op == OpOther && isTxControl(query) {
		return
	}
	if cc.inTx {
		cc.wrote = true
	} else {
		cc.c.writeCommits.Add(1) // its own implicit transaction
	}
}

func (cc *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := cc.Conn.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	rows, err := q.QueryContext(ctx, query, args)
	if err != driver.ErrSkip {
		cc.count(query)
	}
	return rows, err
}

func (cc *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := cc.Conn.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	res, err := e.ExecContext(ctx, query, args)
	if err != driver.ErrSkip {
		cc.count(query)
	}
	return res, err
}

func (cc *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var s driver.Stmt
	var err error
	if p, ok := cc.Conn.(driver.ConnPrepareContext); ok {
		s, err = p.PrepareContext(ctx, query)
	} else {
		s, err = cc.Conn.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: s, conn: cc, query: query}, nil
}

func (cc *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	var tx driver.Tx
	var err error
	if b, ok := cc.Conn.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		//lint:ignore SA1019 the fallback database/sql itself uses
		tx, err = cc.Conn.Begin()
	}
	if err != nil {
		return nil, err
	}
	cc.inTx, cc.wrote = true, false
	return &countingTx{Tx: tx, conn: cc}, nil
}

func (cc *countingConn) Ping(ctx context.Context) error {
	if p, ok := cc.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (cc *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := cc.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (cc *countingConn) IsValid() bool {
	if v, ok := cc.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (cc *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := cc.Conn.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

// Unwrap returns the driver's own connection (sql.Conn.Raw hands out the
// wrapper).
func (cc *countingConn) Unwrap() driver.Conn { return cc.Conn }

type countingTx struct {
	driver.Tx
	conn *countingConn
}

func (t *countingTx) Commit() error {
	err := t.Tx.Commit()
	if err == nil {
		t.conn.c.commits.Add(1)
		if t.conn.wrote {
			t.conn.c.writeCommits.Add(1)
		}
	}
	t.conn.inTx, t.conn.wrote = false, false
	return err
}

func (t *countingTx) Rollback() error {
	err := t.Tx.Rollback()
	t.conn.c.rollbacks.Add(1)
	t.conn.inTx, t.conn.wrote = false, false
	return err
}

// countingStmt counts each execution of a prepared statement.
type countingStmt struct {
	driver.Stmt
	conn  *countingConn
	query string
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	var res driver.Result
	var err error
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		res, err = e.ExecContext(ctx, args)
	} else {
		//lint:ignore SA1019 the fallback database/sql itself uses
		res, err = s.Stmt.Exec(values(args))
	}
	s.conn.count(s.query)
	return res, err
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	var rows driver.Rows
	var err error
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		rows, err = q.QueryContext(ctx, args)
	} else {
		//lint:ignore SA1019 the fallback database/sql itself uses
		rows, err = s.Stmt.Query(values(args))
	}
	s.conn.count(s.query)
	return rows, err
}

func (s *countingStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func values(args []driver.NamedValue) []driver.Value {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}

// DefaultCensusTexts is how many distinct statement texts a census keeps
// apart when EnableCensus is given 0; the statements of any further text
// count under CensusOther.
const DefaultCensusTexts = 500

// CensusOther is the census's entry for the statements of texts past its
// cap.
const CensusOther = "other"

// census counts statements by their text: a lookup of the driver's query
// string (no allocation), an atomic add. Texts are normalized when read.
type census struct {
	max   int64
	texts atomic.Int64
	by    sync.Map // query string -> *atomic.Uint64
	other atomic.Uint64
}

func (cs *census) add(query string) {
	if v, ok := cs.by.Load(query); ok {
		v.(*atomic.Uint64).Add(1)
		return
	}
	if cs.texts.Add(1) > cs.max {
		cs.texts.Add(-1)
		cs.other.Add(1)
		return
	}
	v, loaded := cs.by.LoadOrStore(query, new(atomic.Uint64))
	if loaded {
		cs.texts.Add(-1)
	}
	v.(*atomic.Uint64).Add(1)
}

// EnableCensus starts counting statements by text as well, keeping at
// most maxTexts distinct texts (0: DefaultCensusTexts); the statements
// of further texts count under CensusOther. Off by default: a census is
// for measuring (smp-bench --sql-census), not for production. Calling it
// again keeps the census running. Statements run before it are not in
// the census.
func (c *Counters) EnableCensus(maxTexts int) {
	if c == nil {
		return
	}
	if maxTexts <= 0 {
		maxTexts = DefaultCensusTexts
	}
	c.census.CompareAndSwap(nil, &census{max: int64(maxTexts)})
}

// Census returns the statements counted so far by normalized text
// (NormalizeStatement: whitespace collapsed, lists of placeholders and of
// rows written once), and the ones past the cap under CensusOther; nil
// while the census is off.
func (c *Counters) Census() map[string]uint64 {
	if c == nil {
		return nil
	}
	cs := c.census.Load()
	if cs == nil {
		return nil
	}
	out := map[string]uint64{}
	cs.by.Range(func(k, v any) bool {
		if n := v.(*atomic.Uint64).Load(); n > 0 {
			out[NormalizeStatement(k.(string))] += n
		}
		return true
	})
	if n := cs.other.Load(); n > 0 {
		out[CensusOther] += n
	}
	return out
}

var (
	placeholderList = regexp.MustCompile(`\?(?:, ?\?)+`)
	rowList         = regexp.MustCompile(`\(\?(?:, …)?\)(?:, ?\(\?(?:, …)?\))+`)
)

// NormalizeStatement is a statement's text as a census shows it:
// whitespace runs collapsed to one space, a list of two or more
// placeholders written "?, …" and a list of two or more rows of them
// "(?, …), …", so that an IN list or a multi-row INSERT counts as one
// text whatever its length.
func NormalizeStatement(query string) string {
	s := strings.Join(strings.Fields(query), " ")
	s = placeholderList.ReplaceAllString(s, "?, …")
	return rowList.ReplaceAllStringFunc(s, func(m string) string {
		return m[:strings.IndexByte(m, ')')+1] + ", …"
	})
}
