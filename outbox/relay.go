// Package outbox relays events committed to the store's transactional
// outbox onto the event bus: at least once, in commit order (so in order
// per key). While the bus is unreachable the events wait in the database.
//
// Pipelined (issue 22): on a bus that is an smp.AsyncPublisher (Kafka) the
// relay keeps up to MaxInFlight batches in flight. It fetches the next batch
// after the last id it fetched (FetchOutboxAfter), not after the last one
// marked, and marks published in ack order: a batch is marked only once it
// and every batch before it are acknowledged, the acknowledged prefix in one
// MarkOutboxPublished. A bus without it (the embedded log) gets one batch at
// a time through Publish, as before.
//
// Order per key on failure. Of the events handed to an AsyncPublisher since
// its last Resume, those appended form a prefix, per key, of the relay's
// order (commit order): Kafka's idempotent producer appends a partition's
// records in sequence, and kafkabus fails every call after a failed one,
// without producing it, and fences the producing client (see
// kafkabus/produce.go for why franz-go needs that). So at the first failure
// the relay stops fetching, waits for every batch in flight, marks the
// acknowledged prefix, calls Resume, and starts again from the first
// unmarked event. For any key, the copies appended before the failure are
// its events up to some point, in order, and the new attempt appends from
// an earlier or equal point on, in order: the first copy of each event a
// consumer sees comes in commit order; the later copies are duplicates,
// which consumers drop by event id. A batch acknowledged after a failed
// one is never marked: it is published again. The one window left is a
// broker's refusal of a record (too large, invalid, not authorised):
// franz-go reports it a moment late, and a record produced in that moment
// can be appended; but a refused record is refused on every attempt, so it
// never comes after its key's newer events: the relay stops at it, as
// before, until an operator acts (docs/events.md).
//
// Commit order is id order on SQLite (one writer). On MySQL an id can
// commit after a higher one; an event so skipped by a fetch "after" is
// fetched by the next pass, which starts at the first unpublished event
// (a pass ends when the outbox is drained, at the lease's renewal, or
// after passDuration).
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/internal/startstop"
)

// Store is what the relay needs of the system of record: the outbox.
type Store interface {
	smp.OutboxStore
}

