package dispatch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"smp/internal/wait"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	smpbus "smp/bus"
	"smp/dispatch"
	"smp/flags"
	"smp/inmem"
	"smp/orders"
	"smp/outbox"
	"smp/sqlbus"
	"smp/sqlstore"
)

// recorder is the technicians' side of the Notifier boundary: it keeps
// every message pushed to each technician.
type recorder struct {
	mu   sync.Mutex
	msgs map[string][]smp.TechnicianMessage
	ch   chan smp.TechnicianMessage
}

func newRecorder() *recorder {
	return &recorder{msgs: map[string][]smp.TechnicianMessage{}, ch: make(chan smp.TechnicianMessage, 10000)}
}

func (r *recorder) Notify(tech string, m smp.TechnicianMessage) bool {
	r.mu.Lock()
	r.msgs[tech] = append(r.msgs[tech], m)
	r.mu.Unlock()
	select {
	case r.ch <- m:
	default:
	}
	return true
}

func (r *recorder) Connections() int { return 0 }

func (r *recorder) of(tech string) []smp.TechnicianMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]smp.TechnicianMessage(nil), r.msgs[tech]...)
}

// offersOf returns the technicians who were offered orderID.
func (r *recorder) offered(orderID string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for tech, ms := range r.msgs {
		for _, m := range ms {
			if m.Type == "offer" && m.OrderID == orderID {
				out = append(out, tech)
			}
		}
	}
	return out
}

type harness struct {
	t        testing.TB
	store    *sqlstore.DB
	bus      *sqlbus.Bus
	orders   *orders.Service
	flags    *flags.Service
	engine   *dispatch.Engine
	notes    *recorder
	geo      *inmem.Geo
	queue    *inmem.Queue
	invs     smp.InvitationStore
	locker   *inmem.Locker
	registry *prometheus.Registry
	city     *smp.City
	opts     options
}

type options struct {
	ttl          time.Duration
	waveSize     int
	maxWaves     int
	steps        []float64
	concurrency  int
	backpressure int64
	noStart      bool
	retryAfter   time.Duration
	// now is the engine's clock (default time.Now).
	now func() time.Time
	// locker wraps the shared locker for the harness's engine.
	locker        func(smp.Locker) smp.Locker
	lockLease     time.Duration
	acceptTimeout time.Duration
	// afterCommit runs after every committed transaction of the order service.
	afterCommit func()
	// offerGate is the engine's Deps.OfferGate.
	offerGate func(context.Context, []smp.Candidate) ([]smp.Candidate, error)
	// invs replaces the in-process invitation store (Redis's, say).
	invs smp.InvitationStore
	// sweep is the engine's SweepInterval (default 200 ms).
	sweep time.Duration
	// queue wraps the engine's view of the shared queue.
	queue func(smp.DispatchQueue) smp.DispatchQueue
	// noIntake starts the engine without its consumer of orders.events
	// (as if the bus lagged): only the engine's own calls close a round.
	noIntake bool
}

// hookStore is the real store with a hook after each commit.
type hookStore struct {
	*sqlstore.DB
	after func()
}

func (s hookStore) InTx(ctx context.Context, fn func(smp.Tx) error) error {
	err := s.DB.InTx(ctx, fn)
	if err == nil {
		s.after()
	}
	return err
}

