package kafkabus_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"smp"
	"smp/bustest"
	"smp/kafkabus"
)

// newCluster starts an in-process 3-broker Kafka (kfake).
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func open(t *testing.T, c *kfake.Cluster, cfg kafkabus.Config) *kafkabus.Bus {
	t.Helper()
	cfg.Brokers = c.ListenAddrs()
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = 10 * time.Millisecond
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 6 * time.Second
	}
	b, err := kafkabus.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	bustest.Run(t, bustest.Features{MaxAttempts: 3}, func(t *testing.T) bustest.Connect {
		c := newCluster(t)
		return func(t *testing.T) smp.EventBus { return open(t, c, kafkabus.Config{}) }
	})
}
