package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/bus"
	"smp/internal/wait"
	"smp/sqlbus"
	"smp/sqlstore"
)

// openShared opens a store and an embedded log in its database (as the
// embedded default does); with direct, the store's outbox appends to the
// log in its own transactions.
func openShared(t *testing.T, direct bool) (*sqlstore.DB, *sqlbus.Bus) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	shared, err := store.Shared()
	if err != nil {
		t.Fatal(err)
	}
	eb, err := sqlbus.Open(sqlbus.Config{Shared: &shared, Partitions: 1, LeaseTTL: time.Minute, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eb.Close() })
	if direct {
		if err := store.SetOutboxLog(eb.AppendTx); err != nil {
			t.Fatal(err)
		}
	}
	return store, eb
}

// effects is a consumer (group "g" on orders.events) whose effect, for
// each event, records it and adds an event "payment.fx" in one
// transaction through bus.EffectTx; fail says whether an attempt fails.
type effects struct {
	store *sqlstore.DB
	mu    sync.Mutex
	calls map[string]int // fn's runs, by event id
	late  map[string]int // of which deferred to the batch's finish
	done  map[string]int // done(nil) calls
	early []string       // done(nil) called before the effect was visible
	fail  func(id string, call int) bool
	panic bool // a failing effect panics instead
	// after, when set, fails the handler's attempt after its EffectTx
	// returned (its attempt-th call for id).
	after func(id string, attempt int) bool
	tries map[string]int
}

func (e *effects) handle(ctx context.Context, ev smp.Event) (bus.Result, error) {
	e.mu.Lock()
	e.tries[ev.ID]++
	try := e.tries[ev.ID]
	e.mu.Unlock()
	err := bus.EffectTx(ctx, e.store, func(ctx context.Context, tx smp.Tx) error {
		e.mu.Lock()
		e.calls[ev.ID]++
		call := e.calls[ev.ID]
		if smp.AfterCommit(ctx, func() {}) {
			e.late[ev.ID]++
		}
		e.mu.Unlock()
		if first, err := tx.MarkProcessed(ctx, "g", ev.ID, time.Now()); err != nil || !first {
			return errors.Join(err, bus.ErrDuplicate)
		}
		if err := tx.AddEvent(ctx, smp.Event{ID: "fx-" + ev.ID, Type: "payment.fx", SchemaVersion: 1, AggregateID: "o1",
			OccurredAt: time.Now(), Data: json.RawMessage(`{}`)}); err != nil {
			return err
		}
		if e.fail != nil && e.fail(ev.ID, call) {
			if e.panic {
				panic(fmt.Sprintf("effect of %s panicked (attempt %d)", ev.ID, call))
			}
			return fmt.Errorf("effect of %s failed (attempt %d)", ev.ID, call)
		}
		return nil
	}, func(err error) {
		if err != nil {
			return
		}
		visible, _ := e.store.IsProcessed(context.Background(), "g", ev.ID)
		e.mu.Lock()
		defer e.mu.Unlock()
		e.done[ev.ID]++
		if !visible {
			e.early = append(e.early, ev.ID)
		}
	})
	if err == nil && e.after != nil && e.after(ev.ID, try) {
		return 0, fmt.Errorf("the handler of %s failed after its effect (try %d)", ev.ID, try)
	}
	return bus.DoneRecorded, err
}

// startEffects starts e as group "g", and group "h" on payments.events,
// after a first event: both members hold their partitions and are idle.
func startEffects(t *testing.T, eb *sqlbus.Bus, e *effects) {
	t.Helper()
	ctx := context.Background()
	e.calls, e.late, e.done, e.tries = map[string]int{}, map[string]int{}, map[string]int{}, map[string]int{}
	r, err := bus.NewRouter(eb, bus.Config{Registerer: prometheus.NewRegistry(), MaxAttempts: 2, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.AddHandler("g", []string{smp.TopicOrders}, bus.Events(e.handle), bus.Idempotent(e.store, time.Now)); err != nil {
		t.Fatal(err)
	}
	if err := r.AddHandler("h", []string{smp.TopicPayments}, bus.Events(func(context.Context, smp.Event) (bus.Result, error) {
		return bus.Done, nil
	}), bus.Idempotent(e.store, time.Now)); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	if err := eb.Publish(ctx, message(t, "warm-up", smp.EventOrderCreated)); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "both members consumed a first event", func() bool { return settled(eb, 1) })
}

// settled reports whether groups g and h have consumed everything, and
// the payments log holds n messages.
func settled(eb *sqlbus.Bus, n int64) bool {
	ctx := context.Background()
	for _, gt := range [][2]string{{"g", smp.TopicOrders}, {"h", smp.TopicPayments}} {
		if lag, err := bus.Total(ctx, eb, gt[0], gt[1]); err != nil || lag != 0 {
			return false
		}
	}
	offs, err := eb.Offsets(ctx, "h", []string{smp.TopicPayments})
	var sum int64
	for _, o := range offs {
		sum += o.End
	}
	return err == nil && sum == n
}

func publish(t *testing.T, eb *sqlbus.Bus, n int) {
	t.Helper()
	var msgs []smp.Message
	for i := range n {
		msgs = append(msgs, message(t, fmt.Sprintf("e%d", i), smp.EventOrderCreated))
	}
	if err := eb.Publish(context.Background(), msgs...); err != nil { // one key: one partition, one batch
		t.Fatal(err)
	}
}

// dones counts the done(nil) calls of e0… (they run after the commit
// that a consumer's lag shows).
func (e *effects) dones() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for id, c := range e.done {
		if id != "warm-up" {
			n += c
		}
	}
	return n
}

