package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp/app"
	"smp/sqlstore"
)

// Config is what smp serve and demo read from flags and SMP_* variables:
// the platform's app.Config and how this process logs.
type Config struct {
	app.Config
	LogLevel  string
	LogFormat string
}

// App is the whole platform in one process.
type App = app.App

// Services a process can run (--services).
const (
	ServiceAPI            = app.ServiceAPI
	ServiceOrders         = app.ServiceOrders
	ServiceDispatchEngine = app.ServiceDispatchEngine
	ServiceOutboxRelay    = app.ServiceOutboxRelay
	ServiceIntegration    = app.ServiceIntegration
	ServiceFraud          = app.ServiceFraud
)

// openStore opens the system of record (migrate, token, demo, ctl events).
func openStore(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*sqlstore.DB, error) {
	return app.OpenStore(ctx, cfg.Config, log, reg)
}

// fromEnv fills what only the environment gives: inside's webhook secrets
// (never a flag: flags show in ps).
func (c *Config) fromEnv() {
	if c.InsideWebhookSecrets == "" {
		c.InsideWebhookSecrets = os.Getenv("SMP_INSIDE_WEBHOOK_SECRET")
	}
	if c.SMSToken == "" {
		c.SMSToken = os.Getenv("SMP_SMS_TOKEN")
	}
	if c.VNPayTmnCode == "" {
		c.VNPayTmnCode = os.Getenv("SMP_VNPAY_TMN_CODE")
	}
	if c.VNPayHashSecrets == "" {
		c.VNPayHashSecrets = os.Getenv("SMP_VNPAY_HASH_SECRET")
	}
}

