package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"modernc.org/sqlite"

	"smp/internal/wait"
)

// gcFixture is a SQLite file with a one-connection, counted write pool
// behind a GroupCommitter, and a second pool to read what was committed.
type gcFixture struct {
	g        *GroupCommitter
	write    *sql.DB
	read     *sql.DB
	counters *Counters
}

// gcCancel is what the SQL function gc_cancel(n) calls at n = 1: a test
// cancels a context while a write statement runs (see
// TestGroupCommitCancelDuringFn).
var gcCancel atomic.Pointer[context.CancelFunc]

var gcDriver = func() *sqlite.Driver {
	d := &sqlite.Driver{}
	d.MustRegisterScalarFunction("gc_cancel", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if args[0].(int64) == 1 {
			if c := gcCancel.Load(); c != nil {
				(*c)()
			}
		}
		return args[0], nil
	})
	return d
}()

type gcConnector struct{ dsn string }

func (c gcConnector) Connect(context.Context) (driver.Conn, error) { return gcDriver.Open(c.dsn) }
func (c gcConnector) Driver() driver.Driver                        { return gcDriver }

func newGCFixture(t *testing.T) *gcFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gc.db")
	dsn, err := SQLiteDSN(path, true)
	if err != nil {
		t.Fatal(err)
	}
	f := &gcFixture{counters: NewCounters("store")}
	f.write = sql.OpenDB(countingConnector{Connector: gcConnector{dsn}, c: f.counters})
	f.write.SetMaxOpenConns(1)
	t.Cleanup(func() { f.write.Close() })
	for _, q := range []string{
		`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`,
		`CREATE TABLE parent (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER NOT NULL REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)`,
	} {
		if _, err := f.write.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if f.read, err = OpenSQLite(path, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.read.Close() })
	f.g = NewGroupCommitter(f.write, 0, f.counters)
	t.Cleanup(func() { f.g.Close() })
	return f
}

