package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"modernc.org/sqlite"
)

// SQLite's WAL must be copied back into the database file now and then (a
// checkpoint). Left to SQLite, the connection whose COMMIT takes the WAL
// past wal_autocheckpoint pages (1,000) runs the checkpoint inside that
// COMMIT: on SMP's one writer, the group committer's batch and every
// caller queued behind it wait for ~1,000 pages to be copied and the
// database file fsynced. So the writer's own checkpoint is only a backstop
// (WriterFrames, which bounds the WAL when the background falls behind),
// and a checkpointer of the writer's, on a connection of its own, runs
// PRAGMA wal_checkpoint(PASSIVE) once the writer has written Frames pages
// since the last one. A passive checkpoint takes no lock a writer or a
// reader waits for: the writer goes on committing while it copies.
// Durability is unchanged: every COMMIT still fsyncs the WAL
// (synchronous=FULL), and the checkpoint fsyncs the database file before
// SQLite may reuse the WAL.

// CheckpointConfig tunes where a SQLite writer's checkpoints run.
type CheckpointConfig struct {
	// Frames: the background checkpoint runs once the writer has written
	// this many pages to the WAL since the last one (default 1,000,
	// SQLite's own wal_autocheckpoint).
	Frames int
	// WriterFrames is the writer connection's own wal_autocheckpoint: it
	// checkpoints in its COMMIT only once the WAL holds this many pages,
	// when the background checkpoints cannot keep up (default 10,000:
	// about 40 MB of WAL with 4 KiB pages). It bounds the WAL's growth.
	WriterFrames int
	// Off leaves every checkpoint to the writer's COMMIT at WriterFrames
	// (tests of the backstop).
	Off bool
}

func (c *CheckpointConfig) defaults() {
	if c.Frames <= 0 {
		c.Frames = 1000
	}
	if c.WriterFrames <= 0 {
		c.WriterFrames = 10000
	}
}

// WithCheckpoint sets where OpenSQLitePools' writer checkpoints (see
// CheckpointConfig; the defaults otherwise).
func WithCheckpoint(c CheckpointConfig) Option {
	return func(o *options) { o.checkpoint = &c }
}

// checkpointMetrics are the background checkpoints of one database, part
// of its Counters: smp_sql_checkpoint_seconds{db} (how long each took;
// its count is how many ran), smp_sql_checkpoint_failures_total{db}
// (busy or failed, tried again at the next trigger) and
// smp_sql_wal_frames{db} (pages in the WAL after the last checkpoint, not
// yet copied: what the checkpoint could not take because readers still
// use them or the writer wrote them meanwhile).
//
// With them, smp_sql_group_commit_seconds{db}: how long each group
// commit's COMMIT took (the WAL's fsync; a checkpoint too when the
// writer's backstop runs one), to tell the tail's causes apart.
type checkpointMetrics struct {
	seconds  prometheus.Histogram
	failures prometheus.Counter
	walLeft  prometheus.Gauge
	commit   prometheus.Histogram
}

func newCheckpointMetrics(l prometheus.Labels) *checkpointMetrics {
	return &checkpointMetrics{
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "smp_sql_checkpoint_seconds",
			Help:        "SQLite WAL checkpoints run in the background (off the writer's commits), by database, and how long each took.",
			ConstLabels: l, Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "smp_sql_checkpoint_failures_total",
			Help: "Background SQLite WAL checkpoints that were busy or failed (tried again at the next trigger), by database.", ConstLabels: l}),
		walLeft: prometheus.NewGauge(prometheus.GaugeOpts{Name: "smp_sql_wal_frames",
			Help: "Pages left in the SQLite WAL after the last background checkpoint, by database.", ConstLabels: l}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "smp_sql_group_commit_seconds",
			Help:        "How long each group commit's COMMIT took (on SQLite the WAL's fsync), by database.",
			ConstLabels: l, Buckets: []float64{.0005, .001, .0025, .005, .01, .02, .05, .1, .25, .5, 1}}),
	}
}

// observeCommit records how long a group commit's COMMIT took.
func (c *Counters) observeCommit(d time.Duration) {
	if c == nil {
		return
	}
	c.checkpoints.commit.Observe(d.Seconds())
}

func (m *checkpointMetrics) describe(ch chan<- *prometheus.Desc) {
	m.seconds.Describe(ch)
	m.failures.Describe(ch)
	m.walLeft.Describe(ch)
	m.commit.Describe(ch)
}

func (m *checkpointMetrics) collect(ch chan<- prometheus.Metric) {
	m.seconds.Collect(ch)
	m.failures.Collect(ch)
	m.walLeft.Collect(ch)
	m.commit.Collect(ch)
}

// openSQLiteWriter opens the one-connection write pool of OpenSQLitePools:
// its connection checkpoints only past WriterFrames, and runs a
// checkpointer beside it.
func openSQLiteWriter(path string, foreignKeys bool, o options) (*sql.DB, error) {
	cfg := CheckpointConfig{}
	if o.checkpoint != nil {
		cfg = *o.checkpoint
	}
	cfg.defaults()
	plain, err := SQLiteDSN(path, foreignKeys)
	if err != nil {
		return nil, err
	}
	dsn := plain + "&_pragma=" + fmt.Sprintf("wal_autocheckpoint(%d)", cfg.WriterFrames)
	var m *checkpointMetrics
	if o.counters != nil {
		m = o.counters.checkpoints
	}
	var c driver.Connector = writerConnector{connector: connector{dsn: dsn}, checkpointDSN: plain, cfg: cfg, m: m}
	if o.counters != nil {
		c = countingConnector{Connector: c, c: o.counters}
	}
	return sql.OpenDB(c), nil
}

