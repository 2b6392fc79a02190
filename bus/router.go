package bus

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/internal/panics"
	"smp/internal/startstop"
)

// Config of a Router.
type Config struct {
	// MaxAttempts of a message before it is dead-lettered (default 5).
	MaxAttempts int
	// RetryBackoff is the first delay between attempts (default 100 ms),
	// doubled after each, up to MaxBackoff (default 5 s).
	RetryBackoff time.Duration
	MaxBackoff   time.Duration
	// Timeout bounds each attempt (0: unbounded, as before the router).
	Timeout time.Duration
	// ResubscribeAfter: the wait before subscribing again when a
	// subscription ended with an error (default 1 s).
	ResubscribeAfter time.Duration
	// Metrics counts outcomes; by default created on Registerer (shared by
	// the routers of one registry).
	Metrics    *Metrics
	Registerer prometheus.Registerer
	// Panics counts recovered panics; by default created on Registerer.
	Panics *panics.Counter
	Logger *slog.Logger
}

// Validate fills defaults.
func (c *Config) Validate() error {
	if c.MaxAttempts < 0 || c.RetryBackoff < 0 || c.MaxBackoff < 0 || c.Timeout < 0 || c.ResubscribeAfter < 0 {
		return smp.Errorf(smp.EINVALID, "bus: negative limits in the router configuration")
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 5
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.ResubscribeAfter == 0 {
		c.ResubscribeAfter = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		m, err := NewMetrics(c.Registerer)
		if err != nil {
			return err
		}
		c.Metrics = m
	}
	if c.Panics == nil {
		c.Panics = panics.New(c.Registerer, c.Logger)
	}
	return nil
}

// Router subscribes its handlers to a bus, each as its consumer group,
// through the middleware chain
//
//	metrics → poison → retry → timeout → recoverer → Use(…) → AddHandler(…, mw) → handler
//
// It has the lifecycle of SMP's long-running parts (internal/startstop):
// Start, then Stop, both idempotent.
type Router struct {
	startstop.Base
	bus smp.EventBus
	cfg Config

	mu     sync.Mutex
	mw     []Middleware
	routes []route
}

type route struct {
	group  string
	topics []string
	h      Handler
	batch  smp.BatchHandler // on a bus that delivers batches
}

// NewRouter returns a router on b; add handlers, then Start it.
func NewRouter(b smp.EventBus, cfg Config) (*Router, error) {
	if b == nil {
		return nil, smp.Errorf(smp.EINVALID, "bus: a router needs a bus")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Router{bus: b, cfg: cfg}, nil
}

// Use adds middleware run inside the router's own (after the recoverer)
// for every handler added after it.
func (r *Router) Use(mw ...Middleware) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mw = append(r.mw, mw...)
}

// AddHandler subscribes h as group to topics once the router starts, with
// mw innermost (Idempotent, typically). A group has one handler per
// router. It fails with EINVALID while the router runs or for a group
// added twice.
func (r *Router) AddHandler(group string, topics []string, h Handler, mw ...Middleware) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Running() {
		return smp.Errorf(smp.EINVALID, "bus: handler %s added after the router started", group)
	}
	if group == "" || len(topics) == 0 || h == nil {
		return smp.Errorf(smp.EINVALID, "bus: a handler needs a group, topics and a function")
	}
	for _, rt := range r.routes {
		if rt.group == group {
			return smp.Errorf(smp.EINVALID, "bus: group %s already has a handler", group)
		}
	}
	chain := []Middleware{
		r.cfg.Metrics.Middleware(),
		Poison(r.bus, r.cfg.Logger),
		Retry(RetryPolicy{MaxAttempts: r.cfg.MaxAttempts, Backoff: r.cfg.RetryBackoff, MaxBackoff: r.cfg.MaxBackoff, Logger: r.cfg.Logger}),
		Timeout(r.cfg.Timeout),
		Recoverer(r.cfg.Panics),
	}
	chain = append(append(chain, r.mw...), mw...)
	inner := Chain(h, chain...)
	r.routes = append(r.routes, route{group: group, topics: append([]string(nil), topics...), h: func(ctx context.Context, m smp.Message) error {
		if g := m.Headers[smp.HeaderReplayFor]; g != "" && g != group {
			return nil // a replay for another group: this one applied it
		}
		ctx, _ = withDelivery(ctx, group)
		return inner(ctx, m)
	}, batch: batchHandler(group, inner, r.cfg.Panics)})
	return nil
}

// Subscriptions lists the router's groups and their topics (for the lag
// collector).
func (r *Router) Subscriptions() []Subscription {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Subscription, len(r.routes))
	for i, rt := range r.routes {
		out[i] = Subscription{Group: rt.group, Topics: rt.topics}
	}
	return out
}

// Metrics returns the router's outcome counters.
func (r *Router) Metrics() *Metrics { return r.cfg.Metrics }

// Start subscribes every handler; they run until ctx ends or Stop. A
// subscription that ends with an error is logged and subscribed again
// after ResubscribeAfter. Starting a running router does nothing.
func (r *Router) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx, ok := r.StartInit(ctx)
	if !ok {
		return nil
	}
	for _, rt := range r.routes {
		r.Go(func() { r.subscribe(ctx, rt) })
	}
	r.MarkStarted()
	return nil
}

func (r *Router) subscribe(ctx context.Context, rt route) {
	for ctx.Err() == nil {
		err := r.cfg.Panics.Recover(Component(rt.group), func() error {
			if bs, ok := r.bus.(smp.BatchSubscriber); ok {
				return bs.SubscribeBatch(ctx, rt.group, rt.topics, rt.batch)
			}
			return r.bus.Subscribe(ctx, rt.group, rt.topics, rt.h)
		})
		if ctx.Err() != nil {
			return
		}
		r.cfg.Logger.Error("bus: subscription ended; resubscribing", "group", rt.group, "topics", rt.topics, "err", err, "retry_in", r.cfg.ResubscribeAfter)
		smp.Sleep(ctx, r.cfg.ResubscribeAfter)
	}
}

// Stop ends every subscription and waits for them (a message being
// handled finishes, and its offset is committed) until ctx ends, then it
// returns ctx's error. Safe before Start and twice.
func (r *Router) Stop(ctx context.Context) error { return r.Base.Stop(ctx) }