func insertKV(k string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, 1)`, k)
		return err
	}
}

// has reports whether k was committed, read on the other pool.
func (f *gcFixture) has(t *testing.T, k string) bool {
	t.Helper()
	var n int
	if err := f.read.QueryRow(`SELECT COUNT(*) FROM kv WHERE k = ?`, k).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

var gates atomic.Int64

// hold runs a caller whose fn blocks until release is called, so that the
// callers started meanwhile queue up into the next batch.
func (f *gcFixture) hold(t *testing.T) (release func()) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- f.g.Run(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
			close(entered)
			<-gate
			return insertKV(fmt.Sprint("gate", gates.Add(1)))(ctx, tx)
		})
	}()
	<-entered
	return func() {
		close(gate)
		if err := <-done; err != nil {
			t.Error("gate:", err)
		}
	}
}

// queue starts n callers (fn(i)) behind a held batch and waits until all
// are queued; wait returns their errors.
func (f *gcFixture) queue(t *testing.T, ctxs []context.Context, fn func(i int) func(context.Context, *sql.Tx) error) (errs []error, wait_ func()) {
	t.Helper()
	errs = make([]error, len(ctxs))
	var wg sync.WaitGroup
	for i := range ctxs {
		wg.Go(func() { errs[i] = f.g.Run(ctxs[i], fn(i)) })
	}
	wait.Until(t, 10*time.Second, "callers queued", func() bool { return f.g.waiting.Load() == int64(len(ctxs)) })
	return errs, wg.Wait
}

func background(n int) []context.Context {
	out := make([]context.Context, n)
	for i := range out {
		out[i] = context.Background()
	}
	return out
}

// TestGroupCommitBatches: callers queued while a batch runs commit together
// in one transaction (one write commit: one fsync), and each caller's row
// is readable on another connection once its Run returned.
func TestGroupCommitBatches(t *testing.T) {
	t.Parallel()
	f := newGCFixture(t)
	before := f.counters.Snapshot()
	release := f.hold(t)
	const n = 40
	errs, done := f.queue(t, background(n), func(i int) func(context.Context, *sql.Tx) error { return insertKV(fmt.Sprint("k", i)) })
	release()
	done()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
		if !f.has(t, fmt.Sprint("k", i)) {
			t.Fatalf("caller %d's row is missing after Run returned", i)
		}
	}
	got := f.counters.Snapshot().Sub(before)
	if got.WriteCommits != 2 || got.GroupCommits != 2 || got.GroupCallers != n+1 {
		t.Fatalf("%d callers: %d write commits, %d group commits of %d callers; want 2, 2, %d", n+1, got.WriteCommits, got.GroupCommits, got.GroupCallers, n+1)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.counters)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP smp_sql_group_commit_batch_size Callers whose transactions one group commit (one COMMIT, on SQLite one fsync) committed together, by database.
# TYPE smp_sql_group_commit_batch_size histogram
smp_sql_group_commit_batch_size_bucket{db="store",le="1"} 1
smp_sql_group_commit_batch_size_bucket{db="store",le="2"} 1
smp_sql_group_commit_batch_size_bucket{db="store",le="4"} 1
smp_sql_group_commit_batch_size_bucket{db="store",le="8"} 1
smp_sql_group_commit_batch_size_bucket{db="store",le="16"} 1
smp_sql_group_commit_batch_size_bucket{db="store",le="32"} 1
smp_sql_group_commit_batch_size_bucket{db="store",le="64"} 2
smp_sql_group_commit_batch_size_bucket{db="store",le="128"} 2
smp_sql_group_commit_batch_size_bucket{db="store",le="256"} 2
smp_sql_group_commit_batch_size_bucket{db="store",le="+Inf"} 2
smp_sql_group_commit_batch_size_sum{db="store"} 41
smp_sql_group_commit_batch_size_count{db="store"} 2
`), "smp_sql_group_commit_batch_size"); err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommitConcurrent: free-running callers share commits.
func TestGroupCommitConcurrent(t *testing.T) {
	t.Parallel()
	f := newGCFixture(t)
	before := f.counters.Snapshot()
	const workers, each = 32, 10
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := f.g.Run(context.Background(), insertKV(fmt.Sprint(w, "-", i))); err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d callers failed", failed.Load())
	}
	var n int
	f.read.QueryRow(`SELECT COUNT(*) FROM kv`).Scan(&n)
	got := f.counters.Snapshot().Sub(before)
	if n != workers*each || got.WriteCommits >= workers*each {
		t.Fatalf("%d rows, %d write commits for %d callers", n, got.WriteCommits, workers*each)
	}
	t.Logf("%d callers, %d fsyncs", workers*each, got.WriteCommits)
}

// TestGroupCommitFailingCaller: a caller whose fn fails gets its own
// error and its writes are undone; the others of its batch commit.
func TestGroupCommitFailingCaller(t *testing.T) {
	t.Parallel()
	f := newGCFixture(t)
	release := f.hold(t)
	boom := errors.New("boom")
	errs, done := f.queue(t, background(5), func(i int) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			if err := insertKV(fmt.Sprint("k", i))(ctx, tx); err != nil {
				return err
			}
			if i == 2 {
				return boom
			}
			return nil
		}
	})
	release()
	done()
	for i, err := range errs {
		if i == 2 {
			if !errors.Is(err, boom) || f.has(t, "k2") {
				t.Fatalf("failing caller: %v, row kept %v", err, f.has(t, "k2"))
			}
			continue
		}
		if err != nil || !f.has(t, fmt.Sprint("k", i)) {
			t.Fatalf("caller %d: %v, row present %v", i, err, f.has(t, fmt.Sprint("k", i)))
		}
	}
	// A lone failing caller: a plain rollback.
	if err := f.g.Run(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
		insertKV("alone")(ctx, tx)
		return boom
	}); !errors.Is(err, boom) || f.has(t, "alone") {
		t.Fatalf("lone failing caller: %v", err)
	}
}