type writerConnector struct {
	connector
	checkpointDSN string
	cfg           CheckpointConfig
	m             *checkpointMetrics
}

func (w writerConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := w.connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	cc := dc.(*cachedConn)
	wc := &writerConn{cachedConn: cc}
	if st, ok := cc.Conn.(sqlite.DBStatus); ok && !w.cfg.Off {
		wc.status = st
		wc.ck = newCheckpointer(w.checkpointDSN, int64(w.cfg.Frames), w.m)
	}
	return wc, nil
}

// writerConn is the writer's connection: after each commit it adds the
// pages the commit wrote to the WAL to its checkpointer's count (a call
// into SQLite's per-connection counters, no I/O). database/sql uses a
// connection from one goroutine at a time.
type writerConn struct {
	*cachedConn
	status sqlite.DBStatus
	ck     *checkpointer // nil: none
	inTx   bool
}

func (w *writerConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := w.cachedConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	w.inTx = true
	return &writerTx{Tx: tx, w: w}, nil
}

// ExecContext counts what a statement outside a transaction wrote (its
// own implicit transaction).
func (w *writerConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := w.cachedConn.ExecContext(ctx, query, args)
	if !w.inTx {
		w.wrote()
	}
	return res, err
}

func (w *writerConn) Close() error {
	if w.ck != nil {
		w.ck.close()
	}
	return w.cachedConn.Close()
}

// wrote adds the pages written since the last call to the checkpointer.
func (w *writerConn) wrote() {
	if w.ck == nil {
		return
	}
	n, _, err := w.status.Status(sqlite.DBStatusCacheWrite, true)
	if err == nil && n > 0 {
		w.ck.add(int64(n))
	}
}

type writerTx struct {
	driver.Tx
	w *writerConn
}

func (t *writerTx) Commit() error {
	err := t.Tx.Commit()
	t.w.inTx = false
	t.w.wrote()
	return err
}

func (t *writerTx) Rollback() error {
	err := t.Tx.Rollback()
	t.w.inTx = false
	t.w.wrote() // pages spilled to the WAL before the rollback are there too
	return err
}

// checkpointer runs a writer's checkpoints on a connection of its own,
// in one goroutine that the writer's connection stops when it closes.
type checkpointer struct {
	dsn       string
	threshold int64
	m         *checkpointMetrics

	pending atomic.Int64 // pages written since the last checkpoint
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	conn    driver.Conn // the loop's own; opened at the first checkpoint
	runs    atomic.Int64
}

func newCheckpointer(dsn string, threshold int64, m *checkpointMetrics) *checkpointer {
	k := &checkpointer{dsn: dsn, threshold: threshold, m: m,
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go k.loop()
	return k
}

// add counts n pages written; past the threshold it wakes the loop
// (never waiting for it: the writer goes on).
func (k *checkpointer) add(n int64) {
	if k.pending.Add(n) < k.threshold {
		return
	}
	select {
	case k.wake <- struct{}{}:
	default: // already woken
	}
}

func (k *checkpointer) close() {
	k.once.Do(func() { close(k.stop) })
	<-k.done
}

func (k *checkpointer) loop() {
	defer close(k.done)
	defer func() {
		if k.conn != nil {
			k.conn.Close()
		}
	}()
	for {
		select {
		case <-k.stop:
			return
		case <-k.wake:
		}
		select {
		case <-k.stop:
			return
		default:
		}
		k.run()
	}
}

func (k *checkpointer) run() {
	pages := k.pending.Swap(0)
	start := time.Now()
	busy, log, copied, err := k.checkpoint()
	k.runs.Add(1)
	if err != nil || busy {
		// Another checkpoint (the writer's backstop) held the lock, or it
		// failed: the pages are still to copy; the next commit wakes it.
		k.pending.Add(pages)
		if k.m != nil {
			k.m.failures.Inc()
		}
		if err != nil && k.conn != nil {
			k.conn.Close()
			k.conn = nil
		}
		return
	}
	if k.m != nil {
		k.m.seconds.Observe(time.Since(start).Seconds())
		k.m.walLeft.Set(float64(max(0, log-copied)))
	}
}

// checkpoint runs one passive checkpoint: busy when another checkpoint
// ran, log the WAL's pages, copied those now in the database file.
func (k *checkpointer) checkpoint() (busy bool, log, copied int64, err error) {
	if k.conn == nil {
		if k.conn, err = (&sqlite.Driver{}).Open(k.dsn); err != nil {
			k.conn = nil
			return false, 0, 0, err
		}
	}
	rows, err := k.conn.(driver.QueryerContext).QueryContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)", nil)
	if err != nil {
		return false, 0, 0, err
	}
	defer rows.Close()
	v := make([]driver.Value, 3)
	if err := rows.Next(v); err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("sqldb: wal_checkpoint returned no row")
		}
		return false, 0, 0, err
	}
	b, _ := v[0].(int64)
	log, _ = v[1].(int64)
	copied, _ = v[2].(int64)
	return b != 0, log, copied, nil
}
