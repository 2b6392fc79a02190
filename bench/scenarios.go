package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"smp"
	"smp/app"
	"smp/inmem"
	"smp/kafkabus"
	"smp/outbox"
	"smp/payments"
	"smp/redisstore"
	"smp/sim"
	"smp/sqlstore"
)

// parallel runs n operations on conc workers; op gets the operation's
// index. It returns the latencies and the wall time.
// FleetHeartbeat is the dispatch scenario's phones' heartbeat period. It
// must stay under the hub's idle timeout (wsapi.DefaultIdleTimeout, 45 s):
// at 60 s, as it once was, every phone that got no offer was disconnected
// after 45 s and reconnected (a token lookup, the technician's row, the
// geo index, its session), 10,000 phones 220 times a second in the
// background of every rate.
const FleetHeartbeat = 30 * time.Second

func parallel(n, conc int, op func(i int) error) (*recorder, time.Duration, error) {
	rec := &recorder{}
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				rec.add(time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return rec, time.Since(start), firstErr
}

// measured runs n operations on conc workers and measures them.
func measured(name, unit string, n, conc int, op func(i int) error) (Measure, error) {
	rec, elapsed, err := parallel(n, conc, op)
	if err != nil {
		return Measure{}, err
	}
	return measure(name, unit, n, elapsed, rec.summary()), nil
}

// compared is a result: SMP beside its reference, the ratio of their throughputs.
func compared(smpM, refM Measure, notes string) Result {
	return Result{SMP: smpM, Reference: refM, Ratio: round3(smpM.Throughput / refM.Throughput), Notes: notes}
}

func benchClient(conns int) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: conns * 2, MaxIdleConnsPerHost: conns * 2,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}}
}

// post sends a JSON body and checks the status.
func post(c *http.Client, url, token string, body []byte, want int, hdr ...string) ([]byte, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return out, fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, out)
	}
	return out, nil
}

// ---------- candidate-search ----------

func benchCandidateSearch(ctx context.Context, e *benchEnv) (Result, error) {
	n, queries := 10000, 20000
	if e.quick {
		n, queries = 1000, 1000
	}
	const radius, limit = 3000.0, 10
	rng := mrand.New(mrand.NewPCG(7, 7))
	now := time.Now()
	pos := make([]smp.TechnicianPosition, n)
	for i := range pos {
		pos[i] = smp.TechnicianPosition{TechnicianID: fmt.Sprintf("T%05d", i), City: "HCMC", Lat: 10.70 + rng.Float64()*0.2, Lng: 106.60 + rng.Float64()*0.2,
			Skills: []string{"plumbing", "electrical"}, Online: true, Available: true, UpdatedAt: now}
	}
	qs := make([][2]float64, queries)
	for i := range qs {
		qs[i] = [2]float64{10.70 + rng.Float64()*0.2, 106.60 + rng.Float64()*0.2}
	}
	prefix := "bench" + randomHex(4) + ":"
	var rdb *redis.Client
	if e.redisAddr != "" {
		rdb = redis.NewClient(&redis.Options{Addr: e.redisAddr})
		defer rdb.Close()
		defer dropRedisPrefix(e.redisAddr, prefix)
	}
	var geo smp.GeoIndex
	name := "SMP Nearby, in-memory grid"
	if e.backend == "embedded" {
		geo = inmem.NewGeo()
	} else {
		rs, err := redisstore.Open(ctx, redisstore.Config{Addr: e.redisAddr, Prefix: prefix})
		if err != nil {
			return Result{}, err
		}
		defer rs.Close()
		geo, name = rs.Geo(), "SMP Nearby, Redis geo index"
	}
	for _, p := range pos {
		if err := geo.Upsert(ctx, p); err != nil {
			return Result{}, err
		}
	}
	found := 0
	rec, elapsed, err := parallel(queries, 1, func(i int) error {
		c, err := geo.Nearby(ctx, "HCMC", "plumbing", qs[i][0], qs[i][1], radius, limit)
		found += len(c)
		return err
	})
	if err != nil {
		return Result{}, err
	}
	smpM := measure(name, "searches/s", queries, elapsed, rec.summary())

	var refM Measure
	if rdb != nil {
		key := prefix + "rawgeo"
		pipe := rdb.Pipeline()
		for _, p := range pos {
			pipe.GeoAdd(ctx, key, &redis.GeoLocation{Name: p.TechnicianID, Longitude: p.Lng, Latitude: p.Lat})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return Result{}, err
		}
		rec, elapsed, err := parallel(queries, 1, func(i int) error {
			_, err := rdb.GeoSearchLocation(ctx, key, &redis.GeoSearchLocationQuery{GeoSearchQuery: redis.GeoSearchQuery{Longitude: qs[i][1], Latitude: qs[i][0],
				Radius: radius, RadiusUnit: "m", Sort: "ASC", Count: limit}, WithDist: true}).Result()
			return err
		})
		if err != nil {
			return Result{}, err
		}
		refM = measure("Redis GEOSEARCH BYRADIUS ASC COUNT 10 (go-redis)", "searches/s", queries, elapsed, rec.summary())
	} else {
		rec, elapsed, _ := parallel(queries, 1, func(i int) error {
			var out []smp.Candidate
			for _, p := range pos {
				if d := smp.DistanceMeters(qs[i][0], qs[i][1], p.Lat, p.Lng); d <= radius {
					out = append(out, smp.Candidate{TechnicianID: p.TechnicianID, DistanceM: d})
				}
			}
			sort.Slice(out, func(a, b int) bool { return out[a].DistanceM < out[b].DistanceM })
			return nil
		})
		refM = measure("linear scan of every technician (no --redis-addr for GEOSEARCH)", "searches/s", queries, elapsed, rec.summary())
	}
	return compared(smpM, refM, fmt.Sprintf("%d technicians in HCMC, 3 km radius, 10 nearest of a skill, one caller; %.1f found per search", n, float64(found)/float64(queries))), nil
}

