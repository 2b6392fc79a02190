package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"
)

// Config is the platform's configuration, from flags and SMP_* variables.
type Config struct {
	Addr                  string
	DataDir               string
	MySQLDSN              string
	MySQLReadDSN          string
	ReplicaLagThreshold   time.Duration
	MySQLMaxConns         int
	RedisAddr             string
	RedisPrefix           string
	RedisPoolSize         int
	Services              string
	AdminToken            string
	LogLevel              string
	LogFormat             string
	InvitationTTL         time.Duration
	RetryAfter            time.Duration
	StuckAfter            time.Duration
	BackpressureThreshold int64
	Partitions            int
	KafkaBrokers          string
	KafkaReplication      int
	KafkaCluster          string
	PaymentDueAfter       time.Duration
	PaymentRetryBackoff   time.Duration
	InsideURL             string
	WMSURL                string
	BreakerOpenFor        time.Duration
	StatusFromAlerts      bool
	DashboardSampleEvery  time.Duration
	// InsideWebhookSecrets comes from SMP_INSIDE_WEBHOOK_SECRET only (never
	// a flag: flags show in ps), comma-separated while rotating.
	InsideWebhookSecrets string
}

func (c *Config) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8080", "HTTP listen address")
	fs.StringVar(&c.DataDir, "data-dir", "./smp-data", "directory of the embedded database and event log")
	c.registerMySQL(fs)
	fs.StringVar(&c.RedisAddr, "redis-addr", "", "Redis for dispatch queues, invitations, geo index and locks, e.g. 127.0.0.1:6379 (default: in-process)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", "", "prefix for every Redis key (to share one Redis between environments)")
	fs.IntVar(&c.RedisPoolSize, "redis-pool-size", 64, "Redis connections per process")
	fs.StringVar(&c.Services, "services", "all", "what this process runs: all, or a comma list of api, order-svc, dispatch-engine, outbox-relay, integration-svc")
	fs.StringVar(&c.AdminToken, "admin-token", "", "bearer token with the admin role (prefer SMP_ADMIN_TOKEN: flags show in ps)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or text")
	fs.DurationVar(&c.InvitationTTL, "invitation-ttl", 20*time.Second, "how long a dispatch offer stays open")
	fs.DurationVar(&c.RetryAfter, "dispatch-retry-after", 10*time.Second, "wait before retrying an order nobody took")
	fs.DurationVar(&c.StuckAfter, "stuck-after", 5*time.Minute, "an order in 02_dispatching longer than this counts as stuck")
	fs.Int64Var(&c.BackpressureThreshold, "backpressure-threshold", 100, "a city queue longer than this is backpressure")
	fs.IntVar(&c.Partitions, "partitions", 12, "partitions per topic (embedded log; topics created on Kafka)")
	c.registerKafka(fs)
	fs.StringVar(&c.InsideURL, "inside-url", "", "base URL of inside's API (customer info, payment requests)")
	fs.StringVar(&c.WMSURL, "wms-url", "", "base URL of wms's API (stock)")
	fs.DurationVar(&c.BreakerOpenFor, "breaker-open-for", 30*time.Second, "how long an integration's circuit breaker stays open before a half-open probe")
	fs.DurationVar(&c.PaymentRetryBackoff, "payment-retry-backoff", time.Second, "first retry delay of a payment event that failed (doubled per attempt; 5 attempts, then dlq)")
	fs.DurationVar(&c.PaymentDueAfter, "payment-due-after", 15*time.Minute, "a completed order unpaid for longer counts in order_payment_pending_count")
	fs.BoolVar(&c.StatusFromAlerts, "status-from-alerts", true, "let firing alerts (from Alertmanager) degrade their component on the status page")
	fs.DurationVar(&c.DashboardSampleEvery, "dashboard-sample-every", 5*time.Second, "how often the admin dashboard's latency history is sampled")
}