func (c *Config) register(fs *flag.FlagSet) {
	d := app.DefaultConfig()
	fs.StringVar(&c.Addr, "addr", d.Addr, "HTTP listen address")
	fs.StringVar(&c.ConnectAddr, "connect-addr", "", "listen address of the Kafka Connect worker's REST API (change data capture; the runbook's :8083); empty: no worker (smp connect: 127.0.0.1:8083)")
	fs.IntVar(&c.ConnectMaxRestarts, "connect-max-restarts", d.ConnectMaxRestarts, "how many times the Kafka Connect watchdog restarts a failed connector or task (with backoff) before leaving it FAILED for the INC-008 alert")
	fs.StringVar(&c.DataDir, "data-dir", d.DataDir, "directory of the embedded database and event log")
	c.registerReadModel(fs)
	c.registerMySQL(fs)
	fs.StringVar(&c.RedisAddr, "redis-addr", "", "Redis for dispatch queues, invitations, geo index and locks, e.g. 127.0.0.1:6379 (default: in-process)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", "", "prefix for every Redis key (to share one Redis between environments)")
	fs.IntVar(&c.RedisPoolSize, "redis-pool-size", d.RedisPoolSize, "Redis connections per process")
	fs.StringVar(&c.Services, "services", d.Services, "what this process runs: all, or a comma list of api, order-svc, dispatch-engine, outbox-relay, integration-svc, fraud-detector")
	fs.StringVar(&c.AdminToken, "admin-token", "", "bearer token with the admin role (prefer SMP_ADMIN_TOKEN: flags show in ps)")
	fs.StringVar(&c.AlertmanagerToken, "alertmanager-token", "", "the only bearer token the Alertmanager receiver accepts (prefer SMP_ALERTMANAGER_TOKEN); without it no alert is taken")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or text")
	fs.DurationVar(&c.InvitationTTL, "invitation-ttl", d.InvitationTTL, "how long a dispatch offer stays open")
	fs.DurationVar(&c.RetryAfter, "dispatch-retry-after", d.RetryAfter, "wait before retrying an order nobody took")
	fs.DurationVar(&c.StuckAfter, "stuck-after", d.StuckAfter, "an order in 02_dispatching longer than this counts as stuck")
	fs.Int64Var(&c.BackpressureThreshold, "backpressure-threshold", d.BackpressureThreshold, "a city queue longer than this is backpressure")
	fs.IntVar(&c.Partitions, "partitions", d.Partitions, "partitions per topic (embedded log; topics created on Kafka)")
	c.registerKafka(fs)
	fs.StringVar(&c.VNPayPayURL, "vnpay-pay-url", "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html", "VNPay's payment page (partners' top-ups)")
	fs.StringVar(&c.VNPayReturnURL, "vnpay-return-url", "", "where VNPay sends a partner back after paying")
	fs.Int64Var(&c.LargeValueVND, "large-value-vnd", 400_000_000, "a single top-up at or above this many VND creates a compliance (large-value) report (Decision 11/2023/QĐ-TTg: 400,000,000)")
	fs.StringVar(&c.VNPayAPIURL, "vnpay-api-url", "https://sandbox.vnpayment.vn/merchant_webapi/api/transaction", "VNPay's merchant API (querydr for replay-webhooks, refund for reverse-held)")
	fs.StringVar(&c.FraudRules, "fraud-rules", "", "the fraud rules file (rules_engine.yaml; default: the embedded one), re-read when it changes and on SIGHUP")
	fs.DurationVar(&c.FraudRulesPoll, "fraud-rules-poll", d.FraudRulesPoll, "how often the fraud rules file is checked for changes")
	fs.StringVar(&c.GeoIPDB, "geoip-db", "", "MaxMind-format country database (GeoLite2-Country.mmdb) for the fraud geography rule; without it the rule answers unknown")
	fs.StringVar(&c.JWTHS256Secret, "jwt-hs256-secret", "", "accept HS256 bearer JWTs signed with this secret (prefer SMP_JWT_HS256_SECRET: flags show in ps)")
	fs.StringVar(&c.JWTJWKSURL, "jwt-jwks-url", "", "accept RS256 bearer JWTs signed by the keys of this JWKS URL")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", "", "the iss a bearer JWT must carry (empty: not checked)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", "", "the aud a bearer JWT must carry (empty: not checked)")
	fs.StringVar(&c.JWTRoleClaim, "jwt-role-claim", d.JWTRoleClaim, "the claim of a bearer JWT that names its SMP role")
	fs.StringVar(&c.VNPayFilesURL, "vnpay-files-url", "", "where VNPay's daily transaction files are read (<url>/transactions/YYYY-MM-DD.csv) by the nightly reconciliation; without it the reconciliation is not scheduled")
	fs.StringVar(&c.ReconAt, "recon-at", "02:00", "time of day (UTC, HH:MM) of the nightly wallet reconciliation (wallet-reconciliation-cron), or off when the Kubernetes CronJob runs it")
	fs.StringVar(&c.InsideURL, "inside-url", "", "base URL of inside's API (customer info, payment requests)")
	fs.StringVar(&c.WMSURL, "wms-url", "", "base URL of wms's API (stock)")
	fs.DurationVar(&c.BreakerOpenFor, "breaker-open-for", d.BreakerOpenFor, "how long an integration's circuit breaker stays open before a half-open probe")
	fs.DurationVar(&c.PaymentRetryBackoff, "payment-retry-backoff", d.PaymentRetryBackoff, "first retry delay of a payment event that failed (doubled per attempt; 5 attempts, then dlq)")
	fs.DurationVar(&c.PaymentDueAfter, "payment-due-after", d.PaymentDueAfter, "a completed order unpaid for longer counts in order_payment_pending_count")
	fs.BoolVar(&c.StatusFromAlerts, "status-from-alerts", d.StatusFromAlerts, "let firing alerts (from Alertmanager) degrade their component on the status page")
	fs.DurationVar(&c.DashboardSampleEvery, "dashboard-sample-every", d.DashboardSampleEvery, "how often the admin dashboard's latency history is sampled")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", d.HeartbeatInterval, "how often this process records its liveness in the database; dispatch_engine_up is 0 three intervals after the last engine's")
	fs.DurationVar(&c.SessionTTL, "session-ttl", d.SessionTTL, "lifetime of a customer's or technician's login session")
	fs.StringVar(&c.Region, "region", d.Region, "this deployment's region (asia, china, us, ...)")
	fs.StringVar(&c.MasterRegion, "master-region", d.MasterRegion, "the region that owns and edits master data (countries, currencies, currency_rates, tax_configs, i18n_translations)")
	fs.StringVar(&c.DisplayCurrency, "display-currency", d.DisplayCurrency, "the currency prices and invoices are shown in (ISO 4217), converted from VND with currency_rates")
	fs.StringVar(&c.TaxCountry, "tax-country", d.TaxCountry, "the country of the tax_configs row whose tax is included in prices")
	fs.StringVar(&c.TaxCode, "tax-code", d.TaxCode, "the tax code of that tax_configs row")
	fs.StringVar(&c.ReplicateFrom, "replicate-from", "", "run the replication agent (replication-agent, INC-012) from these regions to --region: <region>=<kafka brokers> or <region>=file:<embedded log path>, several joined by ;")
	fs.IntVar(&c.ReplicationAgents, "replication-agents", 3, "replication agents per path, in all processes: each takes its share of the path's topics")
	fs.DurationVar(&c.ReplicationLeaseTTL, "replication-lease-ttl", 10*time.Second, "a dead replication agent's topics are taken over after this")
	fs.StringVar(&c.ReplicateGroups, "replicate-groups", "", "the source regions' consumer groups of master data whose offsets are checkpointed here with their translation (MirrorMaker 2's checkpoints; smp ctl regions status shows them): billing,invoices")
	fs.StringVar(&c.SMSURL, "sms-url", "", "HTTP SMS gateway for login codes (POST {\"to\",\"text\"}; token in SMP_SMS_TOKEN); default: the SMS simulator, read at GET /admin/sms/outbox")
	fs.DurationVar(&c.HTTPReadTimeout, "http-read-timeout", d.HTTPReadTimeout, "longest time to read a request, body included (WebSockets exempt)")
	fs.DurationVar(&c.HTTPWriteTimeout, "http-write-timeout", d.HTTPWriteTimeout, "longest time to write an answer (WebSockets exempt)")
	fs.DurationVar(&c.HTTPIdleTimeout, "http-idle-timeout", d.HTTPIdleTimeout, "a keep-alive connection idle this long is closed")
	fs.DurationVar(&c.RetentionOutbox, "retention-outbox", d.RetentionOutbox, "keep published outbox events this long (0: for ever)")
	fs.DurationVar(&c.RetentionBus, "retention-bus", d.RetentionBus, "keep the embedded event log's messages, once every consumer group has read them, this long (0: for ever; Kafka keeps its own)")
	fs.DurationVar(&c.RetentionProcessed, "retention-processed", d.RetentionProcessed, "keep the consumers' processed-event records this long (0: for ever; at least --retention-outbox and --retention-bus)")
	fs.DurationVar(&c.RetentionDispatchTrace, "retention-dispatch-trace", d.RetentionDispatchTrace, "keep dispatch waves and offers this long (0: for ever)")
	fs.DurationVar(&c.RetentionInbox, "retention-inbox", d.RetentionInbox, "keep processed provider events (event_log) this long; dead letters stay (0: for ever)")
	fs.DurationVar(&c.RetentionAudit, "retention-audit", d.RetentionAudit, "keep audit entries this long (0: for ever, the default)")
	fs.DurationVar(&c.RetentionEvery, "retention-every", d.RetentionEvery, "how often the pruning job runs (one process at a time)")
	fs.IntVar(&c.RelayMaxInFlight, "relay-max-in-flight", d.RelayMaxInFlight, "batches the outbox relay keeps waiting for Kafka's acknowledgement at once (at least 1; the idempotent producer keeps each partition's order)")
	fs.IntVar(&c.HTTPMaxConnsPerIP, "http-max-conns-per-ip", d.HTTPMaxConnsPerIP, "connections one client address may hold at once, WebSockets included; more are refused with 503 (0: no cap, e.g. behind a proxy)")
}

