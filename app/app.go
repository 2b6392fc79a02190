// Package app is the whole platform in one process: it opens the backends
// and services a configuration asks for, in dependency order, and closes
// them in reverse. cmd/smp turns flags into a Config and runs an App.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/auth"
	smpbus "smp/bus"
	"smp/catalog"
	"smp/connect"
	"smp/connectapi"
	"smp/dispatch"
	"smp/flags"
	"smp/fraud"
	"smp/httpapi"
	"smp/inmem"
	"smp/integrations"
	"smp/kafkabus"
	"smp/masterdata"
	"smp/ops"
	"smp/orders"
	"smp/outbox"
	"smp/payments"
	"smp/pricing"
	"smp/readmodel"
	"smp/recon"
	"smp/redisstore"
	"smp/replication"
	"smp/sim"
	"smp/sqlbus"
	"smp/sqlstore"
	"smp/status"
	"smp/wallet"
	"smp/wsapi"
)

// App is the whole platform in one process.
type App struct {
	Cfg      Config
	Log      *slog.Logger
	Registry *prometheus.Registry

	Store *sqlstore.DB
	Redis *redisstore.Store // nil on the embedded default
	Bus   smp.EventBus      // the embedded log, or Kafka with --kafka-brokers
	Kafka *kafkabus.Bus     // nil on the embedded log
	// Replication are the replication agents (--replicate-from), one per path.
	Replication []*replication.Agent
	// Consumed counts each consumer group's events by outcome.
	Consumed *smpbus.Metrics
	Orders   *orders.Service
	Flags    *flags.Service
	Hub      *wsapi.Hub
	Engine   *dispatch.Engine
	// Heartbeat records this process's liveness in the database and reads
	// every process's (dispatch_engine_up, aggregated stats).
	Heartbeat *dispatch.Heartbeat
	Relay     *outbox.Relay
	// Payments ingests inside's webhooks and applies them.
	Payments *payments.Service
	// Wallet posts to the partners' ledger and verifies it.
	Wallet *wallet.Service
	// Fraud is the fraud detector (nil unless this process runs it).
	Fraud *fraud.Detector
	// Recon reconciles the wallets with the gateway (INC-010).
	Recon *recon.Service
	// Status is the status page and its components' states.
	Status *status.Service
	// Actions are the operator actions (audited), for every transport.
	Actions *ops.Service
	// Catalog onboards cities, services, partners, technicians and customers.
	Catalog *catalog.Service
	HTTP    *httpapi.Server
	// Connect is the Kafka Connect worker and ConnectAPI its REST API
	// (nil without --connect-addr).
	Connect    *connect.Worker
	ConnectAPI *connectapi.Server
	// ReadIndex is the read model's search index (the embedded bleve
	// index under --data-dir/readmodel; nil without the read-model
	// module) and Sink the elasticsearch-sink plugin that fills it.
	ReadIndex smp.SearchIndex
	Sink      *readmodel.Sink
	// ReadModel is the read model's operations and reads (nil without the
	// Connect worker).
	ReadModel *readmodel.Service
	// MasterData reads and (in the owner region) edits master data.
	MasterData *masterdata.Service
	// Pricing shows prices and invoices in --display-currency.
	Pricing *pricing.Service
	// Logins are customers' and technicians' logins (one-time codes by
	// SMS, session tokens); SMS is the simulated provider when no real one
	// is configured (nil otherwise).
	Logins *auth.Logins
	SMS    *sim.SMS

	services     map[string]bool
	broadcaster  *redisstore.Broadcaster
	integrations httpapi.Integrations
	sessions     smp.SessionStore

	queue smp.DispatchQueue // the engine's, which the order service fills (nil where no engine drains it)

	mu       sync.Mutex
	running  []running // started modules, in start order
	stopped  []running // modules StopModule stopped (StartModule restarts them)
	runCtx   context.Context
	cancel   context.CancelFunc
	failed   chan struct{}
	failOnce sync.Once
	failErr  error
}

// OpenStore opens the system of record: MySQL when MySQLDSN is set, else
// SQLite in the data dir (smp migrate and smp token use it too).
func OpenStore(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*sqlstore.DB, error) {
	sc := sqlstore.Config{MySQLDSN: cfg.MySQLDSN, MySQLReadDSN: cfg.MySQLReadDSN, ReplicaLagThreshold: cfg.ReplicaLagThreshold,
		MaxConns: cfg.MySQLMaxConns, NoGroupCommit: cfg.SQLiteNoGroupCommit, Now: cfg.Now, Logger: log, Registerer: reg}
	if cfg.MySQLDSN == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		sc.Path = filepath.Join(cfg.DataDir, "smp.db")
	}
	return sqlstore.Open(ctx, sc)
}

