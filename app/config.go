package app

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"smp"
	"smp/retention"
)

// Config is the platform's configuration: plain values, filled by cmd/smp
// from its flags and SMP_* variables (this package reads neither).
type Config struct {
	Addr string
	// ConnectAddr is where the Kafka Connect worker's REST API listens
	// (module kafka-connect, runbook INC-008's :8083); empty: no worker.
	ConnectAddr string
	// ConnectOnly runs the Kafka Connect worker alone (smp connect): no
	// platform API, no services.
	ConnectOnly bool
	// ConnectMaxRestarts is how many times the Connect watchdog restarts a
	// failed connector or task before it leaves it FAILED (the INC-008
	// alert then fires).
	ConnectMaxRestarts int
	DataDir            string
	// ReadModelBackend is the read model's search index: "bleve" (the
	// embedded default, under DataDir/readmodel) or "elasticsearch" (ES
	// and its settings; ESPassword and ESAPIKey come from SMP_ES_PASSWORD
	// and SMP_ES_API_KEY, never logged).
	ReadModelBackend    string
	ES                  ESConfig
	MySQLDSN            string
	MySQLReadDSN        string
	ReplicaLagThreshold time.Duration
	MySQLMaxConns       int
	// SQLiteNoGroupCommit stops the embedded database and event log from
	// committing the write transactions waiting together as one (one
	// fsync): each then commits on its own (sqlstore.Config.NoGroupCommit).
	SQLiteNoGroupCommit bool
	RedisAddr           string
	RedisPrefix         string
	RedisPoolSize       int
	Services            string
	AdminToken          string
	// AlertmanagerToken is the Alertmanager receiver's own bearer token
	// (SMP_ALERTMANAGER_TOKEN); without it the receiver refuses every post.
	AlertmanagerToken     string
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
	// HeartbeatInterval: how often each process records its liveness in
	// the database (dispatch_engine_up is read from it); a process is
	// presumed dead after three intervals without one.
	HeartbeatInterval time.Duration
	// SessionTTL is the lifetime of a customer's or technician's login
	// session (--session-ttl, 30 days).
	SessionTTL time.Duration
	// Region is this deployment's region (--region: asia, china, us, ...;
	// smp.DefaultRegion, "global", by default); MasterRegion the region
	// that owns and edits master data (--master-region, the global master
	// by default): elsewhere master data is read only (issue 21).
	Region       string
	MasterRegion string
	// DisplayCurrency is the currency prices and invoices are shown in
	// (--display-currency, VND), converted with currency_rates; TaxCountry
	// and TaxCode the tax_configs row of the tax included in prices
	// (--tax-country VN, --tax-code VAT). Package pricing.
	DisplayCurrency string
	TaxCountry      string
	TaxCode         string
	// ReplicateFrom runs the replication agent (service replication-agent,
	// issue 21) with one path from each source region to this one:
	// "<region>=<brokers>" (Kafka, host:port,host:port) or
	// "<region>=file:<path>" (that region's embedded log), several joined
	// by ";" (--replicate-from). Empty: no agent.
	ReplicateFrom string
	// ReplicationAgents is how many agents run each path, in all
	// processes (--replication-agents, 3): each takes its share of the
	// path's topics, and a dead one's after --replication-lease-ttl.
	ReplicationAgents   int
	ReplicationLeaseTTL time.Duration
	// ReplicateGroups are the source regions' consumer groups of master
	// data whose offsets are checkpointed here with their translation
	// (MirrorMaker 2's checkpoints; --replicate-groups, comma separated).
	ReplicateGroups string
	// ReplicateOnly runs the replication agent alone (smp replicate).
	ReplicateOnly bool
	// SMSURL is the HTTP SMS gateway login codes are sent through
	// (--sms-url); SMSToken its bearer token (SMP_SMS_TOKEN only). Without
	// a URL, and without SMS, codes go to the simulator, whose outbox
	// admins read at GET /admin/sms/outbox.
	SMSURL   string
	SMSToken string
	// SMS, when set, is the SMS provider (tests and the demo pass
	// sim.SMS); it wins over SMSURL.
	SMS smp.SMSSender
	// HTTPReadTimeout, HTTPWriteTimeout and HTTPIdleTimeout bound a
	// request's reading (body included), its answer and a keep-alive
	// connection's idle wait; WebSockets are exempt (httpapi/limits.go).
	HTTPReadTimeout  time.Duration
	HTTPWriteTimeout time.Duration
	HTTPIdleTimeout  time.Duration
	// RelayMaxInFlight is how many batches the outbox relay keeps waiting
	// for their acknowledgement at once on Kafka (outbox.Config.MaxInFlight;
	// at least 1, 0 means the default, 4).
	RelayMaxInFlight int
	// HTTPMaxConnsPerIP caps the connections one client address holds at
	// once, WebSockets included (0: no cap, e.g. behind a proxy that
	// does not keep client addresses).
	HTTPMaxConnsPerIP int
	// Retention of what is kept only for a while (0: kept for ever):
	// published outbox events, the embedded log's messages every group
	// has read, processed-event records, the dispatch trace, processed
	// provider events (event_log; dead letters stay), audit entries (kept
	// by default). RetentionEvery is how often the pruning job runs.
	RetentionOutbox        time.Duration
	RetentionBus           time.Duration
	RetentionProcessed     time.Duration
	RetentionDispatchTrace time.Duration
	RetentionInbox         time.Duration
	RetentionAudit         time.Duration
	RetentionEvery         time.Duration
	// InsideWebhookSecrets are inside's webhook signing secrets,
	// comma-separated while rotating (cmd/smp reads them from
	// SMP_INSIDE_WEBHOOK_SECRET, never from a flag: flags show in ps).
	InsideWebhookSecrets string
	// VNPayTmnCode and VNPayHashSecrets are the merchant's VNPay code and
	// hash secrets (comma-separated while rotating: the first signs), from
	// SMP_VNPAY_TMN_CODE and SMP_VNPAY_HASH_SECRET only.
	VNPayTmnCode     string
	VNPayHashSecrets string
	// VNPayPayURL is VNPay's payment page; VNPayReturnURL where partners
	// come back after paying.
	VNPayPayURL    string
	VNPayReturnURL string
	// VNPayAPIURL is VNPay's merchant API: querydr for replay-webhooks,
	// refund for reverse-held.
	VNPayAPIURL string
	// FraudRules is the fraud detector's rules_engine.yaml ("" runs the
	// embedded default); it is re-read when it changes (checked every
	// FraudRulesPoll) and on SIGHUP.
	FraudRules     string
	FraudRulesPoll time.Duration
	// HUP, when set, carries the SIGHUPs its caller subscribed to before
	// Open (smp serve does it first thing): the fraud module reloads on
	// them. A SIGHUP while the modules start (/health already answers once
	// the server is up) then waits for the fraud module instead of meeting
	// the default action, which ends the process. Nil: the fraud module
	// subscribes in its Start.
	HUP <-chan os.Signal
	// GeoIPDB is a MaxMind-format country database (GeoLite2-Country.mmdb)
	// for the geography rule; without it that rule answers unknown.
	GeoIPDB string
	// JWT: bearer JWTs accepted besides SMP's own tokens (the runbook's
	// $JWT): HS256 with JWTHS256Secret or RS256 with the keys at
	// JWTJWKSURL; issuer and audience checked when set; the role read from
	// the JWTRoleClaim claim (default role).
	JWTHS256Secret string
	JWTJWKSURL     string
	JWTIssuer      string
	JWTAudience    string
	JWTRoleClaim   string
	// VNPayFilesURL is where VNPay's daily transaction files are read
	// (<url>/transactions/YYYY-MM-DD.csv), for the reconciliation; without
	// it the nightly run is not scheduled.
	VNPayFilesURL string
	// ReconAt is the nightly reconciliation's time of day, UTC "HH:MM"
	// (default 02:00), or "off" (the Kubernetes CronJob asks the API).
	ReconAt string
	// LargeValueVND: a single top-up at or above it creates a compliance
	// report (0: smp.LargeValueThresholdVND, 400,000,000 VND).
	LargeValueVND int64
	// Now is every component's clock (default time.Now): tests shorten or
	// fake time through it.
	Now func() time.Time
}