// registerReadModel adds the read model's backend flags (serve, connect,
// demo): the embedded bleve index or Elasticsearch 8 (docs/readmodel.md).
func (c *Config) registerReadModel(fs *flag.FlagSet) {
	fs.StringVar(&c.ReadModelBackend, "readmodel-backend", app.DefaultConfig().ReadModelBackend, "the read model's search index: bleve (embedded, under --data-dir/readmodel) or elasticsearch (--es-url)")
	fs.StringVar(&c.ES.URL, "es-url", "", "Elasticsearch 8 of the read model, e.g. https://es.internal:9200 (several joined by commas; no credentials in it)")
	fs.StringVar(&c.ES.Username, "es-username", "", "Elasticsearch user (basic authentication, with SMP_ES_PASSWORD)")
	fs.StringVar(&c.ES.Password, "es-password", "", "Elasticsearch password (prefer SMP_ES_PASSWORD: flags show in ps)")
	fs.StringVar(&c.ES.APIKey, "es-api-key", "", "Elasticsearch API key, base64 id:key (prefer SMP_ES_API_KEY: flags show in ps)")
	fs.StringVar(&c.ES.CACertFile, "es-ca-cert", "", "PEM file of the CA that signed Elasticsearch's certificate (https; default: the system's roots)")
	fs.StringVar(&c.ES.Refresh, "es-refresh", "", "refresh of the read model's bulk writes: wait_for (searchable on return, the default) or false (faster, searchable within the index's refresh_interval)")
}