// registerMySQL adds the database flags (serve, demo, migrate, token).
func (c *Config) registerMySQL(fs *flag.FlagSet) {
	fs.StringVar(&c.MySQLDSN, "mysql-dsn", "", "MySQL primary, e.g. user:pass@tcp(host:3306)/smp (default: embedded SQLite in --data-dir)")
	fs.StringVar(&c.MySQLReadDSN, "mysql-read-dsn", "", "MySQL replica for lag-tolerant reads (also MYSQL_READ_DSN)")
	fs.DurationVar(&c.ReplicaLagThreshold, "replica-lag-threshold", 30*time.Second, "above this replica lag, reads move to the primary")
	fs.IntVar(&c.MySQLMaxConns, "mysql-max-conns", 32, "connections per MySQL pool of this process (the event log adds up to 16)")
}

// registerKafka adds the Kafka flags (serve, demo, ctl bus).
func (c *Config) registerKafka(fs *flag.FlagSet) {
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", "", "Kafka seed brokers host:port,... for the event bus (default: the embedded event log)")
	fs.IntVar(&c.KafkaReplication, "kafka-replication-factor", -1, "replication factor of topics SMP creates (-1: the brokers' default; 3 in production)")
	fs.StringVar(&c.KafkaCluster, "kafka-cluster", "prod", "the cluster label of kafka_broker_down")
}

func (c *Config) kafkaBrokers() []string {
	var out []string
	for _, b := range strings.Split(c.KafkaBrokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Addr == "":
		return usageError{"--addr is required"}
	case c.DataDir == "":
		return usageError{"--data-dir is required"}
	case c.InvitationTTL < 100*time.Millisecond:
		return usageError{"--invitation-ttl must be at least 100ms"}
	case c.RetryAfter <= 0 || c.StuckAfter <= 0:
		return usageError{"--dispatch-retry-after and --stuck-after must be positive"}
	case c.BackpressureThreshold <= 0:
		return usageError{"--backpressure-threshold must be positive"}
	case c.Partitions <= 0 || c.Partitions > 1024:
		return usageError{"--partitions must be between 1 and 1024"}
	}
	if _, err := c.services(); err != nil {
		return err
	}
	if err := c.validateKafka(); err != nil {
		return err
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return usageError{"--log-format must be json or text"}
	}
	return nil
}

// Services a process can run.
const (
	ServiceAPI            = "api"             // /v1 for customers and technicians, the technicians' WebSocket
	ServiceOrders         = "order-svc"       // the order intake consumer (01 -> 02)
	ServiceDispatchEngine = "dispatch-engine" // queues, waves, sweeper
	ServiceOutboxRelay    = "outbox-relay"    // outbox -> event bus (one active per cluster)
	ServiceIntegration    = "integration-svc" // inside's payment webhook and the payment event processor
)

var allServices = []string{ServiceAPI, ServiceOrders, ServiceDispatchEngine, ServiceOutboxRelay, ServiceIntegration}

// services parses --services. Every process serves /health, /metrics and
// /admin. Splitting services over processes needs shared state: MySQL and
// Redis.
func (c *Config) services() (map[string]bool, error) {
	out := map[string]bool{}
	if strings.TrimSpace(c.Services) == "all" || c.Services == "" {
		for _, s := range allServices {
			out[s] = true
		}
		return out, nil
	}
	for _, s := range strings.Split(c.Services, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allServices, s) {
			return nil, usageError{fmt.Sprintf("--services: unknown service %q (use all or %s)", s, strings.Join(allServices, ", "))}
		}
		out[s] = true
	}
	if c.MySQLDSN == "" || c.RedisAddr == "" {
		return nil, usageError{"--services other than all needs --mysql-dsn and --redis-addr: the processes share state there (and --kafka-brokers or the log in MySQL carries their events)"}
	}
	return out, nil
}

func (c *Config) validateKafka() error {
	for _, b := range c.kafkaBrokers() {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return usageError{fmt.Sprintf("--kafka-brokers: %q is not host:port", b)}
		}
	}
	if c.KafkaReplication < -1 {
		return usageError{"--kafka-replication-factor must be -1 (the brokers' default) or at least 1"}
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, usageError{fmt.Sprintf("--log-level %q: use debug, info, warn or error", s)}
	}
	return l, nil
}

func (c *Config) logger(w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