// ---------- order-create ----------

func benchOrderCreate(ctx context.Context, e *benchEnv) (Result, error) {
	n, conc := 3000, 16
	if e.quick {
		n, conc = 200, 4
	}
	a, ds, stop, err := e.app(ctx, sim.SeedConfig{Partners: 2, Technicians: 10, Customers: 20, Seed: 3}, nil)
	if err != nil {
		return Result{}, err
	}
	defer stop()
	c := benchClient(conc)
	url := a.HTTP.URL() + "/v1/orders"
	m := newMeter(a, e.backend)
	before := m.read()
	smpM, err := measured("POST /v1/orders (HTTP, validation, order + transition + outbox in one transaction)", "orders/s", n, conc, func(i int) error {
		body := fmt.Sprintf(`{"city":"HCMC","service":"plumbing","lat":10.78,"lng":%.5f,"price_vnd":250000}`, 106.70+float64(i%100)*0.0005)
		_, err := post(c, url, ds.Customers[i%len(ds.Customers)].Token, []byte(body), http.StatusCreated)
		return err
	})
	if err != nil {
		return Result{}, err
	}

	cost := m.per(before, n) // the order-svc and engine's work on these orders is partly still to come
	now := time.Now().UTC()
	refM, err := measured("raw INSERT of the order row, one transaction each (same store)", "inserts/s", n, conc, func(i int) error {
		o := &smp.Order{ID: fmt.Sprintf("raw-%d", i), CustomerID: ds.Customers[0].ID, City: "HCMC", Service: "plumbing", Lat: 10.78, Lng: 106.7,
			PriceVND: 250000, Stage: smp.StageCreated, PaymentStatus: smp.PaymentPending, CreatedAt: now, StageChangedAt: now}
		return a.Store.InTx(ctx, func(tx smp.Tx) error { return tx.InsertOrder(ctx, o) })
	})
	if err != nil {
		return Result{}, err
	}
	res := compared(smpM, refM, fmt.Sprintf("%d concurrent clients; the platform runs meanwhile (order-svc and the engine act on every order)", conc))
	res.Cost = &cost
	return res, nil
}

// ---------- webhook-ingest ----------

