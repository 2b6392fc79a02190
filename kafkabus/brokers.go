package kafkabus

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BrokerState is one configured broker's answer to a probe.
type BrokerState struct {
	Addr string `json:"addr"`
	Up   bool   `json:"up"`
	Err  string `json:"error,omitempty"`
}

// Brokers probes every configured broker with an ApiVersions request (the
// runbook's kafka-broker-api-versions.sh) within timeout.
func (b *Bus) Brokers(ctx context.Context, timeout time.Duration) []BrokerState {
	seeds := b.producer().SeedBrokers()
	out := make([]BrokerState, len(b.cfg.Brokers))
	var wg sync.WaitGroup
	for i, addr := range b.cfg.Brokers {
		out[i].Addr = addr
		if i >= len(seeds) {
			out[i].Err = "not a seed broker"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			_, err := seeds[i].Request(ctx, kmsg.NewPtrApiVersionsRequest())
			out[i].Up = err == nil
			if err != nil {
				out[i].Err = err.Error()
			}
		}()
	}
	wg.Wait()
	return out
}

// BrokerCollector exports kafka_broker_up{cluster,broker} and
// kafka_broker_down{cluster}, the runbook's INC-006 trigger, probing at
// scrape time.
type BrokerCollector struct {
	bus     *Bus
	cluster string
}

// NewBrokerCollector returns the collector; cluster labels the series
// ("prod" in the runbook).
func NewBrokerCollector(b *Bus, cluster string) *BrokerCollector {
	return &BrokerCollector{bus: b, cluster: cluster}
}

var (
	brokerUpDesc   = prometheus.NewDesc("kafka_broker_up", "1 if the broker answered an ApiVersions probe.", []string{"cluster", "broker"}, nil)
	brokerDownDesc = prometheus.NewDesc("kafka_broker_down", "Configured brokers that did not answer a probe.", []string{"cluster"}, nil)
)

// Describe implements prometheus.Collector.
func (c *BrokerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- brokerUpDesc
	ch <- brokerDownDesc
}

// Collect implements prometheus.Collector.
func (c *BrokerCollector) Collect(ch chan<- prometheus.Metric) {
	down := 0
	for _, s := range c.bus.Brokers(context.Background(), 2*time.Second) {
		v := 1.0
		if !s.Up {
			v = 0
			down++
		}
		ch <- prometheus.MustNewConstMetric(brokerUpDesc, prometheus.GaugeValue, v, c.cluster, s.Addr)
	}
	ch <- prometheus.MustNewConstMetric(brokerDownDesc, prometheus.GaugeValue, float64(down), c.cluster)
}
