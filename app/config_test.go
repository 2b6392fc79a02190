package app

import (
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := new(DefaultConfig()).Validate(); err != nil {
		t.Fatalf("the default configuration: %v", err)
	}
	for _, tt := range []struct {
		name   string
		mutate func(*Config)
	}{
		{"NoAddr", func(c *Config) { c.Addr = "" }},
		{"NoDataDir", func(c *Config) { c.DataDir = "" }},
		{"ShortInvitationTTL", func(c *Config) { c.InvitationTTL = time.Millisecond }},
		{"RetryAfter", func(c *Config) { c.RetryAfter = 0 }},
		{"Backpressure", func(c *Config) { c.BackpressureThreshold = 0 }},
		{"Partitions", func(c *Config) { c.Partitions = 2000 }},
		{"UnknownService", func(c *Config) { c.Services = "api,billing" }},
		{"SplitWithoutSharedState", func(c *Config) { c.Services = ServiceAPI }},
		{"BrokerWithoutPort", func(c *Config) { c.KafkaBrokers = "kafka-0" }},
		{"Replication", func(c *Config) { c.KafkaReplication = -3 }},
		{"NegativeReadTimeout", func(c *Config) { c.HTTPReadTimeout = -time.Second }},
		{"NegativeConnsPerIP", func(c *Config) { c.HTTPMaxConnsPerIP = -1 }},
		{"NegativeRetention", func(c *Config) { c.RetentionOutbox = -time.Hour }},
		{"ProcessedShorterThanBus", func(c *Config) { c.RetentionProcessed = time.Hour }},
		{"ProcessedPrunedBusKept", func(c *Config) { c.RetentionBus = 0 }},
		{"Region", func(c *Config) { c.Region = "Asia-Pacific" }},
		{"MasterRegion", func(c *Config) { c.MasterRegion = "us east" }},
		{"ReadModelBackend", func(c *Config) { c.ReadModelBackend = "solr" }},
		{"ESWithoutURL", func(c *Config) { c.ReadModelBackend = ReadModelElasticsearch }},
		{"ESSettingOnBleve", func(c *Config) { c.ES.URL = "http://es:9200" }},
		{"ESPasswordOnBleve", func(c *Config) { c.ES.Password = "pw" }},
		{"ESURLNotHTTP", func(c *Config) { c.ReadModelBackend, c.ES.URL = ReadModelElasticsearch, "es:9200" }},
		{"ESCredentialsInURL", func(c *Config) { c.ReadModelBackend, c.ES.URL = ReadModelElasticsearch, "https://smp:pw@es:9200" }},
		{"ESKeyAndPassword", func(c *Config) {
			c.ReadModelBackend, c.ES = ReadModelElasticsearch, ESConfig{URL: "https://es:9200", Username: "smp", Password: "pw", APIKey: "k"}
		}},
		{"ESUserWithoutPassword", func(c *Config) {
			c.ReadModelBackend, c.ES = ReadModelElasticsearch, ESConfig{URL: "https://es:9200", Username: "smp"}
		}},
		{"ESCACertOnHTTP", func(c *Config) {
			c.ReadModelBackend, c.ES = ReadModelElasticsearch, ESConfig{URL: "http://es:9200", CACertFile: "ca.pem"}
		}},
		{"ESRefresh", func(c *Config) {
			c.ReadModelBackend, c.ES = ReadModelElasticsearch, ESConfig{URL: "http://es:9200", Refresh: "true"}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := DefaultConfig()
			tt.mutate(&c)
			if err := c.Validate(); !IsConfigError(err) {
				t.Fatalf("Validate() = %v, want a *ConfigError", err)
			}
		})
	}
	es := DefaultConfig()
	es.ReadModelBackend, es.ES = ReadModelElasticsearch, ESConfig{URL: "https://es-1:9200,https://es-2:9200", APIKey: "k", CACertFile: "ca.pem", Refresh: "false"}
	if err := es.Validate(); err != nil {
		t.Errorf("a valid Elasticsearch configuration: %v", err)
	}
	c := DefaultConfig()
	c.Services, c.MySQLDSN, c.RedisAddr = "api, outbox-relay", "dsn", "127.0.0.1:6379"
	set, err := c.ServiceSet()
	if err != nil || len(set) != 2 || !set[ServiceAPI] || !set[ServiceOutboxRelay] {
		t.Fatalf("ServiceSet() = %v, %v", set, err)
	}
}

func TestReplicationSources(t *testing.T) {
	t.Parallel()
	c := Config{Region: "china", ReplicateFrom: "global=k1:9092,k2:9092; asia=file:/data/asia/events.db"}
	got, err := c.ReplicationSources()
	if err != nil || len(got) != 2 || got[0].Region != "global" || len(got[0].Brokers) != 2 || got[1].LogPath != "/data/asia/events.db" {
		t.Fatalf("sources %+v %v", got, err)
	}
	for _, bad := range []string{"global", "Global=k:1", "china=k:1", "global=k:1;global=k:2", "global=nohostport", "global="} {
		c.ReplicateFrom = bad
		if _, err := c.ReplicationSources(); !IsConfigError(err) {
			t.Errorf("%q: %v, want a configuration error", bad, err)
		}
	}
}
