package replication

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"smp"
)

// Metrics counts what the agents of a process apply on their targets:
// smp_replication_records_total{region,table,result} with result applied
// (written) or duplicate (a version already there: at least once on the
// wire, applied once).
type Metrics struct {
	records *prometheus.CounterVec
}

// NewMetrics registers the agents' counters on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_replication_records_total",
		Help: "Master-data records the replication agents handled on their target, by path (region), table and result (applied, duplicate)."},
		[]string{"region", "table", "result"})}
	if reg != nil {
		if err := reg.Register(m.records); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) record(path, table string, applied bool) {
	if m == nil {
		return
	}
	result := "duplicate"
	if applied {
		result = "applied"
	}
	m.records.WithLabelValues(path, table, result).Inc()
}

// Count returns how many records of path were applied or duplicate.
func (m *Metrics) Count(path, result string) float64 {
	if m == nil {
		return 0
	}
	var n float64
	for _, t := range smp.MasterTables {
		c, err := m.records.GetMetricWithLabelValues(path, t.Name, result)
		if err == nil {
			n += counterValue(c)
		}
	}
	return n
}

// PathLister reads the paths of one region's store.
type PathLister interface {
	FindReplicationPaths(ctx context.Context) ([]smp.ReplicationPath, error)
}

// HopLister reads the pairs a region reaches through others (a PathLister
// that is one has them exported too).
type HopLister interface {
	FindReplicationHops(ctx context.Context) ([]smp.ReplicationHop, error)
}

// LagCollector exports, for every path kept in its stores (each target
// region's), region_replication_lag_seconds{region="<source>-to-<target>"}:
// now minus the source time of the newest heartbeat the target received,
// so it rises while a path is cut or paused even when no master data
// changes. A pair reached only through other regions (asia → china → us,
// without a path asia-to-us) is exported the same way,
// region="asia-to-us", from the freshest heartbeat of asia that reached us
// by any way (HopLag); a pair with a path of its own reports the path's.
// And smp_replication_path_paused{region,cause} (1 while paused;
// cause schema when the target is behind its source's schema, operator
// otherwise).
type LagCollector struct {
	now    func() time.Time
	stores []PathLister
}

// NewLagCollector returns the collector; now is the clock.
func NewLagCollector(now func() time.Time, stores ...PathLister) *LagCollector {
	if now == nil {
		now = time.Now
	}
	return &LagCollector{now: now, stores: stores}
}

var (
	lagDesc = prometheus.NewDesc("region_replication_lag_seconds",
		"Replication lag of a path between regions (region is <source>-to-<target>): seconds since the source wrote the newest heartbeat its target received (runbook INC-012).",
		[]string{"region"}, nil)
	pausedDesc = prometheus.NewDesc("smp_replication_path_paused",
		"1 while a replication path is paused, by cause: schema (the target is behind its source's schema; runbook INC-012 scenario 3) or operator.",
		[]string{"region", "cause"}, nil)
)

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- pausedDesc
}

// Collect implements prometheus.Collector.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	seen := map[string]bool{}
	now := c.now()
	for _, st := range c.stores {
		paths, err := st.FindReplicationPaths(ctx)
		if err != nil {
			continue
		}
		for _, p := range paths {
			if seen[p.Path] {
				continue
			}
			seen[p.Path] = true
			ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, Lag(p, now).Seconds(), p.Path)
			schema, operator := 0.0, 0.0
			if p.Paused && p.SchemaNeeded > 0 {
				schema = 1
			} else if p.Paused {
				operator = 1
			}
			ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, schema, p.Path, "schema")
			ch <- prometheus.MustNewConstMetric(pausedDesc, prometheus.GaugeValue, operator, p.Path, "operator")
		}
	}
	for _, st := range c.stores {
		hl, ok := st.(HopLister)
		if !ok {
			continue
		}
		hops, err := hl.FindReplicationHops(ctx)
		if err != nil {
			continue
		}
		for path, lag := range HopLags(hops, now) {
			if !seen[path] {
				seen[path] = true
				ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, lag.Seconds(), path)
			}
		}
	}
}

// HopLags is the lag of each pair reached through other regions, by path:
// since the freshest heartbeat over its ways (never negative).
func HopLags(hops []smp.ReplicationHop, now time.Time) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, h := range hops {
		lag := max(now.Sub(h.HeartbeatAt), 0)
		if cur, ok := out[h.Path]; !ok || lag < cur {
			out[h.Path] = lag
		}
	}
	return out
}

// Lag is a path's lag at now: since its newest heartbeat (never negative).
func Lag(p smp.ReplicationPath, now time.Time) time.Duration {
	return max(now.Sub(p.HeartbeatAt), 0)
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
