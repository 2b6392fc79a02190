package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/internal/startstop"
)

// HeartbeatConfig configures a process's heartbeat.
type HeartbeatConfig struct {
	Store smp.HeartbeatStore
	// ID names this process (default: a random one).
	ID string
	// Services is the process's --services list, recorded for operators.
	Services string
	// EngineUp reports whether this process's dispatch engine runs and
	// its workers loop (nil: no engine here).
	EngineUp func() bool
	// Connections counts the technicians connected to this process.
	Connections func() int
	// Interval between beats (default 5 s); a heartbeat expires after
	// three intervals without a beat.
	Interval   time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Heartbeat writes this process's liveness to shared state every Interval
// and reads everyone's: dispatch_engine_up (runbook INC-001) is 1 in every
// process while some process's engine beat within three intervals, so the
// metric, /health and /admin/stats tell the truth wherever they are read,
// including when the engine's own process is dead.
type Heartbeat struct {
	startstop.Base
	cfg HeartbeatConfig
	log *slog.Logger
}

// Cluster is what the live heartbeats say.
type Cluster struct {
	Processes            []*smp.ProcessHeartbeat `json:"processes"`
	EnginesUp            int                     `json:"engines_up"`
	WebSocketConnections int64                   `json:"websocket_connections"`
}

// NewHeartbeat returns the heartbeat and registers its metrics.
func NewHeartbeat(cfg HeartbeatConfig) (*Heartbeat, error) {
	if cfg.Store == nil {
		return nil, smp.Errorf(smp.EINVALID, "heartbeat: missing store")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ID == "" {
		cfg.ID = "smp-" + uuid.NewString()[:8]
	}
	h := &Heartbeat{cfg: cfg, log: cfg.Logger.With("service", "heartbeat")}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(heartbeatCollector{h}); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// ID is this process's heartbeat id.
func (h *Heartbeat) ID() string { return h.cfg.ID }

// TTL is how long a beat counts.
func (h *Heartbeat) TTL() time.Duration { return 3 * h.cfg.Interval }

// Start beats once, then every Interval. A failed beat is logged, not
// fatal: the process's checks report the database.
func (h *Heartbeat) Start(ctx context.Context) error {
	ctx, ok := h.StartInit(ctx)
	if !ok {
		return nil
	}
	h.beat(ctx)
	h.Go(func() {
		t := time.NewTicker(h.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				h.beat(ctx)
			}
		}
	})
	h.MarkStarted()
	return nil
}

// Stop ends the beats and removes this process's heartbeat, so a cleanly
// stopped engine counts as down at once.
func (h *Heartbeat) Stop(ctx context.Context) error {
	was := h.Running()
	if err := h.Base.Stop(ctx); err != nil {
		return err
	}
	if was {
		if err := h.cfg.Store.RemoveProcessHeartbeat(ctx, h.cfg.ID); err != nil {
			h.log.Warn("heartbeat: could not remove ours; it expires by itself", "err", err)
		}
	}
	return nil
}

// Beat records this process's state now (Start does it every Interval).
func (h *Heartbeat) Beat(ctx context.Context) error {
	now := h.cfg.Now()
	hb := &smp.ProcessHeartbeat{ID: h.cfg.ID, Services: h.cfg.Services, BeatAt: now, ExpiresAt: now.Add(h.TTL())}
	if h.cfg.EngineUp != nil {
		hb.EngineUp = h.cfg.EngineUp()
	}
	if h.cfg.Connections != nil {
		hb.WebSocketConnections = int64(h.cfg.Connections())
	}
	return h.cfg.Store.BeatProcess(ctx, hb)
}

func (h *Heartbeat) beat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Interval)
	defer cancel()
	if err := h.Beat(ctx); err != nil && ctx.Err() == nil {
		h.log.Warn("heartbeat failed", "err", err)
	}
}

// Cluster reads the live heartbeats.
func (h *Heartbeat) Cluster(ctx context.Context) (Cluster, error) {
	hbs, err := h.cfg.Store.FindProcessHeartbeats(ctx, h.cfg.Now())
	if err != nil {
		return Cluster{}, err
	}
	// Ours is known now, not as of the last beat (a stopped engine is
	// down at once in its own process).
	if h.Running() {
		i := slices.IndexFunc(hbs, func(hb *smp.ProcessHeartbeat) bool { return hb.ID == h.cfg.ID })
		if i < 0 {
			hbs = append(hbs, &smp.ProcessHeartbeat{ID: h.cfg.ID, Services: h.cfg.Services})
			i = len(hbs) - 1
		}
		cur := *hbs[i]
		cur.EngineUp = h.cfg.EngineUp != nil && h.cfg.EngineUp()
		if h.cfg.Connections != nil {
			cur.WebSocketConnections = int64(h.cfg.Connections())
		}
		hbs[i] = &cur
	}
	c := Cluster{Processes: hbs}
	for _, hb := range hbs {
		if hb.EngineUp {
			c.EnginesUp++
		}
		c.WebSocketConnections += hb.WebSocketConnections
	}
	return c, nil
}

// CheckEngine is /health's view of the engine from any process: an error
// when no process's engine beat within the TTL.
func (h *Heartbeat) CheckEngine(ctx context.Context) error {
	c, err := h.Cluster(ctx)
	if err != nil {
		return fmt.Errorf("reading engine heartbeats: %w", err)
	}
	if c.EnginesUp == 0 {
		return errors.New("no dispatch engine is running: no engine heartbeat in the last " + h.TTL().String())
	}
	return nil
}

// Aggregate fills the cluster-wide parts of s (engine up anywhere, every
// process's WebSocket connections) from the heartbeats.
func (h *Heartbeat) Aggregate(ctx context.Context, s *Stats) error {
	c, err := h.Cluster(ctx)
	if err != nil {
		return err
	}
	s.EngineUp = c.EnginesUp > 0
	s.EnginesUp = c.EnginesUp
	s.Processes = len(c.Processes)
	s.WebSocketConnections = int(c.WebSocketConnections)
	return nil
}

var (
	upDesc = prometheus.NewDesc("dispatch_engine_up",
		"1 while some process's dispatch engine heartbeat is fresh (runbook INC-001); exported by every process.", nil, nil)
	enginesDesc   = prometheus.NewDesc("smp_dispatch_engines_live", "Dispatch engines with a fresh heartbeat.", nil, nil)
	processesDesc = prometheus.NewDesc("smp_processes_live", "smp processes with a fresh heartbeat.", nil, nil)
)

type heartbeatCollector struct{ h *Heartbeat }

func (c heartbeatCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- upDesc
	ch <- enginesDesc
	ch <- processesDesc
}

// Collect reads the heartbeats at scrape. If they cannot be read the
// series are missing (the absence has its own alert), never a false 0 or 1.
func (c heartbeatCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cl, err := c.h.Cluster(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(upDesc, err)
		return
	}
	up := 0.0
	if cl.EnginesUp > 0 {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(enginesDesc, prometheus.GaugeValue, float64(cl.EnginesUp))
	ch <- prometheus.MustNewConstMetric(processesDesc, prometheus.GaugeValue, float64(len(cl.Processes)))
}