func newHarness(t testing.TB, o options) *harness {
	t.Helper()
	if o.ttl == 0 {
		o.ttl = 2 * time.Second
	}
	if o.waveSize == 0 {
		o.waveSize = 3
	}
	if o.maxWaves == 0 {
		o.maxWaves = 3
	}
	if o.steps == nil {
		o.steps = []float64{1, 3, 10}
	}
	if o.retryAfter == 0 {
		o.retryAfter = time.Hour
	}
	if o.sweep == 0 {
		o.sweep = 200 * time.Millisecond
	}
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(dir, "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	city := &smp.City{Code: "HCMC", Name: "HCMC", MinLat: 10.70, MaxLat: 10.88, MinLng: 106.60, MaxLng: 106.80,
		RadiusStepsKm: o.steps, WaveSize: o.waveSize, MaxWaves: o.maxWaves}
	must(t, store.UpsertCity(ctx, city))
	for _, s := range []string{"aircon_repair", "plumbing"} {
		must(t, store.UpsertService(ctx, &smp.Service{Code: s, Name: s}))
	}
	must(t, store.UpsertPartner(ctx, &smp.Partner{ID: "P1", Name: "P1"}))
	must(t, store.UpsertCustomer(ctx, &smp.Customer{ID: "C1", Name: "C1"}))
	// Tests wait for the groups' lag (unconsumed): positions committed at once.
	bus, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "events.db"), Partitions: 4, CommitInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	reg := prometheus.NewRegistry()
	var ordStore orders.Store = store
	if o.afterCommit != nil {
		ordStore = hookStore{store, o.afterCommit}
	}
	ord, err := orders.New(ctx, ordStore, orders.Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	fl, err := flags.New(ctx, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	var invs smp.InvitationStore = inmem.NewInvitations()
	if o.invs != nil {
		invs = o.invs
	}
	h := &harness{t: t, store: store, bus: bus, orders: ord, flags: fl, notes: newRecorder(), geo: inmem.NewGeo(), queue: inmem.NewQueue(),
		invs: invs, locker: inmem.NewLocker(), registry: reg, city: city, opts: o}
	var locker smp.Locker = h.locker
	if o.locker != nil {
		locker = o.locker(locker)
	}
	h.engine = h.newEngine(locker, h.notes, reg)
	fl.OnChange(func(name string, v bool) { h.engine.TriggerSweep() })
	relay, err := outbox.New(store, bus, outbox.Config{Signal: store.CommitSignal(), PollInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	router, err := smpbus.NewRouter(bus, smpbus.Config{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	must(t, ord.AddIntake(router, orders.IntakeConfig{Queue: h.queue, Flags: fl}))
	runCtx, cancel := context.WithCancel(ctx)
	relay.Start(runCtx)
	if !o.noStart {
		if !o.noIntake {
			must(t, h.engine.AddIntake(router))
		}
		h.engine.Start(runCtx)
	}
	must(t, router.Start(runCtx))
	t.Cleanup(func() {
		must(t, router.Stop(context.Background()))
		h.engine.Stop(context.Background())
		cancel()
		relay.Stop(context.Background())
	})
	return h
}

// newEngine returns an engine (not started) on the harness's stores: a
// second one is another process's engine sharing them.
func (h *harness) newEngine(locker smp.Locker, n smp.Notifier, reg prometheus.Registerer) *dispatch.Engine {
	h.t.Helper()
	o := h.opts
	var q smp.DispatchQueue = h.queue
	if o.queue != nil {
		q = o.queue(q)
	}
	e, err := dispatch.New(dispatch.Deps{Store: h.store, Orders: h.orders, Queue: q, Invitations: h.invs, Geo: h.geo,
		Locker: locker, Flags: h.flags, Notifier: n, Cities: []*smp.City{h.city}, OfferGate: o.offerGate},
		dispatch.Config{InvitationTTL: o.ttl, RetryAfter: o.retryAfter, Concurrency: o.concurrency, BackpressureThreshold: o.backpressure,
			SweepInterval: o.sweep, PopWait: 100 * time.Millisecond, Now: o.now, LockLease: o.lockLease,
			AcceptTimeout: o.acceptTimeout, Registerer: reg})
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// addTech creates a technician online and available at (lat, lng).
func (h *harness) addTech(id string, lat, lng float64, skills ...string) {
	h.t.Helper()
	ctx := context.Background()
	if len(skills) == 0 {
		skills = []string{"aircon_repair"}
	}
	must(h.t, h.store.UpsertTechnician(ctx, &smp.Technician{ID: id, PartnerID: "P1", Name: id, City: "HCMC", Skills: skills}))
	if _, err := h.engine.TechnicianConnected(ctx, id, "conn-"+id); err != nil {
		h.t.Fatal(err)
	}
	must(h.t, h.engine.UpdateLocation(ctx, id, lat, lng))
	must(h.t, h.engine.SetAvailability(ctx, id, true))
}

func (h *harness) createOrder(lat, lng float64) *smp.Order {
	h.t.Helper()
	o, err := h.orders.CreateOrder(context.Background(), "C1", smp.NewOrder{City: "HCMC", Service: "aircon_repair", Lat: lat, Lng: lng, PriceVND: 300000})
	if err != nil {
		h.t.Fatal(err)
	}
	return o
}

// waitFor polls cond until it holds or the deadline passes.

func (h *harness) stage(id string) smp.Stage {
	o, err := h.store.FindOrderByID(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return o.Stage
}

func (h *harness) waitOffered(orderID string, n int) []string {
	h.t.Helper()
	var got []string
	wait.Until(h.t, 10*time.Second, fmt.Sprintf("%d offers of %s", n, orderID), func() bool {
		got = h.notes.offered(orderID)
		return len(got) >= n
	})
	return got
}

// counter returns the value of one labelled series of a counter vector.
func (h *harness) counter(name, label, value string) float64 {
	h.t.Helper()
	mfs, err := h.registry.Gather()
	must(h.t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
