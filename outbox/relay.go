// Package outbox relays events committed to the store's transactional
// outbox onto the event bus: at least once, in commit order (so in order
// per key). While the bus is unreachable the events wait in the database.
package outbox

import (
	"context"
	"encoding/json"
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
	bus   smp.EventBus
	cfg   Config

	published prometheus.Counter
	failures  prometheus.Counter

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
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Owner == "" {
		cfg.Owner = fmt.Sprintf("relay-%d", time.Now().UnixNano())
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Relay{store: store, bus: bus, cfg: cfg,
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "smp_outbox_published_total", Help: "Outbox events handed to the event bus."}),
		failures:  prometheus.NewCounter(prometheus.CounterOpts{Name: "smp_outbox_publish_failures_total", Help: "Failed attempts to publish outbox events."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{r.published, r.failures, &backlogCollector{r}} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

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
		n, err := r.Flush(ctx)
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
		if n == r.cfg.BatchSize {
			continue // more waiting
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

// Flush publishes one batch and returns how many events it moved.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	recs, err := r.store.FetchOutbox(ctx, r.cfg.BatchSize)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	msgs := make([]smp.Message, len(recs))
	ids := make([]int64, len(recs))
	for i, rec := range recs {
		value := rec.Payload // the stored encoding, passed through
		if value == nil {
			if value, err = json.Marshal(rec.Event); err != nil {
				return 0, err
			}
		}
		msgs[i] = smp.Message{Topic: rec.Event.Topic(), Key: rec.Event.AggregateID, Value: value,
			Headers: map[string]string{"event_id": rec.Event.ID, "event_type": rec.Event.Type}}
		ids[i] = rec.ID
	}
	if err := r.bus.Publish(ctx, msgs...); err != nil {
		return 0, err
	}
	if err := r.store.MarkOutboxPublished(ctx, ids, r.cfg.Now()); err != nil {
		// Published but not marked: the next flush publishes them again;
		// consumers dedupe by event id.
		return 0, err
	}
	r.published.Add(float64(len(recs)))
	return len(recs), nil
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
