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