// registerMySQL adds the database flags (serve, demo, migrate, token).
func (c *Config) registerMySQL(fs *flag.FlagSet) {
	fs.StringVar(&c.MySQLDSN, "mysql-dsn", "", "MySQL primary, e.g. user:pass@tcp(host:3306)/smp (default: embedded SQLite in --data-dir)")
	fs.StringVar(&c.MySQLReadDSN, "mysql-read-dsn", "", "MySQL replica for lag-tolerant reads (also MYSQL_READ_DSN)")
	fs.DurationVar(&c.ReplicaLagThreshold, "replica-lag-threshold", app.DefaultConfig().ReplicaLagThreshold, "above this replica lag, reads move to the primary")
	fs.IntVar(&c.MySQLMaxConns, "mysql-max-conns", app.DefaultConfig().MySQLMaxConns, "connections per MySQL pool of this process (the event log adds up to 16)")
	fs.BoolVar(&c.SQLiteNoGroupCommit, "sqlite-no-group-commit", false, "embedded SQLite: commit every write transaction on its own, one fsync each (default: those waiting together commit as one, one fsync for all)")
}

// registerKafka adds the Kafka flags (serve, demo, ctl bus).
func (c *Config) registerKafka(fs *flag.FlagSet) {
	fs.StringVar(&c.KafkaBrokers, "kafka-brokers", "", "Kafka seed brokers host:port,... for the event bus (default: the embedded event log)")
	fs.IntVar(&c.KafkaReplication, "kafka-replication-factor", app.DefaultConfig().KafkaReplication, "replication factor of topics SMP creates (-1: the brokers' default; 3 in production)")
	fs.StringVar(&c.KafkaCluster, "kafka-cluster", app.DefaultConfig().KafkaCluster, "the cluster label of kafka_broker_down")
}

// Validate checks the configuration: the platform's, then the logs'.
// Every error is a usage error (exit 2).
func (c *Config) Validate() error {
	if c.RelayMaxInFlight < 1 { // 0 is the library's "default"; on the command line it is a mistake
		return usageError{"--relay-max-in-flight must be at least 1 (batches the outbox relay keeps waiting for Kafka's acknowledgement at once)"}
	}
	if err := c.Config.Validate(); err != nil {
		return usageError{err.Error()}
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return err
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return usageError{"--log-format must be json or text"}
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