// Config of the relay.
type Config struct {
	// Signal, when set, wakes the relay right after a commit.
	Signal <-chan struct{}
	// PollInterval is the fallback poll (other processes' commits).
	PollInterval time.Duration
	BatchSize    int
	// MaxInFlight is how many batches may wait for their acknowledgement
	// at once on a bus that is an smp.AsyncPublisher (default 4; 1 is one
	// batch at a time). Other buses publish one batch at a time.
	MaxInFlight int
	// Locker, when set, makes the relay run in one process at a time
	// (lease "lock:outbox-relay"): several relays would publish one key's
	// events out of order. cmd/smp gives it the database, so event
	// delivery never depends on Redis.
	Locker     smp.Locker
	Owner      string
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// LeaseKey is the relay's lease in the Locker.
const LeaseKey = "lock:outbox-relay"

// Relay moves outbox events to the bus.
type Relay struct {
	store Store
	bus   smp.AsyncPublisher // the bus, or syncPublisher over it
	max   int                // batches in flight at most
	cfg   Config

	published prometheus.Counter
	failures  prometheus.Counter
	inFlight  prometheus.Gauge

	// onReport, for tests, sees each batch's report (ids: first and last).
	onReport func(first, last int64, err error)

	startstop.Base
}

// New returns a relay; Start runs it.
func New(store Store, bus smp.EventBus, cfg Config) (*Relay, error) {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Owner == "" {
		cfg.Owner = fmt.Sprintf("relay-%d", time.Now().UnixNano())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Relay{store: store, cfg: cfg,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "smp_outbox_published_total", Help: "Outbox events handed to the event bus."}),
		failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "smp_outbox_publish_failures_total", Help: "Failed attempts to publish outbox events."}),
		inFlight:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "smp_outbox_batches_in_flight", Help: "Outbox batches handed to the event bus and not yet marked published."}),
	}
	if ap, ok := bus.(smp.AsyncPublisher); ok {
		r.bus, r.max = ap, cfg.MaxInFlight
	} else {
		r.bus, r.max = syncPublisher{bus}, 1
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{r.published, r.failures, r.inFlight, &backlogCollector{r}} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// syncPublisher gives a bus without asynchronous publishing the relay's
// interface: one batch at a time (the relay keeps one in flight), through
// Publish.
type syncPublisher struct{ smp.EventBus }

func (p syncPublisher) PublishAsync(ctx context.Context, msgs []smp.Message, done func(error)) {
	done(p.Publish(ctx, msgs...))
}

func (syncPublisher) Resume(context.Context) error { return nil }

// Start runs the relay in the background; idempotent. Stop (from
// startstop.Base) stops it and waits for it, bounded by its context.
func (r *Relay) Start(ctx context.Context) error {
	ctx, ok := r.StartInit(ctx)
	if !ok {
		return nil
	}
	r.Go(func() { r.run(ctx) })
	r.MarkStarted()
	return nil
}

// leaseTTL is the relay's lease; it is renewed every leaseTTL/3 (not on
// every cycle: issue 22), and the relay publishes only while at least a
// third of it is left.
const leaseTTL = 10 * time.Second

// passDuration bounds how long one pass fetches new batches (without a
// Locker; with one, the lease's renewal does): the next pass starts again
// at the first unpublished event (see the package comment on MySQL).
const passDuration = leaseTTL / 3

func (r *Relay) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	var leased time.Time // when the lease was last taken or renewed (zero: not held)
	for ctx.Err() == nil {
		if r.cfg.Locker != nil && (leased.IsZero() || r.cfg.Now().Sub(leased) >= leaseTTL/3) {
			now := r.cfg.Now()
			ok, err := r.cfg.Locker.TryLock(ctx, LeaseKey, r.cfg.Owner, leaseTTL)
			if err != nil || !ok {
				// Another process relays (or the lock store is down): stand by.
				leased = time.Time{}
				if !wait(ctx, nil, 2*time.Second) {
					return
				}
				continue
			}
			leased = now
		}
		until := r.cfg.Now().Add(passDuration)
		if r.cfg.Locker != nil {
			// New batches only while two thirds of the lease are left.
			until = leased.Add(leaseTTL / 3)
		}
		_, more, err := r.pass(ctx, until)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.failures.Inc()
			r.cfg.Logger.Warn("outbox: publish failed; events stay in the outbox", "err", err, "retry_in", backoff)
			if !wait(ctx, nil, backoff) {
				return
			}
			backoff = min(backoff*2, 10*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if more {
			continue
		}
		idle := r.cfg.PollInterval
		if r.cfg.Locker != nil {
			// Wake in time to renew the lease.
			idle = min(idle, max(leaseTTL/3-r.cfg.Now().Sub(leased), time.Millisecond))
		}
		if !wait(ctx, r.cfg.Signal, idle) {
			return
		}
	}
}

func wait(ctx context.Context, signal <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-signal:
	case <-t.C:
	}
	return true
}

// Flush publishes what the outbox holds (a pass of at most passDuration
// of fetching) and returns how many events it moved.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	n, _, err := r.pass(ctx, r.cfg.Now().Add(passDuration))
	return n, err
}

// batch is one fetch handed to the bus, in fetch order.
type batch struct {
	ids      []int64
	reported bool
	err      error
}

type report struct {
	b   *batch
	err error
}