// DefaultConfig is the configuration of a single process on the embedded
// default; cmd/smp's flags take their defaults from it.
func DefaultConfig() Config {
	return Config{
		Addr:                   "127.0.0.1:8080",
		DataDir:                "./smp-data",
		ReadModelBackend:       ReadModelBleve,
		ReplicaLagThreshold:    30 * time.Second,
		MySQLMaxConns:          32,
		RedisPoolSize:          64,
		Services:               "all",
		FraudRulesPoll:         2 * time.Second,
		JWTRoleClaim:           "role",
		ConnectMaxRestarts:     5,
		Region:                 smp.DefaultRegion,
		MasterRegion:           smp.DefaultRegion,
		DisplayCurrency:        "VND",
		TaxCountry:             "VN",
		TaxCode:                "VAT",
		InvitationTTL:          20 * time.Second,
		RetryAfter:             10 * time.Second,
		StuckAfter:             5 * time.Minute,
		BackpressureThreshold:  100,
		Partitions:             12,
		KafkaReplication:       -1,
		KafkaCluster:           "prod",
		PaymentDueAfter:        15 * time.Minute,
		PaymentRetryBackoff:    time.Second,
		BreakerOpenFor:         30 * time.Second,
		StatusFromAlerts:       true,
		DashboardSampleEvery:   5 * time.Second,
		HeartbeatInterval:      5 * time.Second,
		SessionTTL:             30 * 24 * time.Hour,
		HTTPReadTimeout:        30 * time.Second,
		HTTPWriteTimeout:       30 * time.Second,
		HTTPIdleTimeout:        120 * time.Second,
		HTTPMaxConnsPerIP:      256,
		RelayMaxInFlight:       4,
		RetentionOutbox:        7 * 24 * time.Hour,
		RetentionBus:           7 * 24 * time.Hour,
		RetentionProcessed:     14 * 24 * time.Hour,
		RetentionDispatchTrace: 30 * 24 * time.Hour,
		RetentionInbox:         90 * 24 * time.Hour,
		RetentionEvery:         time.Minute,
	}
}

