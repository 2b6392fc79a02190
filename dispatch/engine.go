// Package dispatch is SMP's dispatch engine (runbook INC-001). It drains
// dispatch:queue:{CITY}, which the order-svc intake fills as it commits
// orders into 02_dispatching (its sweeper re-queues what a failed push or
// a crash left out), consumes orders.events as consumer group
// "dispatch-engine" (assignments, cancellations, completions), and offers
// each order to the nearest
// online, available, skilled technicians in waves, widening the search
// radius in the city's steps. The first technician to accept wins, decided
// by a conditional update in the store, so exactly one wins across any
// number of engines and no technician ever holds two orders.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/bus"
	"smp/internal/startstop"
)

// ConsumerGroup is the engine's consumer group on orders.events.
const ConsumerGroup = "dispatch-engine"

// Config of the engine.
type Config struct {
	// InvitationTTL is how long an offer stays open (default 20 s).
	InvitationTTL time.Duration
	// RetryAfter is how long an order waits after a round found nobody.
	RetryAfter time.Duration
	// BackpressureThreshold: a city queue longer than this is logged and
	// flagged in stats and metrics (default 100). Nothing is dropped.
	BackpressureThreshold int64
	// MaxOffersPerTechnician a technician may hold open at once (default 1).
	MaxOffersPerTechnician int
	// Concurrency bounds the orders being dispatched at once (default 512);
	// beyond it orders wait in their city queue.
	Concurrency   int
	SweepInterval time.Duration
	PopWait       time.Duration
	// RunPollInterval: a dispatch round re-reads its invitations this
	// often, for answers that reached another process (default 250 ms).
	RunPollInterval time.Duration
	// AcceptTimeout: an accepted offer whose assignment has not committed
	// this long after the offer's expiry is lost (the process handling
	// the accept died between the two steps): the round expires it and
	// moves on (default 10 s).
	AcceptTimeout time.Duration
	// LockLease is the lease of an order's dispatch lock, renewed every
	// third of it by the round holding it: a dead holder's lock expires
	// within LockLease (default 5 s).
	LockLease time.Duration
	// Owner names this engine in locks (defaults to a random id).
	Owner      string
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.InvitationTTL <= 0 {
		c.InvitationTTL = 20 * time.Second
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = 10 * time.Second
	}
	if c.BackpressureThreshold <= 0 {
		c.BackpressureThreshold = 100
	}
	if c.MaxOffersPerTechnician <= 0 {
		c.MaxOffersPerTechnician = 1
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 512
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = 5 * time.Second
	}
	if c.PopWait <= 0 {
		c.PopWait = time.Second
	}
	if c.RunPollInterval <= 0 {
		c.RunPollInterval = 250 * time.Millisecond
	}
	if c.AcceptTimeout <= 0 {
		c.AcceptTimeout = 10 * time.Second
	}
	if c.LockLease <= 0 {
		c.LockLease = 5 * time.Second
	}
	if c.Owner == "" {
		c.Owner = "engine-" + uuid.NewString()[:8]
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is what the engine needs of the system of record: orders and
// technicians read fresh, its trace written, and the processed events of
// its intake (bus.Store). Orders change only through Orders.
type Store interface {
	bus.Store
	smp.Transactor
	smp.DispatchTraceStore
	smp.TechnicianSettingsStore
	// FindOrderByID, FindDispatchable and CountOrdersByStage are
	// smp.OrderStore's.
	FindOrderByID(ctx context.Context, id string) (*smp.Order, error)
	FindDispatchable(ctx context.Context, now time.Time, limit int) ([]*smp.Order, error)
	CountOrdersByStage(ctx context.Context) (map[smp.Stage]int64, error)
	// FindTechnicianByID, FindTechniciansByID and FindCities are
	// smp.CatalogStore's.
	FindTechnicianByID(ctx context.Context, id string) (*smp.Technician, error)
	FindTechniciansByID(ctx context.Context, ids ...string) (map[string]*smp.Technician, error)
	FindCities(ctx context.Context) ([]*smp.City, error)
	// FindTechnicianChecks reads a search's candidates' status and
	// settings in one statement (sqlstore's).
	FindTechnicianChecks(ctx context.Context, ids ...string) (map[string]smp.CatalogStatus, map[string]*smp.TechnicianSettings, error)
}

// Deps are the engine's collaborators.
type Deps struct {
	Store       Store
	Orders      smp.OrderService
	Queue       smp.DispatchQueue
	Invitations smp.InvitationStore
	Geo         smp.GeoIndex
	Locker      smp.Locker
	Flags       smp.FlagReader
	Notifier    smp.Notifier
	Cities      []*smp.City
	// OfferGate, when set, drops candidates that may get no offer for a
	// reason outside dispatch (a partner's wallet below its floor).
	OfferGate func(ctx context.Context, found []smp.Candidate) ([]smp.Candidate, error)
}

// Engine is the dispatch engine.
type Engine struct {
	d      Deps
	cfg    Config
	log    *slog.Logger
	cmu    sync.RWMutex
	cities map[string]*smp.City // by code; the sweeper adds cities onboarded later
	m      *metrics

	mu       sync.Mutex
	runs     map[string]*run
	lastWarn map[string]time.Time
	lat      *window // created -> assigned
	firstLat *window // created -> first offer delivered
	settled  *settledSet

	startstop.Base
	running  atomic.Bool
	beat     atomic.Int64 // unix nanos of the last worker loop
	sem      chan struct{}
	sweepNow chan struct{}
}

var _ smp.TechnicianGateway = (*Engine)(nil)

type run struct {
	createdAt atomic.Int64 // the order's creation, unix nanos (set once the round has read it)
	changed   chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
	firstAck  atomic.Bool
	// puts counts the waves whose invitations the round has stored;
	// cleaned is the puts a closeRun saw before it deleted the order's
	// invitations (-1 before any). The round's end need not delete them
	// again when cleaned == puts; a wave stored after a closeRun started (the order
	// was cancelled while the round chose it) still has to go.
	puts    atomic.Int64
	cleaned atomic.Int64
	// cleaning is held by a closeRun while it deletes the invitations.
	cleaning sync.Mutex
}

// markCleaned records that the invitations of the first puts waves are gone.
func (r *run) markCleaned(puts int64) {
	for {
		cur := r.cleaned.Load()
		if puts <= cur || r.cleaned.CompareAndSwap(cur, puts) {
			return
		}
	}
}

// dirty reports whether invitations the round stored may still be open.
func (r *run) dirty() bool { return r.cleaned.Load() < r.puts.Load() }

// dirtyAfterClosing is dirty once a closeRun under way has finished its
// deletion: asked while an accept's deletion runs, dirty would answer
// true and the round's end would delete a second time.
func (r *run) dirtyAfterClosing() bool {
	r.cleaning.Lock()
	defer r.cleaning.Unlock()
	return r.dirty()
}

func (r *run) close() { r.closeOnce.Do(func() { close(r.closed) }) }

func (r *run) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// New returns an engine; Start runs it.
func New(d Deps, cfg Config) (*Engine, error) {
	cfg.setDefaults()
	if d.Store == nil || d.Orders == nil || d.Queue == nil || d.Invitations == nil || d.Geo == nil || d.Locker == nil || d.Flags == nil || d.Notifier == nil {
		return nil, smp.Errorf(smp.EINVALID, "dispatch: missing dependency")
	}
	e := &Engine{d: d, cfg: cfg, log: cfg.Logger.With("service", "dispatch-engine"), cities: map[string]*smp.City{},
		runs: map[string]*run{}, lastWarn: map[string]time.Time{}, lat: newWindow(2048), firstLat: newWindow(2048), settled: newSettledSet(settledCap),
		sem: make(chan struct{}, cfg.Concurrency), sweepNow: make(chan struct{}, 1)}
	for _, c := range d.Cities {
		e.cities[c.Code] = c
	}
	m, err := newMetrics(e, cfg.Registerer)
	if err != nil {
		return nil, err
	}
	e.m = m
	return e, nil
}

// Start runs one worker per city and the sweeper (the intake runs on a
// bus.Router: see AddIntake); idempotent.
func (e *Engine) Start(ctx context.Context) error {
	ctx, ok := e.StartInit(ctx)
	if !ok {
		return nil
	}
	e.running.Store(true)
	e.beat.Store(e.cfg.Now().UnixNano())
	for _, code := range e.cityCodes() {
		e.Go(func() { e.work(ctx, code) })
	}
	e.Go(func() { e.sweepLoop(ctx) })
	e.MarkStarted()
	e.log.Info("dispatch engine started", "owner", e.cfg.Owner, "cities", len(e.cityCodes()))
	return nil
}

// Stop stops the engine and waits for its goroutines (and the dispatch
// rounds they started) until ctx ends; safe before Start and twice.
func (e *Engine) Stop(ctx context.Context) error {
	wasRunning := e.Running()
	if err := e.Base.Stop(ctx); err != nil {
		return err
	}
	if wasRunning {
		e.running.Store(false)
		e.log.Info("dispatch engine stopped")
	}
	return nil
}

// Healthy reports whether the engine runs and its workers loop.
func (e *Engine) Healthy() error {
	if !e.running.Load() {
		return errors.New("dispatch engine is not running")
	}
	e.cmu.RLock()
	none := len(e.cities) == 0
	e.cmu.RUnlock()
	if none {
		return nil // no city, no worker: nothing beats, and nothing can be stuck (a fresh platform)
	}
	if age := e.cfg.Now().Sub(time.Unix(0, e.beat.Load())); age > 3*e.cfg.PopWait+5*time.Second {
		return fmt.Errorf("dispatch workers last looped %s ago", age.Round(time.Second))
	}
	return nil
}

// TriggerSweep asks the sweeper to re-queue dispatchable orders now (for
// example after ENABLE_AUTO_DISPATCH is turned back on).
func (e *Engine) TriggerSweep() {
	select {
	case e.sweepNow <- struct{}{}:
	default:
	}
}

// AddIntake adds the engine's consumer of orders.events (group
// dispatch-engine) to r: each event applied once (deduplicated by event
// id), and every branch idempotent besides, so a crash between effect and
// record is harmless too. Run the router while the engine runs (start it
// after Start, stop it before Stop).
func (e *Engine) AddIntake(r *bus.Router) error {
	return r.AddHandler(ConsumerGroup, []string{smp.TopicOrders}, bus.Events(e.intake),
		bus.Types(smp.EventOrderAssigned, smp.EventOrderCancelled, smp.EventOrderCompleted), bus.Idempotent(e.d.Store, e.cfg.Now))
}

func (e *Engine) intake(ctx context.Context, ev smp.Event) (bus.Result, error) {
	switch ev.Type {
	case smp.EventOrderAssigned, smp.EventOrderCancelled, smp.EventOrderCompleted:
	default:
		return bus.Skip, nil
	}
	return bus.Done, e.handleEvent(ctx, ev)
}

func (e *Engine) handleEvent(ctx context.Context, ev smp.Event) error {
	var d smp.OrderEventData
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return smp.Errorf(smp.EINVALID, "schema mismatch in %s: %v", ev.Type, err)
	}
	// Each effect waits while Redis refuses writes (out of memory or
	// unreachable, INC-004) instead of failing into the dead-letter
	// topic: a dead-lettered order.completed would leave its technician
	// busy, out of every later dispatch, after Redis recovered.
	switch ev.Type {
	case smp.EventOrderAssigned:
		if e.settled.take(d.OrderID, d.TechnicianID) {
			return nil // this process closed the run and marked them busy at the accept
		}
		if err := e.untilWritable(ctx, "close the order's offers", func() error {
			return e.closeRun(ctx, d.OrderID, d.TechnicianID, "offer_taken")
		}); err != nil {
			return err
		}
		return e.untilWritable(ctx, "mark the technician busy", func() error { return e.setBusy(ctx, d.TechnicianID, true) })
	case smp.EventOrderCancelled:
		if err := e.untilWritable(ctx, "close the order's offers", func() error {
			return e.closeRun(ctx, d.OrderID, "", "offer_withdrawn")
		}); err != nil {
			return err
		}
		if d.TechnicianID != "" {
			e.d.Notifier.Notify(d.TechnicianID, smp.TechnicianMessage{Type: "cancelled", OrderID: d.OrderID, Reason: d.Reason})
			return e.untilWritable(ctx, "free the technician", func() error { return e.setBusy(ctx, d.TechnicianID, false) })
		}
	case smp.EventOrderCompleted:
		return e.untilWritable(ctx, "free the technician", func() error { return e.setBusy(ctx, d.TechnicianID, false) })
	}
	return nil
}

// untilWritable runs fn, and again with backoff (up to 5 s) for as long as
// it fails with EUNAVAILABLE (Redis refusing writes or unreachable),
// until ctx ends. Other errors return at once. While it waits,
// smp_dispatch_waiting_for_redis counts it.
func (e *Engine) untilWritable(ctx context.Context, what string, fn func() error) error {
	backoff := 100 * time.Millisecond
	waiting := false
	defer func() {
		if waiting {
			e.m.waiting.Dec()
		}
	}()
	for {
		err := fn()
		if err == nil || smp.ErrorCode(err) != smp.EUNAVAILABLE {
			if waiting && err == nil {
				e.log.Info("dispatch: Redis takes writes again; done", "step", what)
			}
			return err
		}
		e.m.refused.Inc()
		if !waiting {
			waiting = true
			e.m.waiting.Inc()
			e.log.Warn("dispatch: Redis refuses writes; waiting for it", "step", what, "err", err)
		}
		if !smp.Sleep(ctx, backoff) {
			return err
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (e *Engine) setBusy(ctx context.Context, techID string, busy bool) error {
	if techID == "" {
		return nil
	}
	return e.d.Geo.Update(ctx, techID, smp.TechnicianChange{Set: smp.FieldBusy, To: smp.TechnicianPosition{Busy: busy}})
}

func (e *Engine) enqueue(ctx context.Context, city, orderID string) error {
	if err := e.d.Queue.Push(ctx, city, orderID); err != nil {
		return fmt.Errorf("dispatch: push %s: %w", smp.QueueKey(city), err)
	}
	e.checkBackpressure(ctx, city)
	return nil
}

func (e *Engine) checkBackpressure(ctx context.Context, city string) {
	n, err := e.d.Queue.Len(ctx, city)
	if err != nil || n <= e.cfg.BackpressureThreshold {
		return
	}
	e.m.backpressure.WithLabelValues(city).Inc()
	e.mu.Lock()
	last := e.lastWarn[city]
	warn := e.cfg.Now().Sub(last) > 10*time.Second
	if warn {
		e.lastWarn[city] = e.cfg.Now()
	}
	e.mu.Unlock()
	if warn {
		e.log.Warn("dispatch queue backpressure", "queue", smp.QueueKey(city), "length", n, "threshold", e.cfg.BackpressureThreshold)
	}
}

// work pops city's queue and dispatches each order in its own goroutine,
// at most Concurrency at once across cities.
func (e *Engine) work(ctx context.Context, city string) {
	for ctx.Err() == nil {
		e.beat.Store(e.cfg.Now().UnixNano())
		id, ok, err := e.d.Queue.Pop(ctx, city, e.cfg.PopWait)
		if err != nil {
			if ctx.Err() == nil {
				e.log.Error("dispatch: pop failed", "queue", smp.QueueKey(city), "err", err)
				smp.Sleep(ctx, time.Second)
			}
			continue
		}
		if !ok {
			continue
		}
		if !e.acquire(ctx, city) {
			// Put it back: the database still says 02, and the sweeper
			// would find it anyway.
			e.d.Queue.Push(context.Background(), city, id)
			return
		}
		// Started from a tracked worker, so Stop joins the round too.
		e.Go(func() {
			defer func() { <-e.sem }()
			if err := e.dispatch(ctx, id); err != nil && ctx.Err() == nil {
				e.log.Error("dispatch failed", "order_id", id, "err", err)
			}
		})
	}
}

// acquire waits for a dispatch slot (false when ctx ends). While it
// waits, the queue fills behind it (the order-svc intake pushes): it
// looks at the queue's length (backpressure) at once and then every
// PopWait, and beats. With a slot free at once there is no look (one
// LLEN per order saved): the worker is popping as fast as it can, and
// the queue can only build up while every slot is busy.
func (e *Engine) acquire(ctx context.Context, city string) bool {
	select {
	case e.sem <- struct{}{}:
		return true
	default:
	}
	e.checkBackpressure(ctx, city)
	t := time.NewTicker(e.cfg.PopWait)
	defer t.Stop()
	for {
		select {
		case e.sem <- struct{}{}:
			return true
		case <-ctx.Done():
			return false
		case <-t.C:
			e.beat.Store(e.cfg.Now().UnixNano())
			e.checkBackpressure(ctx, city)
		}
	}
}

func (e *Engine) sweepLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.SweepInterval)
	defer t.Stop()
	for {
		e.refreshCities(ctx)
		e.sweep(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.sweepNow:
		}
	}
}

// city returns a city's dispatch settings (nil for a city the engine does
// not know yet).
func (e *Engine) city(code string) *smp.City {
	e.cmu.RLock()
	defer e.cmu.RUnlock()
	return e.cities[code]
}

// cityCodes lists the cities the engine dispatches in.
func (e *Engine) cityCodes() []string {
	e.cmu.RLock()
	defer e.cmu.RUnlock()
	codes := make([]string, 0, len(e.cities))
	for code := range e.cities {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	return codes
}

// refreshCities re-reads the cities (run by the sweeper, a goroutine of
// the engine's): a city onboarded since the start gets its worker, a
// city's changed settings apply to its next round.
func (e *Engine) refreshCities(ctx context.Context) {
	cities, err := e.d.Store.FindCities(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("dispatch: reading cities failed; keeping the ones known", "err", err)
		}
		return
	}
	e.cmu.Lock()
	defer e.cmu.Unlock()
	for _, c := range cities {
		_, known := e.cities[c.Code]
		e.cities[c.Code] = c
		if !known && ctx.Err() == nil {
			e.log.Info("dispatch: new city", "city", c.Code)
			e.Go(func() { e.work(ctx, c.Code) })
		}
	}
}

// sweep re-queues orders the database says are waiting for dispatch:
// after a restart (the in-process queue is gone), after a round that found
// nobody, or after auto dispatch is switched back on.
func (e *Engine) sweep(ctx context.Context) {
	if !e.d.Flags.Enabled(smp.FlagEnableAutoDispatch) {
		return
	}
	orders, err := e.d.Store.FindDispatchable(ctx, e.cfg.Now(), 2000)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("dispatch: sweep failed", "err", err)
		}
		return
	}
	for _, o := range orders {
		e.mu.Lock()
		_, running := e.runs[o.ID]
		e.mu.Unlock()
		if !running {
			if err := e.enqueue(ctx, o.City, o.ID); err != nil {
				e.log.Warn("dispatch: sweep could not queue; retrying at the next sweep", "order_id", o.ID, "err", err)
				return
			}
		}
	}
}