// TestGroupCommitCancelledWhileQueued: a caller whose ctx ends before its
// turn gets ctx.Err() and its fn never runs; its batch is unaffected.
func TestGroupCommitCancelledWhileQueued(t *testing.T) {
	t.Parallel()
	f := newGCFixture(t)
	release := f.hold(t)
	ctxs := background(3)
	cctx, cancel := context.WithCancel(context.Background())
	ctxs[1] = cctx
	var ran atomic.Bool
	errs, done := f.queue(t, ctxs, func(i int) func(context.Context, *sql.Tx) error {
		if i == 1 {
			return func(context.Context, *sql.Tx) error { ran.Store(true); return nil }
		}
		return insertKV(fmt.Sprint("k", i))
	})
	cancel()
	wait.Until(t, 10*time.Second, "the cancelled caller left", func() bool { return f.g.waiting.Load() == 2 })
	release()
	done()
	if !errors.Is(errs[1], context.Canceled) || ran.Load() {
		t.Fatalf("cancelled caller: %v, fn ran %v", errs[1], ran.Load())
	}
	if errs[0] != nil || errs[2] != nil || !f.has(t, "k0") || !f.has(t, "k2") {
		t.Fatalf("the others: %v %v", errs[0], errs[2])
	}
}

// TestGroupCommitCancelDuringFn: a caller's ctx cancelled while its write
// statement runs does not interrupt it (on SQLite an interrupted write
// rolls back the whole transaction, the other callers' work with it).
func TestGroupCommitCancelDuringFn(t *testing.T) {
	f := newGCFixture(t) // not parallel: gcCancel is global
	release := f.hold(t)
	ctxs := background(3)
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ctxs[1] = cctx
	gcCancel.Store(&cancel)
	defer gcCancel.Store(nil)
	errs, done := f.queue(t, ctxs, func(i int) func(context.Context, *sql.Tx) error {
		if i != 1 {
			return insertKV(fmt.Sprint("k", i))
		}
		return func(ctx context.Context, tx *sql.Tx) error {
			// gc_cancel cancels cctx at the first row; the statement goes
			// on long enough for an interrupt to land.
			_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) SELECT 'long', MAX(gc_cancel(n)) FROM
				(WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n < 20000) SELECT n FROM c)`)
			return err
		}
	})
	release()
	done()
	if cctx.Err() == nil {
		t.Fatal("gc_cancel never ran")
	}
	for i, k := range []string{"k0", "long", "k2"} {
		if errs[i] != nil || !f.has(t, k) {
			t.Fatalf("caller %d: %v, row %s present %v", i, errs[i], k, f.has(t, k))
		}
	}
}

// TestGroupCommitPanic: a fn that panics is rolled back to its savepoint,
// its caller panics with the same value, and the batch and the committer
// go on.
func TestGroupCommitPanic(t *testing.T) {
	t.Parallel()
	f := newGCFixture(t)
	release := f.hold(t)
	var recovered atomic.Value
	var wg sync.WaitGroup
	wg.Go(func() {
		defer func() { recovered.Store(recover()) }()
		f.g.Run(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
			insertKV("p")(ctx, tx)
			panic("fn panicked")
		})
	})
	wait.Until(t, 10*time.Second, "the panicking caller queued", func() bool { return f.g.waiting.Load() == 1 })
	wg.Go(func() {
		if err := f.g.Run(context.Background(), insertKV("q")); err != nil {
			t.Error(err)
		}
	})
	wait.Until(t, 10*time.Second, "callers queued", func() bool { return f.g.waiting.Load() == 2 })
	release()
	wg.Wait()
	if recovered.Load() != "fn panicked" || f.has(t, "p") || !f.has(t, "q") {
		t.Fatalf("recovered %v, p kept %v, q kept %v", recovered.Load(), f.has(t, "p"), f.has(t, "q"))
	}
	if err := f.g.Run(context.Background(), insertKV("after")); err != nil || !f.has(t, "after") {
		t.Fatalf("the committer after a panic: %v", err)
	}
}

// TestGroupCommitCommitFails: a COMMIT that fails (a deferred foreign key
// one caller broke) answers every caller of the batch with its error and
// keeps nothing of the batch; the committer goes on.
func TestGroupCommitCommitFails(t *testing.T) {
	t.Parallel()
	f := newGCFixture(t)
	for _, n := range []int{1, 4} { // a lone caller, and a batch
		release := f.hold(t)
		errs, done := f.queue(t, background(n), func(i int) func(context.Context, *sql.Tx) error {
			if i == n-1 {
				return func(ctx context.Context, tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, `INSERT INTO child (id, p) VALUES (?, 404)`, n) // no parent 404: found at COMMIT
					return err
				}
			}
			if n > 1 && i == 1 {
				// Its own failure may rest on the others' writes, never
				// committed: it too gets the commit's error.
				return func(context.Context, *sql.Tx) error { return errors.New("lost to a caller of the batch") }
			}
			return insertKV(fmt.Sprint(n, "-", i))
		})
		release()
		done()
		for i, err := range errs {
			if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
				t.Fatalf("batch of %d, caller %d: %v, want the commit's foreign key error", n, i, err)
			}
			if i < n-1 && f.has(t, fmt.Sprint(n, "-", i)) {
				t.Fatalf("batch of %d, caller %d: row kept after a failed commit", n, i)
			}
		}
		if err := f.g.Run(context.Background(), insertKV(fmt.Sprint("after", n))); err != nil || !f.has(t, fmt.Sprint("after", n)) {
			t.Fatalf("the committer after a failed commit: %v", err)
		}
	}
	var children int
	f.read.QueryRow(`SELECT COUNT(*) FROM child`).Scan(&children)
	if children != 0 {
		t.Fatalf("%d orphan children committed", children)
	}
}

// TestGroupCommitTransactionLost: when the transaction ends under the
// batch (here a fn ends it itself, as SQLite does on SQLITE_FULL), every
// caller of the batch gets an error and nothing of it is kept.
func TestGroupCommitTransactionLost(t *testing.T) {
	t.Parallel()
	f := newGCFixture(t)
	release := f.hold(t)
	errs, done := f.queue(t, background(3), func(i int) func(context.Context, *sql.Tx) error {
		if i == 1 {
			return func(ctx context.Context, tx *sql.Tx) error {
				_, err := tx.ExecContext(ctx, `ROLLBACK`)
				return err
			}
		}
		return insertKV(fmt.Sprint("k", i))
	})
	release()
	done()
	for i, err := range errs {
		if err == nil || f.has(t, fmt.Sprint("k", i)) {
			t.Fatalf("caller %d: %v, row kept %v", i, err, f.has(t, fmt.Sprint("k", i)))
		}
	}
	if err := f.g.Run(context.Background(), insertKV("after")); err != nil || !f.has(t, "after") {
		t.Fatalf("the committer after a lost transaction: %v", err)
	}
}

// TestGroupCommitReadOnlyBatch: the savepoints of a batch that only read
// do not make it a write commit (smp_sql_write_commits_total stays the
// count of fsyncs).
func TestGroupCommitReadOnlyBatch(t *testing.T) {
	t.Parallel()
	f := newGCFixture(t)
	release := f.hold(t)
	before := f.counters.Snapshot()
	_, done := f.queue(t, background(3), func(int) func(context.Context, *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			var n int
			return tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM kv`).Scan(&n)
		}
	})
	release() // the gate's batch: one write commit
	done()
	if got := f.counters.Snapshot().Sub(before); got.Commits != 2 || got.WriteCommits != 1 {
		t.Fatalf("a write batch and a read-only batch: %d commits, %d write commits; want 2, 1", got.Commits, got.WriteCommits)
	}
}

// TestGroupCommitReentrantRun: Run called with the ctx of one of the
// committer's own transaction functions fails at once with ErrReentrant
// (it waited forever for the writer its caller holds: a store that did
// not join a borrowed transaction deadlocked the single writer); the outer
// function's writes commit as it decides.
func TestGroupCommitReentrantRun(t *testing.T) {
	t.Parallel()
	f := newGCFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var inner error
	err := f.g.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		inner = f.g.Run(ctx, insertKV("inner"))
		return insertKV("outer")(ctx, tx)
	})
	if err != nil || !errors.Is(inner, ErrReentrant) {
		t.Fatalf("outer %v, inner %v; want nil and ErrReentrant", err, inner)
	}
	if !f.has(t, "outer") || f.has(t, "inner") {
		t.Fatalf("outer kept %v, inner kept %v", f.has(t, "outer"), f.has(t, "inner"))
	}
}