// openBus opens the event bus: Kafka with --kafka-brokers; otherwise the
// embedded log beside the data (in smp.db, sharing the store's writer, or
// in MySQL so that every process shares it). Consumer lag is exported for both.
func (a *App) openBus() error {
	if brokers := a.Cfg.KafkaBrokerList(); len(brokers) > 0 {
		k, err := kafkabus.Open(kafkabus.Config{Brokers: brokers, Partitions: int32(a.Cfg.Partitions), ReplicationFactor: int16(a.Cfg.KafkaReplication),
			ClientID: "smp-" + a.Cfg.Services, Logger: a.Log})
		if err != nil {
			return err
		}
		a.Bus, a.Kafka = k, k
		// Create the topics now if the brokers answer; if not, the first
		// publish or subscribe does (the outbox holds events meanwhile).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := k.EnsureTopics(ctx, smp.TopicOrders, smp.TopicPayments, smp.TopicPartners); err != nil {
			a.Log.Warn("kafka: topics not created yet", "err", err)
		}
		a.Registry.MustRegister(kafkabus.NewBrokerCollector(k, a.Cfg.KafkaCluster))
	} else {
		busCfg := sqlbus.Config{Partitions: a.Cfg.Partitions, NoGroupCommit: a.Cfg.SQLiteNoGroupCommit, Now: a.Cfg.Now, Logger: a.Log, Registerer: a.Registry}
		if a.Cfg.MySQLDSN != "" {
			busCfg.MySQLDSN, busCfg.PollInterval = a.Cfg.MySQLDSN, 50*time.Millisecond
		} else {
			// The embedded default: the log's tables in smp.db, on the
			// store's writer (one fsync for a change, its outbox row and
			// its message); a former events.db is moved in once.
			shared, err := a.Store.Shared()
			if err != nil {
				return err
			}
			busCfg.Shared, busCfg.Import = &shared, filepath.Join(a.Cfg.DataDir, "events.db")
		}
		l, err := sqlbus.Open(busCfg)
		if err != nil {
			return err
		}
		a.Bus = l
		if busCfg.Shared != nil {
			// The outbox append is the log's append: the relay copies only
			// what was written before (and feeds Kafka or MySQL elsewhere).
			if err := a.Store.SetOutboxLog(l.AppendTx); err != nil {
				l.Close()
				return err
			}
		}
	}
	a.Registry.MustRegister(smpbus.NewLagCollector(a.Bus, Subscriptions...), smpbus.NewDeadLetterCollector(a.Bus.(smp.BusAdmin), smp.TopicOrders))
	return nil
}

// openIntegrations builds the inside and wms clients that are configured,
// each with its circuit breaker; reads' last good answers are cached in
// Redis when configured, else in memory.
func (a *App) openIntegrations() (httpapi.Integrations, error) {
	var out httpapi.Integrations
	var cache integrations.Cache = inmem.NewCache(redisstore.TTLOf)
	if a.Redis != nil {
		cache = a.Redis.Cache()
	}
	var clients []*integrations.Client
	for _, it := range []struct{ name, url string }{{"inside", a.Cfg.InsideURL}, {"wms", a.Cfg.WMSURL}} {
		if it.url == "" {
			continue
		}
		c, err := integrations.New(integrations.Config{Name: it.name, BaseURL: it.url, OpenFor: a.Cfg.BreakerOpenFor, Flags: a.Flags, Cache: cache, Now: a.Cfg.Now, Logger: a.Log})
		if err != nil {
			return out, err
		}
		clients = append(clients, c)
		if it.name == "inside" {
			out.Inside = &integrations.Inside{Client: c}
		} else {
			out.WMS = &integrations.WMS{Client: c}
		}
	}
	return out, a.Registry.Register(integrations.NewCollector(clients...))
}

// Subscriptions are SMP's consumer groups and what they read.
var Subscriptions = []smpbus.Subscription{
	{Group: orders.ConsumerGroup, Topics: []string{smp.TopicOrders}},
	{Group: dispatch.ConsumerGroup, Topics: []string{smp.TopicOrders}},
	{Group: wallet.ConsumerGroup, Topics: []string{smp.TopicOrders}},
	// Kafka Connect's sink reads the change topics as connect-<connector>.
	{Group: readmodel.ConsumerGroup, Topics: readmodel.Topics()},
	{Group: fraud.ConsumerGroup, Topics: []string{smp.TopicPayments, smp.TopicPartners}},
}

func (a *App) checks(services map[string]bool) []httpapi.Check {
	checks := []httpapi.Check{
		// Every module: a failed one stops the process, and a stopped one
		// should not be running in a serving process.
		{Name: "modules", Critical: true, Live: true, Fn: a.checkModules},
		{Name: "database", Critical: true, Fn: a.Store.Ping},
		// Not critical: while the bus is away the outbox keeps every event
		// and orders are still taken (INC-006); restarting would not help.
		{Name: "event_bus", Critical: false, Fn: func(ctx context.Context) error {
			_, err := a.Bus.Lag(ctx, dispatch.ConsumerGroup, []string{smp.TopicOrders})
			return err
		}},
		{Name: "redis", Critical: false, Fn: func(ctx context.Context) error {
			if a.Redis == nil {
				return nil
			}
			// Degraded, not down: the database is the source of truth and
			// the sweeper re-queues what Redis could not take.
			return a.Redis.Check(ctx)
		}},
		{Name: "outbox", Critical: false, Fn: func(ctx context.Context) error {
			n, oldest, err := a.Store.OutboxBacklog(ctx)
			if err != nil {
				return err
			}
			if age := a.Cfg.Now().Sub(oldest); n > 0 && age > time.Minute {
				return fmt.Errorf("%d events unpublished, oldest %s old", n, age.Round(time.Second))
			}
			return nil
		}},
	}
	if services[ServiceDispatchEngine] {
		// Live: hung workers are what a restart cures (runbook INC-001 option A).
		checks = append(checks, httpapi.Check{Name: "dispatch_engine", Critical: true, Live: true, Fn: func(context.Context) error { return a.Engine.Healthy() }})
	} else {
		// Not critical here: this process serves without the engine, but
		// it tells the truth about it (runbook INC-001) from the heartbeats.
		checks = append(checks, httpapi.Check{Name: "dispatch_engine", Critical: false, Fn: func(ctx context.Context) error { return a.Heartbeat.CheckEngine(ctx) }})
	}
	return checks
}

// checkModules reports a failed module, or a started one that stopped.
func (a *App) checkModules(context.Context) error {
	if err := a.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var down []string
	for _, r := range a.running {
		if s, ok := r.svc.(interface{ Running() bool }); ok && !s.Running() {
			down = append(down, r.name)
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("modules not running: %v", down)
	}
	return nil
}
