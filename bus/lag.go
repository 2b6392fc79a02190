package bus

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
)

// Subscription is a consumer group and the topics it reads.
type Subscription struct {
	Group  string
	Topics []string
}

// LagCollector exports the lag of subscriptions on any smp.EventBus under
// the name the runbook's alerts use, kafka_consumergroup_lag; it computes
// it at scrape time (so it is never stale).
type LagCollector struct {
	bus     smp.EventBus
	subs    []Subscription
	timeout time.Duration
}

var lagDesc = prometheus.NewDesc("kafka_consumergroup_lag",
	"Messages of a topic partition the consumer group has not committed yet.", []string{"group", "topic", "partition"}, nil)

// NewLagCollector returns a collector of subs' lag on bus.
func NewLagCollector(bus smp.EventBus, subs ...Subscription) *LagCollector {
	return &LagCollector{bus: bus, subs: subs, timeout: 3 * time.Second}
}

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

// Collect implements prometheus.Collector. A bus that cannot answer
// yields an invalid metric (the scrape shows the error) rather than zeros.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, s := range c.subs {
		lag, err := c.bus.Lag(ctx, s.Group, s.Topics)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(lagDesc, err)
			continue
		}
		for topic, parts := range lag {
			for p, n := range parts {
				ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(n), s.Group, topic, strconv.Itoa(p))
			}
		}
	}
}

// Total returns the sum of subs' lag, as a test or a check reads it.
func Total(ctx context.Context, bus smp.EventBus, group string, topics ...string) (int64, error) {
	lag, err := bus.Lag(ctx, group, topics)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, parts := range lag {
		for _, v := range parts {
			n += v
		}
	}
	return n, nil
}

// DeadLetterCollector exports smp_bus_dead_letters{topic}: the messages
// kept on each topic's dead-letter topic (<topic>.dlq), computed at
// scrape. Replaying a dead letter leaves it there (the log is append-only),
// so a rise, not the level, is what accumulates.
type DeadLetterCollector struct {
	admin   smp.BusAdmin
	topics  []string
	timeout time.Duration
}

var deadDesc = prometheus.NewDesc("smp_bus_dead_letters",
	"Messages on a topic's dead-letter topic (<topic>.dlq): events a consumer group gave up on (runbook INC-004, INC-007).", []string{"topic"}, nil)

// NewDeadLetterCollector returns a collector of the dead letters of topics.
func NewDeadLetterCollector(admin smp.BusAdmin, topics ...string) *DeadLetterCollector {
	return &DeadLetterCollector{admin: admin, topics: topics, timeout: 3 * time.Second}
}

// Describe implements prometheus.Collector.
func (c *DeadLetterCollector) Describe(ch chan<- *prometheus.Desc) { ch <- deadDesc }

// Collect implements prometheus.Collector.
func (c *DeadLetterCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, t := range c.topics {
		dlq := t + smp.DLQSuffix
		parts, err := c.admin.Offsets(ctx, "smp-dead-letter-count", []string{dlq})
		if err != nil {
			ch <- prometheus.NewInvalidMetric(deadDesc, err)
			continue
		}
		var n int64
		for _, p := range parts {
			n += p.End - p.Start
		}
		ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(n), dlq)
	}
}
