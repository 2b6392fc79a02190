package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrGroupCommitterClosed is what Run answers once Close has begun.
var ErrGroupCommitterClosed = errors.New("sqldb: group committer closed")

// DefaultGroupCommitMax is how many callers one batch takes at most.
const DefaultGroupCommitMax = 128

// GroupCommitter runs many callers' transactions as one database
// transaction: one COMMIT, so on SQLite (WAL, synchronous=FULL) one fsync
// for the whole batch instead of one per caller.
//
// One goroutine owns the writer. It takes the first waiting caller and
// every other caller already waiting (up to Max), opens one transaction,
// and runs each caller's fn under its own SAVEPOINT: a fn that fails is
// rolled back to its savepoint and gets its own error; the others are
// untouched. Then one COMMIT, and only after it does any caller get its
// answer: nil, its own error, or the commit's error (then nothing of the
// batch was kept). There is no waiting for company: a lone caller runs at
// once, in a plain transaction without savepoints.
//
// Cancellation: a caller whose ctx ends while it is queued gets ctx.Err()
// and its fn never runs. Once its fn has started the caller waits for the
// batch's outcome whatever its ctx does, and fn runs under a ctx with the
// caller's values but without its cancellation or deadline: on SQLite an
// interrupted write inside an explicit transaction rolls back the whole
// transaction, that is, everyone's. A fn must therefore not block for
// long, and must act only through the tx it is given (never Commit or
// Rollback it).
//
// A fn that panics is rolled back to its savepoint and the panic is raised
// again in its caller's goroutine (Run panics with the same value); the
// batch and the committer go on.
//
// It suits SQLite, whose one writer makes callers queue anyway. On MySQL
// callers should keep their own transactions: InnoDB groups redo log
// flushes across connections, and one transaction for many callers would
// widen lock scopes.
type GroupCommitter struct {
	db       *sql.DB
	max      int
	counters *Counters

	calls    chan *gcCall
	waiting  atomic.Int64 // callers not yet taken into a batch (tests wait on it)
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// NewGroupCommitter starts a committer on db (on SQLite: the one-connection
// write pool). max bounds the callers per batch (DefaultGroupCommitMax when
// <= 0). Batch sizes are observed in c (smp_sql_group_commit_batch_size;
// nil: not observed); commits are counted by db's own counters, if any.
// Close stops it.
func NewGroupCommitter(db *sql.DB, max int, c *Counters) *GroupCommitter {
	if max <= 0 {
		max = DefaultGroupCommitMax
	}
	g := &GroupCommitter{db: db, max: max, counters: c,
		calls: make(chan *gcCall), stop: make(chan struct{}), done: make(chan struct{})}
	go g.loop()
	return g
}

// Waiting is how many callers are queued for the next batch (tests wait
// on it to make a batch of a known size).
func (g *GroupCommitter) Waiting() int64 { return g.waiting.Load() }

// Close stops taking callers, lets the running batch finish and waits for
// the committer goroutine. Safe to call twice.
func (g *GroupCommitter) Close() error {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.done
	return nil
}

// The states of a call: queued until the committer takes it or its caller
// gives up; whoever moves it first decides.
const (
	callQueued int32 = iota
	callTaken
	callAbandoned
)

type gcCall struct {
	ctx    context.Context
	fn     func(context.Context, *sql.Tx) error
	g      *GroupCommitter
	state  atomic.Int32
	result chan gcResult // buffered: the committer never blocks on it
}

type gcResult struct {
	err      error
	panicked bool
	value    any // the panic's
}

func (r gcResult) failed() bool { return r.err != nil || r.panicked }

// Run runs fn in a transaction shared with other callers and returns once
// that transaction has committed (nil), or with fn's error (fn's writes
// undone, the others' kept), or with the error that lost the whole batch
// (the commit's, or the database aborting the transaction). See
// GroupCommitter for cancellation and panics.
func (g *GroupCommitter) Run(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ctx.Value(insideKey{}) == g {
		// Called from a transaction function of this committer (its ctx):
		// it would wait for itself forever.
		return ErrReentrant
	}
	c := &gcCall{ctx: ctx, fn: fn, g: g, result: make(chan gcResult, 1)}
	g.waiting.Add(1)
	select {
	case g.calls <- c:
		g.waiting.Add(-1)
	case <-ctx.Done():
		g.waiting.Add(-1)
		return ctx.Err()
	case <-g.stop:
		g.waiting.Add(-1)
		return ErrGroupCommitterClosed
	}
	var r gcResult
	select {
	case r = <-c.result:
	case <-ctx.Done():
		if c.state.CompareAndSwap(callQueued, callAbandoned) {
			return ctx.Err()
		}
		r = <-c.result // its fn runs or ran: wait for the batch's outcome
	}
	if r.panicked {
		panic(r.value)
	}
	return r.err
}

func (g *GroupCommitter) loop() {
	exited := false
	defer func() {
		if !exited { // a fn called runtime.Goexit (t.FailNow): carry on in a new goroutine
			go g.loop()
			return
		}
		close(g.done)
	}()
	batch := make([]*gcCall, 0, g.max)
	for {
		select {
		case c := <-g.calls:
			batch = append(batch[:0], c)
		case <-g.stop:
			exited = true
			return
		}
	fill: // only callers already waiting: no delay for a lone caller
		for len(batch) < g.max {
			select {
			case c := <-g.calls:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		g.commit(batch)
		clear(batch)
	}
}

// commit runs one batch and answers every caller in it.
func (g *GroupCommitter) commit(batch []*gcCall) {
	live := make([]*gcCall, 0, len(batch))
	for _, c := range batch {
		if c.state.CompareAndSwap(callQueued, callTaken) {
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return
	}
	results := make([]gcResult, len(live))
	answered := false
	defer func() {
		if !answered { // runtime.Goexit in a fn: nobody may wait forever
			for _, c := range live {
				c.result <- gcResult{err: errors.New("sqldb: group commit: a transaction function exited its goroutine")}
			}
		}
	}()
	answer := func(batchErr error) {
		for i, c := range live {
			r := results[i]
			// A batch that did not commit answers its error to every
			// caller, a failed one too: its own error may rest on another
			// caller's writes, which were never committed (a conditional
			// update that lost to one of them). A panic is raised again.
			if batchErr != nil && !r.panicked {
				r = gcResult{err: batchErr}
			}
			c.result <- r
		}
		answered = true
	}
	ctx := context.Background()
	conn, err := g.db.Conn(ctx)
	if err != nil {
		answer(fmt.Errorf("sqldb: group commit: %w", err))
		return
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		answer(fmt.Errorf("sqldb: group commit: begin: %w", err))
		return
	}
	defer tx.Rollback() // no-op after Commit

	if len(live) == 1 { // a plain transaction: no savepoint to pay for
		if results[0] = call(live[0], tx); results[0].failed() {
			tx.Rollback()
			answer(nil)
			return
		}
	} else {
		for i, c := range live {
			if err := runSaved(c, tx, &results[i]); err != nil {
				// The transaction is no longer what the callers before
				// this one left (the database aborted it): lose the batch.
				tx.Rollback()
				answer(fmt.Errorf("sqldb: group commit: transaction lost: %w", err))
				return
			}
		}
	}
	start := time.Now()
	err = tx.Commit()
	g.counters.observeCommit(time.Since(start))
	if err != nil {
		// SQLite may keep the transaction open after a failed COMMIT
		// (a deferred foreign key): end it before the connection is reused.
		if _, rerr := conn.ExecContext(ctx, "ROLLBACK"); rerr != nil && !isNoTx(rerr) {
			conn.Raw(func(any) error { return errBadConn })
		}
		answer(fmt.Errorf("sqldb: group commit: commit: %w", err))
		return
	}
	g.counters.observeBatch(len(live))
	answer(nil)
}

// runSaved runs c under a savepoint, leaving its result in r; an error
// means the transaction itself is gone.
func runSaved(c *gcCall, tx *sql.Tx, r *gcResult) error {
	ctx := context.Background()
	if _, err := tx.ExecContext(ctx, "SAVEPOINT smp_gc"); err != nil {
		*r = gcResult{err: fmt.Errorf("sqldb: group commit: savepoint: %w", err)}
		return err
	}
	if *r = call(c, tx); r.failed() {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO smp_gc"); err != nil {
			return err
		}
	}
	// RELEASE also checks that fn left the transaction open: if SQLite
	// aborted it, the savepoint is gone.
	_, err := tx.ExecContext(ctx, "RELEASE smp_gc")
	return err
}

// call runs c's fn with its caller's values but not its cancellation,
// turning a panic into a result.
func call(c *gcCall, tx *sql.Tx) (r gcResult) {
	defer func() {
		if p := recover(); p != nil {
			r = gcResult{panicked: true, value: p, err: fmt.Errorf("sqldb: group commit: panic: %v", p)}
		}
	}()
	return gcResult{err: c.fn(context.WithValue(context.WithoutCancel(c.ctx), insideKey{}, c.g), tx)}
}

// insideKey marks the ctx of a transaction function with its committer.
type insideKey struct{}

// ErrReentrant is Run's error when called with the ctx of one of the same
// committer's transaction functions: the writer is that function's until
// it returns (a store joining a borrowed transaction uses sqldb.TxFrom).
var ErrReentrant = errors.New("sqldb: group commit: Run called from inside one of its own transactions")

// WriteTx runs fn in a write transaction: through g when it is not nil
// (see GroupCommitter.Run), otherwise in a transaction of its own on db,
// committed unless fn fails. It returns fn's error or the commit's.
func WriteTx(ctx context.Context, g *GroupCommitter, db *sql.DB, fn func(context.Context, *sql.Tx) error) error {
	if g != nil {
		return g.Run(ctx, fn)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldb: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldb: commit: %w", err)
	}
	return nil
}

var errBadConn = driver.ErrBadConn

// isNoTx reports SQLite's answer to a ROLLBACK with no transaction open.
func isNoTx(err error) bool {
	return strings.Contains(err.Error(), "no transaction is active")
}
