package dispatch

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	offers       *prometheus.CounterVec
	assignments  *prometheus.CounterVec
	backpressure *prometheus.CounterVec
	exhausted    prometheus.Counter
	leasesLost   prometheus.Counter
	waiting      prometheus.Gauge
	refused      prometheus.Counter
	latency      prometheus.Histogram
	firstOffer   prometheus.Histogram
}

var latencyBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}

func newMetrics(e *Engine, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		offers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_dispatch_offers_total",
			Help: "Offers by outcome: sent, delivered, accepted, declined, expired, withdrawn, lost."}, []string{"outcome"}),
		assignments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_dispatch_assignments_total",
			Help: "Orders assigned, by mode (auto, manual)."}, []string{"mode"}),
		backpressure: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_dispatch_backpressure_total",
			Help: "Times a city queue was found over the backpressure threshold."}, []string{"city"}),
		exhausted: prometheus.NewCounter(prometheus.CounterOpts{Name: "smp_dispatch_rounds_exhausted_total",
			Help: "Dispatch rounds that ended without an assignment (the order waits and is retried)."}),
		leasesLost: prometheus.NewCounter(prometheus.CounterOpts{Name: "smp_dispatch_lock_lost_total",
			Help: "Dispatch rounds stopped because their order's lock lapsed (renewal refused or impossible for a whole lease)."}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Name: "smp_dispatch_waiting_for_redis",
			Help: "Engine steps (consumer events) now waiting for Redis to take writes again instead of failing into the dead-letter topic (INC-004)."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "smp_dispatch_redis_refusals_total",
			Help: "Writes of the engine's consumer Redis refused (out of memory or unreachable), each retried until accepted (INC-004)."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "smp_dispatch_latency_seconds",
			Help: "Time from order creation to assignment.", Buckets: latencyBuckets}),
		firstOffer: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "smp_dispatch_first_offer_delivered_seconds",
			Help: "Time from order creation to the first offer delivered to a technician's device.", Buckets: latencyBuckets}),
	}
	for _, o := range []string{"sent", "delivered", "accepted", "declined", "expired", "withdrawn", "lost"} {
		m.offers.WithLabelValues(o)
	}
	m.assignments.WithLabelValues("auto")
	m.assignments.WithLabelValues("manual")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.offers, m.assignments, m.backpressure, m.exhausted, m.leasesLost, m.waiting, m.refused, m.latency, m.firstOffer, &engineCollector{e}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

type engineCollector struct{ e *Engine }

var (
	queueDesc = prometheus.NewDesc("smp_dispatch_queue_length", "Orders waiting in dispatch:queue:{city}.", []string{"city"}, nil)
	invDesc   = prometheus.NewDesc("smp_dispatch_outstanding_invitations", "Open offers (sent or delivered, not yet answered).", nil, nil)
	runsDesc  = prometheus.NewDesc("smp_dispatch_active", "Orders being dispatched by this engine now.", nil, nil)
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDesc
	ch <- invDesc
	ch <- runsDesc
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, code := range c.e.cityCodes() {
		if n, err := c.e.d.Queue.Len(ctx, code); err == nil {
			ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(n), code)
		} else {
			ch <- prometheus.NewInvalidMetric(queueDesc, err)
		}
	}
	if n, err := c.e.d.Invitations.Count(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(invDesc, prometheus.GaugeValue, float64(n))
	}
	c.e.mu.Lock()
	n := len(c.e.runs)
	c.e.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, float64(n))
}

// window keeps the most recent latencies for quantiles in /admin/stats.
type window struct {
	mu   sync.Mutex
	buf  []time.Duration
	next int
	full bool
}

func newWindow(n int) *window { return &window{buf: make([]time.Duration, n)} }

func (w *window) add(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf[w.next] = d
	w.next = (w.next + 1) % len(w.buf)
	if w.next == 0 {
		w.full = true
	}
}

func (w *window) quantiles() Quantiles {
	w.mu.Lock()
	n := w.next
	if w.full {
		n = len(w.buf)
	}
	s := append([]time.Duration(nil), w.buf[:n]...)
	w.mu.Unlock()
	if len(s) == 0 {
		return Quantiles{}
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) float64 {
		i := int(p*float64(len(s)-1) + 0.5)
		return float64(s[i].Microseconds()) / 1000
	}
	return Quantiles{P50: q(0.50), P99: q(0.99), Count: len(s)}
}