// pass publishes from the first unpublished event on, keeping up to r.max
// batches in flight and marking them in ack order, until the outbox is
// drained (more false), until passes (more true: it fetches no more and
// returns once the batches in flight are marked), or a failure: then it
// fetches no more, waits for every batch in flight, marks the
// acknowledged prefix, resumes the bus and returns the first error (the
// next pass starts at the first unmarked event: see the package comment).
func (r *Relay) pass(ctx context.Context, until time.Time) (moved int, more bool, err error) {
	reports := make(chan report, r.max) // each batch reports once: sends never block
	var (
		queue      []*batch
		after      int64 // the last id fetched; 0: from the first unpublished
		failure    error
		drained    bool
		markFailed bool
	)
	defer r.inFlight.Set(0)
	for {
		for failure == nil && !drained && !more && len(queue) < r.max {
			recs, err := r.store.FetchOutboxAfter(ctx, after, r.cfg.BatchSize)
			if err != nil {
				failure = err
				break
			}
			drained = len(recs) < r.cfg.BatchSize
			more = !drained && !r.cfg.Now().Before(until)
			if len(recs) == 0 {
				break
			}
			msgs, ids, err := messages(recs)
			if err != nil {
				failure = err
				break
			}
			after = ids[len(ids)-1]
			b := &batch{ids: ids}
			queue = append(queue, b)
			r.inFlight.Set(float64(len(queue)))
			r.bus.PublishAsync(ctx, msgs, func(err error) { reports <- report{b, err} })
		}
		if len(queue) == 0 {
			break
		}
		if failure != nil && allReported(queue) {
			break
		}
		select {
		case <-ctx.Done():
			return moved, false, ctx.Err()
		case rep := <-reports:
			rep.b.reported, rep.b.err = true, rep.err
			if r.onReport != nil {
				r.onReport(rep.b.ids[0], rep.b.ids[len(rep.b.ids)-1], rep.err)
			}
			if rep.err != nil && failure == nil {
				failure = rep.err
			}
		}
		// Mark the acknowledged prefix, in one statement: never a batch
		// with an earlier one unacknowledged (its new attempt would come
		// after this one's events).
		k := 0
		for k < len(queue) && queue[k].reported && queue[k].err == nil {
			k++
		}
		if k == 0 || markFailed {
			continue
		}
		var ids []int64
		for _, b := range queue[:k] {
			ids = append(ids, b.ids...)
		}
		if err := r.store.MarkOutboxPublished(ctx, ids, r.cfg.Now()); err != nil {
			// Published but not marked: the next pass publishes them
			// again; consumers dedupe by event id.
			markFailed = true
			if failure == nil {
				failure = err
			}
			continue
		}
		r.published.Add(float64(len(ids)))
		moved += len(ids)
		queue = queue[k:]
		r.inFlight.Set(float64(len(queue)))
	}
	if failure != nil {
		if err := r.bus.Resume(ctx); err != nil {
			return moved, false, errors.Join(failure, err)
		}
		return moved, false, failure
	}
	return moved, more, nil
}

func allReported(queue []*batch) bool {
	for _, b := range queue {
		if !b.reported {
			return false
		}
	}
	return true
}

// messages are the records as the bus carries them: the stored bytes of
// each event, its id and type in headers.
func messages(recs []smp.OutboxRecord) ([]smp.Message, []int64, error) {
	msgs := make([]smp.Message, len(recs))
	ids := make([]int64, len(recs))
	for i, rec := range recs {
		value := rec.Payload // the stored encoding, passed through
		if value == nil {
			var err error
			if value, err = json.Marshal(rec.Event); err != nil {
				return nil, nil, err
			}
		}
		msgs[i] = smp.Message{Topic: rec.Event.Topic(), Key: rec.Event.AggregateID, Value: value,
			Headers: map[string]string{"event_id": rec.Event.ID, "event_type": rec.Event.Type}}
		ids[i] = rec.ID
	}
	return msgs, ids, nil
}

type backlogCollector struct{ r *Relay }

var (
	backlogDesc = prometheus.NewDesc("smp_outbox_backlog", "Events committed to the outbox and not yet published.", nil, nil)
	oldestDesc  = prometheus.NewDesc("smp_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox event.", nil, nil)
)

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) { ch <- backlogDesc; ch <- oldestDesc }

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, oldest, err := c.r.store.OutboxBacklog(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(backlogDesc, err)
		return
	}
	age := 0.0
	if n > 0 {
		age = c.r.cfg.Now().Sub(oldest).Seconds()
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}