func benchWebhookIngest(ctx context.Context, e *benchEnv) (Result, error) {
	n, conc := 3000, 16
	if e.quick {
		n, conc = 200, 4
	}
	secret := "whsec_" + randomHex(16)
	a, _, stop, err := e.app(ctx, sim.SeedConfig{Partners: 1, Technicians: 1, Customers: 1, Seed: 3}, func(c *app.Config) {
		c.InsideWebhookSecrets, c.PaymentRetryBackoff = secret, time.Hour // a failed event waits: ingest is measured, not retries
	})
	if err != nil {
		return Result{}, err
	}
	defer stop()
	body := func(prefix string, i int) []byte {
		b, _ := json.Marshal(map[string]any{"event_id": fmt.Sprintf("%s-%d", prefix, i), "event_type": smp.InsidePaymentSucceeded,
			"order_id": fmt.Sprintf("ord_bench_%d", i), "amount_vnd": 250000, "occurred_at": time.Now().UTC().Format(time.RFC3339)})
		return b
	}
	c := benchClient(conc)
	url := a.HTTP.URL() + "/integrations/inside/payment-webhook"
	smpM, err := measured("signed webhook over HTTP: verify, parse, durable insert before the 200", "webhooks/s", n, conc, func(i int) error {
		b := body("evt", i)
		_, err := post(c, url, "", b, http.StatusOK, payments.SignatureHeader, payments.Sign([]byte(secret), time.Now(), b))
		return err
	})
	if err != nil {
		return Result{}, err
	}

	now := time.Now().UTC()
	refM, err := measured("raw INSERT of the same event_log rows (same store)", "inserts/s", n, conc, func(i int) error {
		b := body("raw", i)
		_, _, err := a.Store.InsertInboxEvent(ctx, &smp.InboxEvent{EventID: fmt.Sprintf("raw-%d", i), Provider: payments.Provider, EventType: smp.InsidePaymentSucceeded,
			OrderID: fmt.Sprintf("ord_bench_%d", i), AmountVND: 250000, OccurredAt: now, BodyHash: fmt.Sprintf("%064d", i), Body: string(b),
			Status: smp.InboxReceived, ReceivedAt: now, NextAttemptAt: now.Add(time.Hour)})
		return err
	})
	if err != nil {
		return Result{}, err
	}
	return compared(smpM, refM, fmt.Sprintf("%d concurrent senders", conc)), nil
}

// ---------- events ----------