// ConfigError is a configuration that cannot run; its message names the
// setting by its flag.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &ConfigError{Msg: fmt.Sprintf(format, args...)}
}

// Validate checks the configuration; every error is a *ConfigError.
func (c *Config) Validate() error {
	if c.LargeValueVND < 0 {
		return fmt.Errorf("--large-value-vnd must not be negative")
	}
	if c.Region == "" {
		c.Region = smp.DefaultRegion
	}
	if c.MasterRegion == "" {
		c.MasterRegion = smp.DefaultRegion
	}
	if c.RelayMaxInFlight == 0 {
		c.RelayMaxInFlight = 4
	}
	switch {
	case c.Addr == "":
		return invalid("--addr is required")
	case c.DataDir == "":
		return invalid("--data-dir is required")
	case c.ReplicateOnly && c.ReplicateFrom == "":
		return invalid("--replicate-from is required")
	case len(c.ReplicationGroups()) > 0 && c.ReplicateFrom == "":
		return invalid("--replicate-groups needs --replicate-from")
	case c.ReplicationAgents < 0 || c.ReplicationLeaseTTL < 0:
		return invalid("--replication-agents and --replication-lease-ttl must not be negative (0: 3 agents, 10s)")
	case c.ConnectOnly && c.ConnectAddr == "":
		return invalid("--connect-addr is required")
	case c.ConnectMaxRestarts < 0:
		return invalid("--connect-max-restarts must not be negative (0 means the default, 5)")
	case c.InvitationTTL < 100*time.Millisecond:
		return invalid("--invitation-ttl must be at least 100ms")
	case c.RetryAfter <= 0 || c.StuckAfter <= 0:
		return invalid("--dispatch-retry-after and --stuck-after must be positive")
	case c.BackpressureThreshold <= 0:
		return invalid("--backpressure-threshold must be positive")
	case c.Partitions <= 0 || c.Partitions > 1024:
		return invalid("--partitions must be between 1 and 1024")
	case c.HTTPReadTimeout < 0 || c.HTTPWriteTimeout < 0 || c.HTTPIdleTimeout < 0:
		return invalid("--http-read-timeout, --http-write-timeout and --http-idle-timeout must not be negative (0: the default)")
	case c.RelayMaxInFlight < 1:
		return invalid("--relay-max-in-flight must be at least 1 (batches the outbox relay keeps waiting for Kafka's acknowledgement at once)")
	case c.HTTPMaxConnsPerIP < 0:
		return invalid("--http-max-conns-per-ip must not be negative (0: no cap)")
	case c.RetentionOutbox < 0 || c.RetentionBus < 0 || c.RetentionProcessed < 0 || c.RetentionDispatchTrace < 0 ||
		c.RetentionInbox < 0 || c.RetentionAudit < 0 || c.RetentionEvery < 0:
		return invalid("--retention-* must not be negative (0: kept for ever)")
	case c.RetentionProcessed > 0 && (c.RetentionOutbox == 0 || c.RetentionProcessed < c.RetentionOutbox ||
		c.RetentionBus == 0 || c.RetentionProcessed < c.RetentionBus):
		// A consumer's record of an event must outlive every copy of the
		// event that could be delivered again.
		return invalid("--retention-processed must be 0 or at least --retention-outbox and --retention-bus (and those not 0)")
	case c.AlertmanagerToken != "" && c.AlertmanagerToken == c.AdminToken:
		return invalid("--alertmanager-token must differ from --admin-token: Alertmanager gets a credential of its own")
	case c.HeartbeatInterval < 0:
		return invalid("--heartbeat-interval must be positive")
	case c.SessionTTL != 0 && c.SessionTTL < time.Minute:
		return invalid("--session-ttl must be at least 1m")
	case c.ReconAt != "" && c.ReconAt != "off" && !validAt(c.ReconAt):
		return invalid("--recon-at %q: HH:MM (UTC) or off", c.ReconAt)
	case c.DisplayCurrency != "" && !isCurrencyCode(c.DisplayCurrency):
		return invalid("--display-currency %q: an ISO 4217 code (VND, USD, CNY)", c.DisplayCurrency)
	case smp.ValidRegion(c.Region) != nil:
		return invalid("--region %q: lowercase letters and digits, starting with a letter, at most 16 (asia, china, us)", c.Region)
	case smp.ValidRegion(c.MasterRegion) != nil:
		return invalid("--master-region %q: lowercase letters and digits, starting with a letter, at most 16", c.MasterRegion)
	}
	if _, err := c.ServiceSet(); err != nil {
		return err
	}
	if err := c.validateReadModel(); err != nil {
		return err
	}
	if _, err := c.ReplicationSources(); err != nil {
		return err
	}
	return c.ValidateKafka()
}

