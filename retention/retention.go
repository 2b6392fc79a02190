// Package retention prunes what SMP keeps only for a while: published
// outbox events, the embedded event log's consumed messages, the consumer
// groups' processed-event records, the dispatch trace, processed provider
// events and expired Idempotency-Keys. Audit entries and money rows are
// kept unless a policy says otherwise.
//
// One process prunes at a time: each run takes the lease "lock:retention"
// (smp.Locker, the database's leases table) for Every, so the other
// processes' runs within that interval find it held and skip. Each table
// is pruned in batches of Batch rows (short transactions), at most
// MaxBatches per run, so a backlog drains over several runs without
// holding the database.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/internal/startstop"
)

// LeaseKey is the lease a run holds.
const LeaseKey = "lock:retention"

// Policy keeps a table's rows for Keep (0: kept for ever).
type Policy struct {
	Table string // an smp.Prune… constant
	Keep  time.Duration
}

// BusPruner is the embedded event log (sqlbus.Bus); Kafka keeps its own
// retention.
type BusPruner interface {
	Prune(ctx context.Context, before time.Time, limit int) (int64, error)
}

// Config of the pruning job.
type Config struct {
	Store smp.PruneStore
	// Bus, when set, is pruned under the policy of smp.PruneBus.
	Bus      BusPruner
	Policies []Policy
	Locker   smp.Locker
	// Owner names this process in the lease.
	Owner string
	// Every is how often a run starts (default 1 min); Batch the rows per
	// delete (default 1000); MaxBatches the deletes per table and run
	// (default 100).
	Every      time.Duration
	Batch      int
	MaxBatches int
	Now        func() time.Time
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Service runs the pruning job.
type Service struct {
	startstop.Base
	cfg    Config
	pruned *prometheus.CounterVec
	runs   *prometheus.CounterVec
}

// New checks cfg and registers the metrics smp_retention_pruned_total
// {table} and smp_retention_runs_total{outcome}.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Locker == nil {
		return nil, fmt.Errorf("retention: Store and Locker are required")
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 1000
	}
	if cfg.MaxBatches <= 0 {
		cfg.MaxBatches = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Owner == "" {
		cfg.Owner = fmt.Sprintf("retention-%d", time.Now().UnixNano())
	}
	for _, p := range cfg.Policies {
		if p.Keep < 0 {
			return nil, fmt.Errorf("retention: %s: negative retention %v", p.Table, p.Keep)
		}
	}
	s := &Service{cfg: cfg}
	s.pruned = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_retention_pruned_total",
		Help: "Rows deleted by the retention job, by table."}, []string{"table"})
	s.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_retention_runs_total",
		Help: "Retention runs by outcome: done, skipped (another process held the lease), failed."}, []string{"outcome"})
	for _, p := range cfg.Policies {
		if p.Keep > 0 {
			s.pruned.WithLabelValues(p.Table)
		}
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.pruned, s.runs} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Start runs the job every Every until Stop; idempotent.
func (s *Service) Start(ctx context.Context) error {
	ctx, ok := s.StartInit(ctx)
	if !ok {
		return nil
	}
	s.Go(func() {
		t := time.NewTicker(s.cfg.Every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if _, err := s.RunOnce(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Warn("retention: run failed; the next run goes on", "err", err)
			}
		}
	})
	s.MarkStarted()
	return nil
}

// Result is what one run deleted, by table; Skipped when another process
// held the lease.
type Result struct {
	Pruned  map[string]int64
	Skipped bool
}

// RunOnce prunes every table whose policy keeps rows for a while, if this
// process takes (or still holds) the lease.
func (s *Service) RunOnce(ctx context.Context) (Result, error) {
	res := Result{Pruned: map[string]int64{}}
	ok, err := s.cfg.Locker.TryLock(ctx, LeaseKey, s.cfg.Owner, s.cfg.Every)
	if err != nil {
		s.runs.WithLabelValues("failed").Inc()
		return res, fmt.Errorf("retention: lease: %w", err)
	}
	if !ok {
		s.runs.WithLabelValues("skipped").Inc()
		res.Skipped = true
		return res, nil
	}
	now := s.cfg.Now()
	for _, p := range s.cfg.Policies {
		if p.Keep <= 0 || (p.Table == smp.PruneBus && s.cfg.Bus == nil) {
			continue
		}
		n, err := s.prune(ctx, p.Table, now.Add(-p.Keep))
		res.Pruned[p.Table] = n
		if err != nil {
			s.runs.WithLabelValues("failed").Inc()
			return res, fmt.Errorf("retention: %s: %w", p.Table, err)
		}
	}
	s.runs.WithLabelValues("done").Inc()
	var total int64
	for _, n := range res.Pruned {
		total += n
	}
	if total > 0 {
		s.cfg.Logger.Info("retention: pruned", "rows", total, "by_table", res.Pruned)
	}
	return res, nil
}

// prune deletes table's rows older than before, batch after batch, until
// a batch comes back short or MaxBatches ran.
func (s *Service) prune(ctx context.Context, table string, before time.Time) (int64, error) {
	var total int64
	for range s.cfg.MaxBatches {
		var n int64
		var err error
		if table == smp.PruneBus {
			n, err = s.cfg.Bus.Prune(ctx, before, s.cfg.Batch)
		} else {
			n, err = s.cfg.Store.Prune(ctx, table, before, s.cfg.Batch)
		}
		total += n
		s.pruned.WithLabelValues(table).Add(float64(n))
		if err != nil || n < int64(s.cfg.Batch) {
			return total, err
		}
	}
	return total, nil
}
