package orders

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/bus"
	"smp/flags"
	"smp/inmem"
	"smp/internal/wait"
	"smp/outbox"
	"smp/sqlbus"
	"smp/sqlstore"
)

// pushLog is the engine's queue as the order service sees it: each push
// is recorded with the order's stage as committed at that moment (read
// through the store, which sees only committed rows).
type pushLog struct {
	smp.DispatchQueue
	store *sqlstore.DB
	mu    sync.Mutex
	at    map[string][]smp.Stage // order -> stage committed at each push
}

func (q *pushLog) Push(ctx context.Context, city, orderID string) error {
	stage := smp.Stage("(not committed)")
	if o, err := q.store.FindOrderByID(ctx, orderID); err == nil {
		stage = o.Stage
	}
	q.mu.Lock()
	q.at[orderID] = append(q.at[orderID], stage)
	q.mu.Unlock()
	return q.DispatchQueue.Push(ctx, city, orderID)
}

func (q *pushLog) pushes(orderID string) []smp.Stage {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]smp.Stage(nil), q.at[orderID]...)
}

type fixture struct {
	store *sqlstore.DB
	svc   *Service
	flags *flags.Service
	queue *pushLog
	bus   *sqlbus.Bus
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(dir, "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	must(t, store.UpsertCity(ctx, &smp.City{Code: "HCMC", Name: "HCMC", MinLat: 10.70, MaxLat: 10.88, MinLng: 106.60, MaxLng: 106.80,
		RadiusStepsKm: []float64{1, 3}, WaveSize: 3, MaxWaves: 2}))
	must(t, store.UpsertService(ctx, &smp.Service{Code: "aircon_repair", Name: "aircon_repair"}))
	must(t, store.UpsertCustomer(ctx, &smp.Customer{ID: "C1", Name: "C1"}))
	svc, err := New(ctx, store, Config{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	fl, err := flags.New(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "events.db"), Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &fixture{store: store, svc: svc, flags: fl, bus: b, queue: &pushLog{DispatchQueue: inmem.NewQueue(), store: store, at: map[string][]smp.Stage{}}}
}

// runIntake relays the outbox to the bus and runs the order-svc intake
// until the test ends.
func (f *fixture) runIntake(t *testing.T) {
	t.Helper()
	relay, err := outbox.New(f.store, f.bus, outbox.Config{Signal: f.store.CommitSignal(), PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	router, err := bus.NewRouter(f.bus, bus.Config{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	must(t, f.svc.AddIntake(router, IntakeConfig{Queue: f.queue, Flags: f.flags}))
	ctx, cancel := context.WithCancel(context.Background())
	must(t, relay.Start(ctx))
	must(t, router.Start(ctx))
	t.Cleanup(func() {
		must(t, router.Stop(context.Background()))
		cancel()
		relay.Stop(context.Background())
	})
}

// drained waits until the relay has published every event and the
// order-svc group has consumed them.
func (f *fixture) drained(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	wait.Until(t, 10*time.Second, "the intake consumed every event", func() bool {
		n, _, err := f.store.OutboxBacklog(ctx)
		if err != nil || n != 0 {
			return false
		}
		lag, err := f.bus.Lag(ctx, ConsumerGroup, []string{smp.TopicOrders})
		if err != nil {
			return false
		}
		for _, v := range lag[smp.TopicOrders] {
			n += v
		}
		return n == 0
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var newOrder = smp.NewOrder{City: "HCMC", Service: "aircon_repair", Lat: 10.78, Lng: 106.70, PriceVND: 300000}

// TestCreateOrderQueuesAfterCommit: CreateOrder pushes the order onto the
// engine's queue once, after its commit (the push sees it in
// 02_dispatching), before it returns.
func TestCreateOrderQueuesAfterCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.svc.SetDispatch(IntakeConfig{Queue: f.queue, Flags: f.flags})
	o, err := f.svc.CreateOrder(context.Background(), "C1", newOrder)
	must(t, err)
	if got := f.queue.pushes(o.ID); len(got) != 1 || got[0] != smp.StageDispatching {
		t.Fatalf("pushes of the order (stage committed at each) = %v, want one, in %s", got, smp.StageDispatching)
	}
	if n, _ := f.queue.Len(context.Background(), "HCMC"); n != 1 {
		t.Fatalf("queue length %d, want 1", n)
	}
}

// TestCreateOrderAutoDispatchOff: with ENABLE_AUTO_DISPATCH off the order
// is committed in 02_dispatching but not queued (it waits for manual
// dispatch, INC-001 option D).
func TestCreateOrderAutoDispatchOff(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.flags.Set(ctx, smp.FlagEnableAutoDispatch, false, smp.Principal{Name: "alice", Role: smp.RoleOps}, "INC-001 engine down")
	must(t, err)
	f.svc.SetDispatch(IntakeConfig{Queue: f.queue, Flags: f.flags})
	o, err := f.svc.CreateOrder(ctx, "C1", newOrder)
	must(t, err)
	if o.Stage != smp.StageDispatching {
		t.Fatalf("order in %s, want %s", o.Stage, smp.StageDispatching)
	}
	if got := f.queue.pushes(o.ID); len(got) != 0 {
		t.Fatalf("order pushed %d times with auto dispatch off", len(got))
	}
}

// insertCreated commits an order in 01_created with its order.created, as
// an older binary did.
func (f *fixture) insertCreated(t *testing.T) (*smp.Order, smp.Event) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	o := &smp.Order{ID: newID("ord_"), CustomerID: "C1", City: "HCMC", Service: "aircon_repair", Lat: 10.78, Lng: 106.70,
		PriceVND: 300000, Stage: smp.StageCreated, PaymentStatus: smp.PaymentPending, CreatedAt: now, StageChangedAt: now}
	actor := smp.Actor{Kind: "customer", ID: "C1"}
	ev := orderEvent(smp.EventOrderCreated, o, "", actor, "order placed", now)
	must(t, f.store.InTx(ctx, func(tx smp.Tx) error {
		if err := tx.InsertOrder(ctx, o); err != nil {
			return err
		}
		if err := tx.AddTransition(ctx, smp.Transition{OrderID: o.ID, To: smp.StageCreated, At: now, Actor: actor.String(), Reason: "order placed"}); err != nil {
			return err
		}
		return tx.AddEvent(ctx, ev)
	}))
	return o, ev
}

// TestIntakeCommitsWithOffset (issue 22, item 3): on the embedded log in
// the store's database, the fallback's moves to 02 and their records
// commit with the batch's offset (bus.EffectTx): ten orders left in 01
// cost one commit, not one each and one for the offset; each is queued
// once, after that commit (02 already committed at its push).
func TestIntakeCommitsWithOffset(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	shared, err := f.store.Shared()
	must(t, err)
	f.bus.Close()
	f.bus, err = sqlbus.Open(sqlbus.Config{Shared: &shared, Partitions: 1, LeaseTTL: time.Minute})
	must(t, err)
	t.Cleanup(func() { f.bus.Close() })
	must(t, f.store.SetOutboxLog(f.bus.AppendTx))
	var orders []*smp.Order
	for range 10 {
		o, _ := f.insertCreated(t)
		orders = append(orders, o)
	}
	before := f.store.SQLCounts()
	f.runIntake(t)
	f.drained(t)
	wait.Until(t, 10*time.Second, "ten orders queued", func() bool {
		for _, o := range orders {
			if len(f.queue.pushes(o.ID)) == 0 {
				return false
			}
		}
		return true
	})
	if got := f.store.SQLCounts().Sub(before).WriteCommits; got > 4 {
		t.Errorf("moving ten orders to 02 cost %d write commits, want at most 4 (the batch with its offset; the lease taken, 2)", got)
	}
	for _, o := range orders {
		if p := f.queue.pushes(o.ID); len(p) != 1 || p[0] != smp.StageDispatching {
			t.Errorf("%s: pushes (stage committed at each) = %v, want one, in %s", o.ID, p, smp.StageDispatching)
		}
	}
}

// TestIntakeMovesOrderLeftInCreated: an order.created whose order is still
// in 01_created (written by an older binary) is moved to 02_dispatching,
// recorded as processed, and queued.
func TestIntakeMovesOrderLeftInCreated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	o, ev := f.insertCreated(t)
	f.runIntake(t)
	f.drained(t)
	got, err := f.store.FindOrderByID(ctx, o.ID)
	must(t, err)
	if got.Stage != smp.StageDispatching {
		t.Fatalf("order in %s after the intake, want %s", got.Stage, smp.StageDispatching)
	}
	if p := f.queue.pushes(o.ID); len(p) != 1 || p[0] != smp.StageDispatching {
		t.Fatalf("pushes (stage committed at each) = %v, want one, in %s", p, smp.StageDispatching)
	}
	if done, err := f.store.IsProcessed(ctx, ConsumerGroup, ev.ID); err != nil || !done {
		t.Fatalf("IsProcessed(order-svc, order.created) = %v, %v; want true", done, err)
	}
}

// TestIntakeIgnoresOrderAlreadyDispatching: an order created in 02 (dispatch
// on commit) gets nothing from the intake: no transition, no second push,
// no processed-event record, and not even a statement (its order.created
// says it is past 01).
func TestIntakeIgnoresOrderAlreadyDispatching(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.svc.SetDispatch(IntakeConfig{Queue: f.queue, Flags: f.flags})
	o, err := f.svc.CreateOrder(ctx, "C1", newOrder)
	must(t, err)
	recs, err := f.store.FetchOutbox(ctx, 100)
	must(t, err)
	var created string
	for _, r := range recs {
		if r.Event.Type == smp.EventOrderCreated && r.Event.AggregateID == o.ID {
			created = r.Event.ID
		}
	}
	if created == "" {
		t.Fatal("no order.created in the outbox")
	}
	c := f.store.SQLCounters()
	c.EnableCensus(0)
	before := c.Census()
	f.runIntake(t)
	f.drained(t)
	// Its event says so: no deduplication query, no read of the order.
	for text, n := range c.Census() {
		if d := n - before[text]; d > 0 && strings.HasPrefix(text, "SELECT ") && (strings.Contains(text, " FROM processed_events ") || strings.Contains(text, " FROM orders WHERE id = ?")) {
			t.Errorf("the intake ran %d× %s", d, text)
		}
	}
	if done, err := f.store.IsProcessed(ctx, ConsumerGroup, created); err != nil || done {
		t.Fatalf("IsProcessed(order-svc, order.created) = %v, %v; want false (nothing recorded)", done, err)
	}
	if p := f.queue.pushes(o.ID); len(p) != 1 {
		t.Fatalf("order pushed %d times, want once (by CreateOrder)", len(p))
	}
	ts, err := f.store.FindTransitions(ctx, o.ID)
	must(t, err)
	if len(ts) != 2 {
		t.Fatalf("%d transitions, want 2 (created, dispatching): %+v", len(ts), ts)
	}
}

// TestCreateOrderStatements: an order created straight into dispatch
// writes its two transitions in one INSERT, and its customer's status is
// checked by the order's INSERT, not read before it (issue 22: statements
// per order); both transitions are in its history.
func TestCreateOrderStatements(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	c := f.store.SQLCounters()
	c.EnableCensus(0)
	before := c.Census()
	o, err := f.svc.CreateOrder(ctx, "C1", newOrder)
	must(t, err)
	after := c.Census()
	var inserts, customerReads uint64
	for text, n := range after {
		if strings.HasPrefix(text, "INSERT INTO order_transitions ") {
			inserts += n - before[text]
		}
		if strings.HasPrefix(text, "SELECT ") && strings.Contains(text, " FROM customers ") {
			customerReads += n - before[text]
		}
	}
	if customerReads != 0 {
		t.Errorf("CreateOrder read the customer %d times, want 0: %v", customerReads, after)
	}
	if inserts != 1 {
		t.Errorf("CreateOrder ran %d INSERTs into order_transitions, want 1: %v", inserts, after)
	}
	hist, err := f.store.FindTransitions(ctx, o.ID)
	must(t, err)
	if len(hist) != 2 || hist[0].To != smp.StageCreated || hist[1].From != smp.StageCreated || hist[1].To != smp.StageDispatching {
		t.Fatalf("history %+v", hist)
	}
}