// KafkaBrokerList is KafkaBrokers split on commas, blanks dropped.
func (c *Config) KafkaBrokerList() []string {
	var out []string
	for _, b := range strings.Split(c.KafkaBrokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// ValidateKafka checks the Kafka settings alone (smp ctl bus uses them).
func (c *Config) ValidateKafka() error {
	for _, b := range c.KafkaBrokerList() {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return invalid("--kafka-brokers: %q is not host:port", b)
		}
	}
	if c.KafkaReplication < -1 {
		return invalid("--kafka-replication-factor must be -1 (the brokers' default) or at least 1")
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
	ServiceFraud          = "fraud-detector"  // the fraud rules over payments.events and partners.events (INC-011)
)

// AllServices are the services of --services all, in their order.
var AllServices = []string{ServiceAPI, ServiceOrders, ServiceDispatchEngine, ServiceOutboxRelay, ServiceIntegration, ServiceFraud}

// ServiceSet parses Services. Every process serves /health, /metrics and
// /admin. Splitting services over processes needs shared state: MySQL and
// Redis.
func (c *Config) ServiceSet() (map[string]bool, error) {
	out := map[string]bool{}
	if strings.TrimSpace(c.Services) == "all" || c.Services == "" {
		for _, s := range AllServices {
			out[s] = true
		}
		return out, nil
	}
	for _, s := range strings.Split(c.Services, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(AllServices, s) {
			return nil, invalid("--services: unknown service %q (use all or %s)", s, strings.Join(AllServices, ", "))
		}
		out[s] = true
	}
	if c.MySQLDSN == "" || c.RedisAddr == "" {
		return nil, invalid("--services other than all needs --mysql-dsn and --redis-addr: the processes share state there (and --kafka-brokers or the log in MySQL carries their events)")
	}
	return out, nil
}

// IsConfigError reports whether err is (or wraps) a *ConfigError.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

// RetentionPolicies are the pruning job's policies from the Retention*
// settings; Idempotency-Keys go once expired.
func (c *Config) RetentionPolicies() []retention.Policy {
	return []retention.Policy{
		{Table: smp.PruneOutbox, Keep: c.RetentionOutbox},
		{Table: smp.PruneBus, Keep: c.RetentionBus},
		// The change table is the embedded default's binlog: kept as long
		// as the event log (7 days, the runbook's binlog retention); a
		// connector stopped for longer finds its position gone (INC-008).
		{Table: smp.PruneCDCChanges, Keep: c.RetentionBus},
		{Table: smp.PruneProcessed, Keep: c.RetentionProcessed},
		{Table: smp.PruneDispatchWaves, Keep: c.RetentionDispatchTrace},
		{Table: smp.PruneDispatchOffers, Keep: c.RetentionDispatchTrace},
		{Table: smp.PruneInbox, Keep: c.RetentionInbox},
		{Table: smp.PruneIdempotency, Keep: smp.IdempotencyKeyTTL},
		{Table: smp.PruneAudit, Keep: c.RetentionAudit},
	}
}

// ReplicationSource is one source region of --replicate-from: its Kafka
// brokers, or its embedded log's file.
type ReplicationSource struct {
	Region  string
	Brokers []string
	LogPath string
}

// ReplicationGroups parses ReplicateGroups.
func (c *Config) ReplicationGroups() []string {
	var out []string
	for _, g := range strings.Split(c.ReplicateGroups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// ReplicationSources parses ReplicateFrom.
func (c *Config) ReplicationSources() ([]ReplicationSource, error) {
	var out []ReplicationSource
	seen := map[string]bool{}
	for _, part := range strings.Split(c.ReplicateFrom, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		region, where, ok := strings.Cut(part, "=")
		if !ok || smp.ValidRegion(region) != nil || strings.TrimSpace(where) == "" {
			return nil, invalid("--replicate-from %q: <region>=<brokers> or <region>=file:<path>, several joined by ;", part)
		}
		if region == c.Region || seen[region] {
			return nil, invalid("--replicate-from: region %q is this one (--region) or named twice", region)
		}
		seen[region] = true
		src := ReplicationSource{Region: region}
		if path, ok := strings.CutPrefix(where, "file:"); ok {
			src.LogPath = path
		} else {
			for _, b := range strings.Split(where, ",") {
				if b = strings.TrimSpace(b); b != "" {
					if !strings.Contains(b, ":") {
						return nil, invalid("--replicate-from %s: broker %q is not host:port", region, b)
					}
					src.Brokers = append(src.Brokers, b)
				}
			}
		}
		out = append(out, src)
	}
	return out, nil
}

// isCurrencyCode reports whether s is three capital letters (ISO 4217).
func isCurrencyCode(s string) bool {
	return len(s) == 3 && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
}

// validAt reports whether at is a time of day "HH:MM".
func validAt(at string) bool {
	_, err := time.Parse("15:04", at)
	return err == nil && len(at) == 5
}