// checkOnce: every event's effect committed once (done once, after its
// commit), and its event is in the log once.
func (e *effects) checkOnce(t *testing.T, n int) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	eachOnce(t, n, e.done, "done called")
	if len(e.early) > 0 {
		t.Errorf("done called before the effect committed for %v", e.early)
	}
}

// TestBatchEffectsCommitWithOffset (issue 22, item 3): on the embedded log
// in the store's database, a batch's database effects (bus.EffectTx),
// with the events they add, commit in the transaction of the batch's
// offset: 40 effects cost one commit, not 40; each effect's done runs
// once, after that commit; the events they added reach their consumers.
func TestBatchEffectsCommitWithOffset(t *testing.T) {
	t.Parallel()
	store, eb := openShared(t, true)
	e := &effects{store: store}
	startEffects(t, eb, e)
	const n = 40
	before := store.SQLCounts()
	publish(t, eb, n)
	wait.Until(t, 10*time.Second, "the batch and its events consumed", func() bool { return settled(eb, n+1) && e.dones() >= n })
	got := store.SQLCounts().Sub(before)
	// The publish's commit, the batch's (effects, records, offset), and
	// group h's for the 40 events the effects added.
	if got.WriteCommits > 3 {
		t.Errorf("publishing 40 events and applying their effects cost %d write commits, want at most 3 (one for the 40 effects with the offset)", got.WriteCommits)
	}
	e.checkOnce(t, n)
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range n {
		if id := fmt.Sprintf("e%d", i); e.late[id] != 1 || e.calls[id] != 1 {
			t.Errorf("%s: effect ran %d times, %d of them in the offset's transaction; want once, there", id, e.calls[id], e.late[id])
		}
	}
}

// TestBatchEffectCutRunsItAtOnce: a deferred effect that fails cuts the
// batch there: the effects before it commit with the offset (once), its
// own comes again and runs at once, inside the chain, and the rest of the
// batch is deferred again. Nothing a rolled-back effect did is left: each
// effect and each of its events exactly once.
func TestBatchEffectCutRunsItAtOnce(t *testing.T) {
	t.Parallel()
	store, eb := openShared(t, true)
	e := &effects{store: store, fail: func(id string, call int) bool { return id == "e7" && call == 1 }}
	startEffects(t, eb, e)
	const n = 40
	publish(t, eb, n)
	wait.Until(t, 10*time.Second, "the batch and its events consumed", func() bool { return settled(eb, n+1) && e.dones() >= n })
	e.checkOnce(t, n)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.calls["e7"] != 2 || e.late["e7"] != 1 {
		t.Errorf("e7's effect ran %d times, %d deferred; want twice: deferred (failed), then at once", e.calls["e7"], e.late["e7"])
	}
}

// TestBatchEffectPoisonIsDeadLettered: an effect that always fails is
// run at once after its cut, so the router's attempts and dead letter
// apply: it is dead-lettered and the partition flows on. (Deferred again
// each time, it would cut every delivery at itself, forever.)
func TestBatchEffectPoisonIsDeadLettered(t *testing.T) {
	t.Parallel()
	for _, panics := range []bool{false, true} {
		t.Run(fmt.Sprintf("panic=%v", panics), func(t *testing.T) {
			t.Parallel()
			testPoisonEffect(t, panics)
		})
	}
}

// testPoisonEffect: with panics, the effect panics, in the batch's finish
// as in the chain: recovered both times (before, the finish's panic ended
// the process, and again after every start).
func testPoisonEffect(t *testing.T, panics bool) {
	store, eb := openShared(t, true)
	e := &effects{store: store, fail: func(id string, _ int) bool { return id == "e7" }, panic: panics}
	startEffects(t, eb, e)
	const n = 20
	publish(t, eb, n)
	wait.Until(t, 10*time.Second, "the batch consumed, e7 dead-lettered", func() bool {
		lag, err := bus.Total(context.Background(), eb, "g", smp.TopicOrders)
		return err == nil && lag == 0 && e.dones() >= n-1
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range n {
		id, want := fmt.Sprintf("e%d", i), 1
		if i == 7 {
			want = 0
		}
		if e.done[id] != want {
			t.Errorf("%s: done called %d times, want %d", id, e.done[id], want)
		}
	}
	if dl, err := bus.Total(context.Background(), eb, "nobody", smp.TopicOrders+".dlq"); err != nil || dl != 1 {
		t.Errorf("dead letters on %s.dlq: %d, %v; want 1", smp.TopicOrders, dl, err)
	}
}

// TestBatchEffectOfAFailedAttemptIsDropped: a handler attempt that fails
// after its effect was deferred leaves that effect out: the retry's own
// effect is the one that commits, once (kept, the first would have run and
// the second found the event recorded and cut the batch).
func TestBatchEffectOfAFailedAttemptIsDropped(t *testing.T) {
	t.Parallel()
	store, eb := openShared(t, true)
	e := &effects{store: store, after: func(id string, try int) bool { return id == "e3" && try == 1 }}
	startEffects(t, eb, e)
	const n = 10
	publish(t, eb, n)
	wait.Until(t, 10*time.Second, "the batch and its events consumed", func() bool { return settled(eb, n+1) && e.dones() >= n })
	e.checkOnce(t, n)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tries["e3"] != 2 || e.calls["e3"] != 1 {
		t.Errorf("e3: handled %d times, its effect ran %d times; want 2 and 1", e.tries["e3"], e.calls["e3"])
	}
}