func benchEvents(ctx context.Context, e *benchEnv) (Result, error) {
	n := 5000
	if e.quick {
		n = 300
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		return Result{}, err
	}
	defer cluster.Close()
	bus, err := kafkabus.Open(kafkabus.Config{Brokers: cluster.ListenAddrs()})
	if err != nil {
		return Result{}, err
	}
	defer bus.Close()
	cfg, cleanup, err := e.config(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	sc := sqlstore.Config{MySQLDSN: cfg.MySQLDSN}
	if sc.MySQLDSN == "" {
		sc.Path = filepath.Join(cfg.DataDir, "smp.db")
	}
	store, err := sqlstore.Open(ctx, sc)
	if err != nil {
		return Result{}, err
	}
	defer store.Close()
	relay, err := outbox.New(store, bus, outbox.Config{Signal: store.CommitSignal(), PollInterval: 50 * time.Millisecond})
	if err != nil {
		return Result{}, err
	}
	relay.Start(ctx)
	defer relay.Stop(context.Background())

	rec := &recorder{}
	var got atomic.Int64
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go bus.Subscribe(cctx, "bench", []string{smp.TopicOrders}, func(_ context.Context, m smp.Message) error {
		ev, err := smp.DecodeEvent(m)
		if err != nil {
			return err
		}
		rec.add(time.Since(ev.OccurredAt))
		got.Add(1)
		return nil
	})
	// reached waits until the group has handled want events.
	reached := func(want int64) error {
		deadline := time.Now().Add(2 * time.Minute)
		for got.Load() < want {
			if time.Now().After(deadline) {
				return fmt.Errorf("%d of %d events consumed", got.Load(), want)
			}
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	}
	// Writers commit concurrently, one event per transaction, as order changes do.
	const writers = 64
	write := func(from, count int) error {
		_, _, err := parallel(count, writers, func(i int) error {
			i += from
			data, _ := json.Marshal(smp.OrderEventData{OrderID: fmt.Sprintf("o%d", i%500), To: smp.StageCreated})
			ev := smp.Event{ID: fmt.Sprintf("e%d", i), Type: smp.EventOrderCreated, SchemaVersion: 1, AggregateID: fmt.Sprintf("o%d", i%500), OccurredAt: time.Now(), Data: data}
			return store.InTx(ctx, func(tx smp.Tx) error { return tx.AddEvent(ctx, ev) })
		})
		return err
	}
	start := time.Now()
	if err := write(0, n); err != nil {
		return Result{}, err
	}
	if err := reached(int64(n)); err != nil {
		return Result{}, err
	}
	smpM := measure("outbox commit → relay → Kafka (kfake, 3 brokers) → consumer group", "events/s", n, time.Since(start), rec.summary())

	// A backlog: the relay stopped while n events are committed, then the
	// time from its restart until the group has handled them all.
	if err := relay.Stop(ctx); err != nil {
		return Result{}, err
	}
	if err := write(n, n); err != nil {
		return Result{}, err
	}
	relay2, err := outbox.New(store, bus, outbox.Config{Signal: store.CommitSignal(), PollInterval: 50 * time.Millisecond})
	if err != nil {
		return Result{}, err
	}
	start = time.Now()
	relay2.Start(ctx)
	defer relay2.Stop(context.Background())
	if err := reached(int64(2 * n)); err != nil {
		return Result{}, fmt.Errorf("backlog: %w", err)
	}
	drain := float64(n) / time.Since(start).Seconds()

	if err := bus.EnsureTopics(ctx, "raw"); err != nil {
		return Result{}, err
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		return Result{}, err
	}
	defer prod.Close()
	cons, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumerGroup("raw"), kgo.ConsumeTopics("raw"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(250*time.Millisecond))
	if err != nil {
		return Result{}, err
	}
	defer cons.Close()
	raw, rawDone := &recorder{}, make(chan struct{})
	var rawGot atomic.Int64
	go func() {
		for {
			fs := cons.PollFetches(cctx)
			if fs.IsClientClosed() || cctx.Err() != nil {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				raw.add(time.Since(r.Timestamp))
				if rawGot.Add(1) == int64(n) {
					close(rawDone)
				}
			})
		}
	}()
	start = time.Now()
	for i := 0; i < n; i++ {
		prod.Produce(ctx, &kgo.Record{Topic: "raw", Key: []byte(fmt.Sprintf("o%d", i%500)), Value: []byte(`{"event_id":"x"}`), Timestamp: time.Now()}, nil)
	}
	select {
	case <-rawDone:
	case <-time.After(2 * time.Minute):
		return Result{}, fmt.Errorf("raw: %d of %d records consumed", rawGot.Load(), n)
	}
	refM := measure("raw franz-go produce (async, acks=all) → group consumer", "events/s", n, time.Since(start), raw.summary())
	res := compared(smpM, refM, fmt.Sprintf("%d writers committing one event per transaction, as order changes do; a backlog of %d drained through relay and group at %.0f events/s (%.2f × the reference)",
		writers, n, drain, drain/refM.Throughput))
	res.Extra = map[string]any{"writers": writers, "backlog_events": n, "backlog_drain_events_per_s": drain, "backlog_drain_ratio": drain / refM.Throughput}
	return res, nil
}

// ---------- lifecycle ----------

func benchLifecycle(ctx context.Context, e *benchEnv) (Result, error) {
	n, conc, techs := 600, 24, 200
	if e.quick {
		n, conc, techs = 40, 4, 30
	}
	a, ds, stop, err := e.app(ctx, sim.SeedConfig{Partners: 5, Technicians: techs, Customers: conc, Seed: 5}, func(c *app.Config) {
		c.InvitationTTL, c.RetryAfter = 5*time.Second, 200*time.Millisecond
	})
	if err != nil {
		return Result{}, err
	}
	defer stop()
	var completed sync.Map // order id -> chan struct{}
	waitFor := func(id string) chan struct{} {
		ch, _ := completed.LoadOrStore(id, make(chan struct{}))
		return ch.(chan struct{})
	}
	tctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for i, t := range ds.Technicians {
		st := sim.NewTechnician(a.HTTP.URL(), t, sim.Behavior{AcceptRate: 1, ThinkMin: time.Millisecond, ThinkMax: 5 * time.Millisecond,
			StartAfter: time.Millisecond, WorkFor: time.Millisecond, Heartbeat: 30 * time.Second}, uint64(i+1), nil)
		st.Observe = func(ev, id string) {
			if ev == "completed" {
				close(waitFor(id))
			}
		}
		wg.Add(1)
		go func() { defer wg.Done(); st.Run(tctx) }()
	}
	if err := waitConnections(a, len(ds.Technicians), 30*time.Second); err != nil {
		return Result{}, err
	}
	// Orders go where technicians are: each customer orders near a random
	// technician, for one of their skills.
	rng := mrand.New(mrand.NewPCG(5, 5))
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = orderNear(ds, ds.Technicians[rng.IntN(len(ds.Technicians))], rng, 0.002)
	}
	c := benchClient(conc)
	url := a.HTTP.URL() + "/v1/orders"
	m := newMeter(a, e.backend)
	before := m.read()
	smpM, err := measured("order placed → 05_completed (offer, accept, start, complete by simulated technicians)", "orders/s", n, conc, func(i int) error {
		out, err := post(c, url, ds.Customers[i%len(ds.Customers)].Token, bodies[i], http.StatusCreated)
		if err != nil {
			return err
		}
		var o struct{ ID string }
		json.Unmarshal(out, &o)
		select {
		case <-waitFor(o.ID):
			return nil
		case <-time.After(60 * time.Second):
			return fmt.Errorf("order %s not completed within 60 s", o.ID)
		}
	})
	if err != nil {
		return Result{}, err
	}

	cost := m.per(before, n)
	// The reference: the same store doing only the five stage changes of
	// an order, each its own transaction, with the same concurrency.
	now := time.Now().UTC()
	stages := []smp.Stage{smp.StageDispatching, smp.StageAssigned, smp.StageInProgress, smp.StageCompleted}
	refM, err := measured("the store's 5 raw transactions per order (insert + 4 stage updates)", "orders/s", n, conc, func(i int) error {
		o := &smp.Order{ID: fmt.Sprintf("raw-%d", i), CustomerID: ds.Customers[0].ID, City: "HCMC", Service: "plumbing", Lat: 10.78, Lng: 106.7,
			PriceVND: 250000, Stage: smp.StageCreated, PaymentStatus: smp.PaymentPending, CreatedAt: now, StageChangedAt: now}
		if err := a.Store.InTx(ctx, func(tx smp.Tx) error { return tx.InsertOrder(ctx, o) }); err != nil {
			return err
		}
		for _, st := range stages {
			o.Stage = st
			if err := a.Store.InTx(ctx, func(tx smp.Tx) error { return tx.UpdateOrder(ctx, o) }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	res := compared(smpM, refM, fmt.Sprintf("%d orders in flight at a time, %d technicians online (accept at once, jobs of 1 ms)", conc, techs))
	res.Cost = &cost
	return res, nil
}

// orderNear is an order body near technician t, for one of their skills,
// inside t's city.
func orderNear(ds *sim.Dataset, t sim.SeededTechnician, rng *mrand.Rand, jitter float64) []byte {
	lat, lng := t.Lat+(rng.Float64()-0.5)*jitter, t.Lng+(rng.Float64()-0.5)*jitter
	for _, c := range ds.Cities {
		if c.Code == t.City {
			lat, lng = min(max(lat, c.MinLat), c.MaxLat), min(max(lng, c.MinLng), c.MaxLng)
		}
	}
	return []byte(fmt.Sprintf(`{"city":%q,"service":%q,"lat":%.6f,"lng":%.6f,"price_vnd":250000}`, t.City, t.Skills[rng.IntN(len(t.Skills))], lat, lng))
}

func waitConnections(a *app.App, n int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for a.Hub.Connections() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d technicians connected", a.Hub.Connections(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// ---------- dispatch ----------

// phaseTimes joins what the order's sender and the technicians saw.
type phaseTimes struct {
	mu                      sync.Mutex
	sched, offer, won, done map[string]time.Time
	failed                  int
	firstErr                error
}

func newPhaseTimes() *phaseTimes {
	return &phaseTimes{sched: map[string]time.Time{}, offer: map[string]time.Time{}, won: map[string]time.Time{}, done: map[string]time.Time{}}
}

// waitFor polls until cond (under the lock) holds; false after d.
func (p *phaseTimes) waitFor(d, every time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; {
		p.mu.Lock()
		ok := cond()
		p.mu.Unlock()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every) // polling with a deadline
	}
}

func (p *phaseTimes) seen(m map[string]time.Time, id string, at time.Time) {
	p.mu.Lock()
	if _, ok := m[id]; !ok {
		m[id] = at
	}
	p.mu.Unlock()
}

// openLoop calls send at rate per second for d, each call at its
// scheduled time, in its own goroutine (the sender never waits for
// answers, so a slow server shows as latency, not as a lower rate).
func openLoop(ctx context.Context, rate float64, d time.Duration, send func(i int, sched time.Time)) {
	n := int(rate * d.Seconds())
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sched := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if w := time.Until(sched); w > 0 {
			time.Sleep(w) // pacing the offered load
		}
		wg.Add(1)
		go func() { defer wg.Done(); send(i, sched) }()
	}
	wg.Wait()
}

func benchDispatch(ctx context.Context, e *benchEnv) (Result, error) {
	// The full run stays under 5 minutes even if every rate passes.
	techs, phase, firstOffers := 10000, 8*time.Second, 10
	rates := []float64{10, 50, 100, 200, 400, 600, 800, 1000, 1500}
	if e.quick {
		techs, phase, firstOffers, rates = 300, 2*time.Second, 5, []float64{5, 10}
	}
	if e.technicians > 0 {
		techs = e.technicians
	}
	if len(e.rates) > 0 {
		rates = e.rates
	}
	job := e.job
	if job <= 0 {
		job = time.Second
	}
	if err := raiseFileLimit(uint64(techs + 2048)); err != nil {
		return Result{}, &UsageError{Msg: err.Error()}
	}
	seedStart := time.Now()
	a, ds, stop, err := e.app(ctx, sim.SeedConfig{Partners: 50, Technicians: techs, Customers: 200, Seed: 11}, func(c *app.Config) {
		c.InvitationTTL, c.RetryAfter, c.BackpressureThreshold = 10*time.Second, 500*time.Millisecond, 100000
	})
	if err != nil {
		return Result{}, err
	}
	defer stop()
	e.logf("dispatch: %d technicians seeded in %s", techs, time.Since(seedStart).Round(time.Second))
	m := newMeter(a, e.backend)
	if e.census {
		m = m.withCensus()
	}
	idleFor, settle := 5*time.Second, 2*time.Second
	if e.quick {
		idleFor, settle = time.Second, 500*time.Millisecond
	}
	time.Sleep(settle) // start-up's own work (the catalogue's events relayed and consumed) done
	idle := []Idle{m.idle("no technicians connected, no orders", idleFor)}
	e.logf("dispatch: idle: %s", idle[0])

	var cur atomic.Pointer[phaseTimes]
	cur.Store(newPhaseTimes())
	connStart := time.Now()
	// Every phone accepts after 20-30 ms (so that the first-offer phase
	// below reads its counters before any accept), and does the job it
	// wins through the API, started a quarter of job after the
	// assignment and completed at its end: the technician is free again,
	// so high rates measure dispatch, not an exhausted fleet.
	spec := fleetSpec{URL: a.HTTP.URL(), Technicians: ds.Technicians, Behavior: sim.Behavior{AcceptRate: 1, ThinkMin: 20 * time.Millisecond,
		ThinkMax: 30 * time.Millisecond, StartAfter: job / 4, WorkFor: job - job/4, Heartbeat: FleetHeartbeat}}
	separate := e.fleet == "process" || (e.fleet == "" && techs > 1000)
	// probe, when armed, takes a reading of the counters at the next offer
	// any phone sees (the first-offer phase has one order in flight).
	var probe atomic.Pointer[chan counts]
	stopFleet, err := startFleet(ctx, spec, separate, e.fleetEnv, func(ev, id string, at time.Time) {
		p := cur.Load()
		switch ev {
		case "offer":
			if ch := probe.Swap(nil); ch != nil {
				*ch <- m.read()
			}
			p.seen(p.offer, id, at)
		case "won":
			p.seen(p.won, id, at)
		case "completed":
			p.seen(p.done, id, at)
		}
	})
	if err != nil {
		return Result{}, err
	}
	defer stopFleet()
	if err := waitConnections(a, len(ds.Technicians), time.Minute); err != nil {
		return Result{}, err
	}
	e.logf("dispatch: %d technicians online in %s", techs, time.Since(connStart).Round(time.Second))
	idle = append(idle, m.idle(fmt.Sprintf("%d technicians connected, no orders", techs), idleFor))
	e.logf("dispatch: idle: %s", idle[1])

	rng := mrand.New(mrand.NewPCG(11, 11))
	c := benchClient(256)
	url := a.HTTP.URL() + "/v1/orders"

	// To the first offer: orders one at a time, each with nothing else in
	// flight (the previous one's job done and its events settled), the
	// counters read just before its POST and at its first offer.
	fo := newPhaseTimes()
	cur.Store(fo)
	time.Sleep(settle) // the connections' own work done
	bg := m.idle("background before the first-offer phase", idleFor)
	var windows [][2]counts
	for i := range firstOffers {
		body := orderNear(ds, ds.Technicians[rng.IntN(len(ds.Technicians))], rng, 0.004)
		ch := make(chan counts, 1)
		before := m.read()
		probe.Store(&ch)
		out, err := post(c, url, ds.Customers[i%len(ds.Customers)].Token, body, http.StatusCreated)
		if err != nil {
			return Result{}, fmt.Errorf("first-offer phase: %w", err)
		}
		var o struct{ ID string }
		json.Unmarshal(out, &o)
		select {
		case after := <-ch:
			windows = append(windows, [2]counts{before, after})
		case <-time.After(10 * time.Second):
			probe.Store(nil)
			return Result{}, fmt.Errorf("first-offer phase: order %s got no offer in 10 s", o.ID)
		}
		if !fo.waitFor(job+10*time.Second, 5*time.Millisecond, func() bool { _, ok := fo.done[o.ID]; return ok }) {
			return Result{}, fmt.Errorf("first-offer phase: order %s was not completed in %s", o.ID, job+10*time.Second)
		}
		time.Sleep(200 * time.Millisecond) // the completion's events relayed and consumed
	}
	toFirst := m.firstOfferCost(windows, bg)
	e.logf("dispatch: to the first offer, per order: %s", toFirst)

	// The reference: a bare net/http server pushing each POST to one of
	// the connected WebSockets (no SMP logic), at the same rates.
	ref, err := startPushServer(ctx, min(techs, 1000))
	if err != nil {
		return Result{}, err
	}
	defer ref.close()

	// Warm up (caches, connections, the JIT-free but cold database pages)
	// at the lowest rate; not recorded.
	warm := 3 * time.Second
	if e.quick {
		warm = 500 * time.Millisecond
	}
	wp := newPhaseTimes()
	cur.Store(wp)
	openLoop(ctx, rates[0], warm, func(i int, _ time.Time) {
		t := ds.Technicians[(i*7919)%len(ds.Technicians)]
		post(c, url, ds.Customers[i%len(ds.Customers)].Token, orderNear(ds, t, mrand.New(mrand.NewPCG(uint64(i), 1)), 0.004), http.StatusCreated)
	})
	if _, err := ref.run(ctx, c, rates[0], warm); err != nil {
		return Result{}, err
	}
	if e.census {
		// The census of the first rate's whole orders holds none of the
		// warm-up's: its jobs are done first.
		wp.waitFor(job+15*time.Second, 50*time.Millisecond, func() bool { return len(wp.won) > 0 && len(wp.done) >= len(wp.won) })
		time.Sleep(settle) // their events relayed and consumed
	}
	var sweep []Point
	best := -1
	for _, rate := range rates {
		p := newPhaseTimes()
		cur.Store(p)
		n := int(rate * phase.Seconds())
		bodies := make([][]byte, n)
		for i := range bodies {
			bodies[i] = orderNear(ds, ds.Technicians[rng.IntN(len(ds.Technicians))], rng, 0.004)
		}
		before := m.read()
		openLoop(ctx, rate, phase, func(i int, sched time.Time) {
			out, err := post(c, url, ds.Customers[i%len(ds.Customers)].Token, bodies[i], http.StatusCreated)
			p.mu.Lock()
			defer p.mu.Unlock()
			if err != nil {
				p.failed++
				if p.firstErr == nil {
					p.firstErr = err
				}
				return
			}
			var o struct{ ID string }
			json.Unmarshal(out, &o)
			p.sched[o.ID] = sched
		})
		// Wait (bounded) for every order of the phase to be assigned.
		p.waitFor(15*time.Second, 50*time.Millisecond, func() bool { return len(p.won) >= len(p.sched) })
		p.mu.Lock()
		cost := m.per(before, len(p.sched))
		var offerLat, wonLat []time.Duration
		for id, s := range p.sched {
			if t, ok := p.offer[id]; ok {
				offerLat = append(offerLat, t.Sub(s))
			} else {
				p.failed++
				if p.firstErr == nil {
					p.firstErr = fmt.Errorf("order %s got no offer", id)
				}
			}
			if t, ok := p.won[id]; ok {
				wonLat = append(wonLat, t.Sub(s))
			}
		}
		pt := Point{Rate: rate, Orders: len(p.sched), FirstOffer: summarize(offerLat), Assigned: summarize(wonLat), Failed: p.failed, Cost: &cost}
		p.mu.Unlock()
		refRec, err := ref.run(ctx, c, rate, phase)
		if err != nil {
			return Result{}, err
		}
		pt.Reference = refRec.summary()
		// The next rate starts with the fleet free again (every job won
		// here completed; the reference's phase usually covered it).
		p.waitFor(job+15*time.Second, 50*time.Millisecond, func() bool { return len(p.done) >= len(p.won) })
		if e.census && len(sweep) == 0 {
			// The whole order, created → completed: the phase's orders
			// and every job won done (the reference phase between asks
			// nothing of the databases).
			time.Sleep(settle) // the completions' events relayed and consumed
			whole := m.per(before, pt.Orders)
			pt.WholeOrder = &whole
			e.logf("dispatch at %.0f orders/s, whole order (created → completed), per order: %s", rate, whole)
		}
		sweep = append(sweep, pt)
		e.logf("dispatch at %.0f orders/s: %d orders, first offer p50 %.1f p99 %.1f ms, assigned p99 %.1f ms, reference p99 %.1f ms, failed %d",
			rate, pt.Orders, pt.FirstOffer.P50, pt.FirstOffer.P99, pt.Assigned.P99, pt.Reference.P99, pt.Failed)
		e.logf("dispatch at %.0f orders/s, per order: %s", rate, cost)
		if p.firstErr != nil {
			e.logf("dispatch at %.0f orders/s: %s", rate, strings.Join(strings.Fields(p.firstErr.Error()), " "))
		}
		if pt.FirstOffer.P99 >= 100 || pt.Failed > 0 {
			break
		}
		best = len(sweep) - 1
	}
	res := Result{Sweep: sweep, Idle: idle, ToFirstOffer: toFirst,
		Extra: map[string]any{"technicians": techs, "phase_seconds": phase.Seconds(), "warmup_seconds": warm.Seconds(), "job_seconds": job.Seconds()}}
	if best < 0 {
		res.Notes = fmt.Sprintf("p99 to the first offer was over 100 ms (or orders failed) already at %.0f orders/s", rates[0])
		best = 0
	} else {
		res.Notes = fmt.Sprintf("highest offered rate with first-offer p99 < 100 ms: %.0f orders/s (rates tried: %v); ratio = SMP first-offer p99 / reference p99 at that rate", sweep[best].Rate, rates[:len(sweep)])
		res.Extra["max_rate_p99_under_100ms"] = sweep[best].Rate
	}
	b := sweep[best]
	res.SMP = Measure{Name: "order created → first offer on a technician's WebSocket", Ops: b.Orders, Seconds: phase.Seconds(), Throughput: b.Rate, Unit: "orders/s", Latency: b.FirstOffer}
	res.Reference = Measure{Name: "bare net/http POST → WebSocket push (no SMP logic)", Ops: b.Orders, Seconds: phase.Seconds(), Throughput: b.Rate, Unit: "pushes/s", Latency: b.Reference}
	res.Extra["assigned"] = b.Assigned
	if b.Reference.P99 > 0 {
		res.Ratio = round3(b.FirstOffer.P99 / b.Reference.P99)
	}
	return res, nil
}

// pushServer is the dispatch reference: POST /push?id=N writes to one of
// its connected WebSocket clients, which time the arrival.
type pushServer struct {
	srv   *http.Server
	ln    net.Listener
	mu    sync.Mutex
	conns []*websocket.Conn
	sent  sync.Map // id -> time.Time (scheduled)
	rec   atomic.Pointer[recorder]
	stop  context.CancelFunc
	n     int
	seq   atomic.Int64
}

func startPushServer(ctx context.Context, clients int) (*pushServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ps := &pushServer{ln: ln, n: clients}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ps.mu.Lock()
		ps.conns = append(ps.conns, c)
		ps.mu.Unlock()
		<-r.Context().Done()
	})
	mux.HandleFunc("POST /push", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		id := r.URL.Query().Get("id")
		i, _ := strconv.Atoi(id)
		ps.mu.Lock()
		c := ps.conns[i%len(ps.conns)]
		ps.mu.Unlock()
		if err := c.Write(r.Context(), websocket.MessageText, []byte(`{"type":"offer","order_id":"`+id+`"}`)); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"` + id + `"}`))
	})
	ps.srv = &http.Server{Handler: mux}
	go ps.srv.Serve(ln)
	cctx, cancel := context.WithCancel(ctx)
	ps.stop = cancel
	for i := 0; i < clients; i++ {
		c, _, err := websocket.Dial(cctx, "ws://"+ln.Addr().String()+"/ws", nil)
		if err != nil {
			ps.close()
			return nil, err
		}
		go func() {
			for {
				_, msg, err := c.Read(cctx)
				if err != nil {
					return
				}
				var m struct {
					OrderID string `json:"order_id"`
				}
				json.Unmarshal(msg, &m)
				if s, ok := ps.sent.LoadAndDelete(m.OrderID); ok {
					ps.rec.Load().add(time.Since(s.(time.Time)))
				}
			}
		}()
	}
	for {
		ps.mu.Lock()
		n := len(ps.conns)
		ps.mu.Unlock()
		if n == clients {
			return ps, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (ps *pushServer) run(ctx context.Context, c *http.Client, rate float64, d time.Duration) (*recorder, error) {
	rec := &recorder{}
	ps.rec.Store(rec)
	var failed atomic.Int64
	openLoop(ctx, rate, d, func(_ int, sched time.Time) {
		id := strconv.FormatInt(ps.seq.Add(1), 10)
		ps.sent.Store(id, sched)
		if _, err := post(c, "http://"+ps.ln.Addr().String()+"/push?id="+id, "", []byte(`{"city":"HCMC"}`), http.StatusCreated); err != nil {
			failed.Add(1)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for rec.len() < int(rate*d.Seconds())-int(failed.Load()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if f := failed.Load(); f > 0 {
		return rec, fmt.Errorf("reference: %d pushes failed", f)
	}
	return rec, nil
}

func (ps *pushServer) close() {
	ps.stop()
	ps.srv.Close()
}
