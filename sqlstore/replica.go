package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// replicaMonitor measures replica lag with a heartbeat row (written on the
// primary, read on the replica: it measures what users would see, whether
// the SQL thread is stopped, blocked or the replica is down) and decides
// where lag-tolerant reads go. This is the runbook's INC-003 option A
// (route reads to the primary) done automatically.
type replicaMonitor struct {
	db  *DB
	cfg Config

	mu          sync.Mutex
	lag         time.Duration
	lastOK      time.Time
	reachable   bool
	onReplica   bool
	decided     bool // a first routing decision was made
	healthyRuns int

	lagGauge  prometheus.Gauge
	onPrimary prometheus.Gauge
	switches  *prometheus.CounterVec

	cancel context.CancelFunc
	done   chan struct{}
}

// healthyRunsToReturn: consecutive healthy checks before reads go back.
const healthyRunsToReturn = 3

func newReplicaMonitor(db *DB, cfg Config) (*replicaMonitor, error) {
	m := &replicaMonitor{db: db, cfg: cfg, lastOK: cfg.Now(),
		lagGauge: prometheus.NewGauge(prometheus.GaugeOpts{Name: "mysql_replica_lag_seconds",
			Help: "How far the MySQL replica is behind the primary (heartbeat age); grows while the replica does not answer (runbook INC-003)."}),
		onPrimary: prometheus.NewGauge(prometheus.GaugeOpts{Name: "smp_mysql_reads_on_primary",
			Help: "1 while lag-tolerant reads are routed to the primary because the replica lags or is unreachable."}),
		switches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_mysql_read_route_switches_total",
			Help: "Times reads moved between replica and primary, by destination."}, []string{"to"}),
	}
	m.onPrimary.Set(1)
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{m.lagGauge, m.onPrimary, m.switches} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	m.check(ctx) // decide before the first read
	go m.run(ctx)
	return m, nil
}

func (m *replicaMonitor) stop() {
	m.cancel()
	<-m.done
}

func (m *replicaMonitor) healthy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.onReplica
}

func (m *replicaMonitor) status() (time.Duration, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lag, m.reachable
}

func (m *replicaMonitor) run(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.cfg.LagInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.check(ctx)
		}
	}
}

func (m *replicaMonitor) check(ctx context.Context) {
	timeout := max(m.cfg.LagInterval, time.Second)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	_, werr := m.db.write.ExecContext(hctx, `UPDATE replication_heartbeat SET ts = UNIX_TIMESTAMP(NOW(6)) WHERE id = 1`)
	cancel()
	if werr != nil && ctx.Err() == nil {
		m.cfg.Logger.Warn("mysql: heartbeat write on the primary failed", "err", werr)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	var age sql.NullFloat64
	err := m.db.read.QueryRowContext(rctx, `SELECT UNIX_TIMESTAMP(NOW(6)) - ts FROM replication_heartbeat WHERE id = 1`).Scan(&age)
	cancel()
	if ctx.Err() != nil {
		return
	}
	now := m.cfg.Now()

	m.mu.Lock()
	defer m.mu.Unlock()
	m.reachable = err == nil && age.Valid
	if m.reachable {
		m.lag = time.Duration(max(0, age.Float64) * float64(time.Second))
		m.lastOK = now
	} else {
		// Unknown is not zero: count the time since the last answer.
		m.lag += now.Sub(m.lastOK)
		m.lastOK = now
	}
	m.lagGauge.Set(m.lag.Seconds())
	good := m.reachable && m.lag <= m.cfg.ReplicaLagThreshold
	defer func() { m.decided = true }()
	switch {
	case m.onReplica && !good:
		m.onReplica, m.healthyRuns = false, 0
		m.onPrimary.Set(1)
		m.switches.WithLabelValues("primary").Inc()
		m.cfg.Logger.Warn("mysql: replica lags or is unreachable; reads moved to the primary",
			"replica_lag_seconds", m.lag.Seconds(), "threshold_seconds", m.cfg.ReplicaLagThreshold.Seconds(), "err", err)
	case !m.onReplica && good:
		// At start a healthy replica is used at once; after a fall-back
		// it must stay healthy for a few checks.
		if m.healthyRuns++; m.healthyRuns >= healthyRunsToReturn || !m.decided {
			m.onReplica = true
			m.onPrimary.Set(0)
			m.switches.WithLabelValues("replica").Inc()
			m.cfg.Logger.Info("mysql: replica healthy; reads back on the replica", "replica_lag_seconds", m.lag.Seconds())
		}
	case !good:
		m.healthyRuns = 0
	}
}
