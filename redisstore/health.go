package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Memory is what INFO memory and INFO stats say.
type Memory struct {
	UsedBytes int64
	MaxBytes  int64 // 0: no limit
	// SystemBytes is the host's memory (total_system_memory; 0 if Redis
	// does not say).
	SystemBytes int64
	// UsedPercent is of MaxBytes, or of SystemBytes without a limit (Redis
	// then grows until the host runs out, so that is what "full" means).
	UsedPercent    float64
	Policy         string
	EvictedKeys    int64
	KeyspaceHits   int64
	KeyspaceMisses int64
}

func infoFields(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// Memory reads the runbook's INC-004 figures from INFO.
func (s *Store) Memory(ctx context.Context) (Memory, error) {
	raw, err := s.rdb.Info(ctx, "memory", "stats").Result()
	if err != nil {
		return Memory{}, wrap("info", err)
	}
	f := infoFields(raw)
	num := func(k string) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
	m := Memory{UsedBytes: num("used_memory"), MaxBytes: num("maxmemory"), SystemBytes: num("total_system_memory"), Policy: f["maxmemory_policy"],
		EvictedKeys: num("evicted_keys"), KeyspaceHits: num("keyspace_hits"), KeyspaceMisses: num("keyspace_misses")}
	switch {
	case m.MaxBytes > 0:
		m.UsedPercent = 100 * float64(m.UsedBytes) / float64(m.MaxBytes)
	case m.SystemBytes > 0:
		m.UsedPercent = 100 * float64(m.UsedBytes) / float64(m.SystemBytes)
	}
	return m, nil
}

// Check is the /health check: an error when Redis does not answer, is
// out of memory, or is above 90 % of maxmemory.
func (s *Store) Check(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return wrap("ping", err)
	}
	m, err := s.Memory(ctx)
	if err != nil {
		return err
	}
	if m.MaxBytes > 0 && m.UsedPercent > 90 {
		return fmt.Errorf("redis memory at %.0f%% of maxmemory (%s); writes may be refused", m.UsedPercent, m.Policy)
	}
	return nil
}

// collector exports INFO figures at scrape time.
type collector struct{ s *Store }

// NewCollector exports redis_memory_used_percent (runbook INC-004) and
// the eviction and keyspace counters.
func NewCollector(s *Store) prometheus.Collector { return &collector{s} }

var (
	usedPctDesc = prometheus.NewDesc("redis_memory_used_percent", "Redis used_memory as a percentage of maxmemory, or of the host's memory when maxmemory is unset (see redis_maxmemory_configured).", nil, nil)
	maxSetDesc  = prometheus.NewDesc("redis_maxmemory_configured", "1 when Redis has a maxmemory limit; 0 when it has none (it grows until the host runs out: set maxmemory and the noeviction policy, docs/redis.md).", nil, nil)
	policyDesc  = prometheus.NewDesc("smp_redis_maxmemory_policy", "Redis's maxmemory-policy, as a label (1); SMP needs noeviction.", []string{"policy"}, nil)
	usedDesc    = prometheus.NewDesc("smp_redis_memory_used_bytes", "Redis used_memory.", nil, nil)
	evictedDesc = prometheus.NewDesc("smp_redis_evicted_keys_total", "Keys Redis evicted (INFO stats evicted_keys).", nil, nil)
	missDesc    = prometheus.NewDesc("smp_redis_keyspace_misses_total", "Redis keyspace misses (INFO stats).", nil, nil)
	hitDesc     = prometheus.NewDesc("smp_redis_keyspace_hits_total", "Redis keyspace hits (INFO stats).", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{usedPctDesc, maxSetDesc, policyDesc, usedDesc, evictedDesc, missDesc, hitDesc, commandsDesc, roundTripsDesc} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counts := c.s.Counts() // before the INFO below, which it would count
	for name, n := range counts.ByName {
		ch <- prometheus.MustNewConstMetric(commandsDesc, prometheus.CounterValue, float64(n), name)
	}
	ch <- prometheus.MustNewConstMetric(roundTripsDesc, prometheus.CounterValue, float64(counts.RoundTrips))
	m, err := c.s.Memory(context.Background())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(usedPctDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(usedPctDesc, prometheus.GaugeValue, m.UsedPercent)
	set := 0.0
	if m.MaxBytes > 0 {
		set = 1
	}
	ch <- prometheus.MustNewConstMetric(maxSetDesc, prometheus.GaugeValue, set)
	if m.Policy != "" {
		ch <- prometheus.MustNewConstMetric(policyDesc, prometheus.GaugeValue, 1, m.Policy)
	}
	ch <- prometheus.MustNewConstMetric(usedDesc, prometheus.GaugeValue, float64(m.UsedBytes))
	ch <- prometheus.MustNewConstMetric(evictedDesc, prometheus.CounterValue, float64(m.EvictedKeys))
	ch <- prometheus.MustNewConstMetric(missDesc, prometheus.CounterValue, float64(m.KeyspaceMisses))
	ch <- prometheus.MustNewConstMetric(hitDesc, prometheus.CounterValue, float64(m.KeyspaceHits))
}
