// Package app is the whole platform in one process: it opens the backends
// and services a configuration asks for, in dependency order, and closes
// them in reverse. cmd/smp turns flags into a Config and runs an App.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"smp"
	"smp/busmetrics"
	"smp/consumer"
	"smp/dispatch"
	"smp/flags"
	"smp/httpapi"
	"smp/inmem"
	"smp/integrations"
	"smp/kafkabus"
	"smp/ops"
	"smp/orders"
	"smp/outbox"
	"smp/payments"
	"smp/redisstore"
	"smp/sqlbus"
	"smp/sqlstore"
	"smp/status"
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
	// Consumed counts each consumer group's events by outcome.
	Consumed *consumer.Metrics
	Orders   *orders.Service
	Flags    *flags.Service
	Hub      *wsapi.Hub
	Engine   *dispatch.Engine
	Relay    *outbox.Relay
	// Payments ingests inside's webhooks and applies them.
	Payments *payments.Service
	HTTP     *httpapi.Server

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// OpenStore opens the system of record: MySQL when MySQLDSN is set, else
// SQLite in the data dir (smp migrate and smp token use it too).
func OpenStore(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*sqlstore.DB, error) {
	sc := sqlstore.Config{MySQLDSN: cfg.MySQLDSN, MySQLReadDSN: cfg.MySQLReadDSN, ReplicaLagThreshold: cfg.ReplicaLagThreshold,
		MaxConns: cfg.MySQLMaxConns, Logger: log, Registerer: reg}
	if cfg.MySQLDSN == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		sc.Path = filepath.Join(cfg.DataDir, "smp.db")
	}
	return sqlstore.Open(ctx, sc)
}

// openBus opens the event bus: Kafka with --kafka-brokers; otherwise the
// embedded log beside the data (in the data dir, or in MySQL so that every
// process shares it). Consumer lag is exported for both.
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
		busCfg := sqlbus.Config{Path: filepath.Join(a.Cfg.DataDir, "events.db"), Partitions: a.Cfg.Partitions, Logger: a.Log}
		if a.Cfg.MySQLDSN != "" {
			busCfg.Path, busCfg.MySQLDSN, busCfg.PollInterval = "", a.Cfg.MySQLDSN, 50*time.Millisecond
		}
		l, err := sqlbus.Open(busCfg)
		if err != nil {
			return err
		}
		a.Bus = l
	}
	a.Registry.MustRegister(busmetrics.NewLagCollector(a.Bus, Subscriptions...))
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
		c, err := integrations.New(integrations.Config{Name: it.name, BaseURL: it.url, OpenFor: a.Cfg.BreakerOpenFor, Flags: a.Flags, Cache: cache, Logger: a.Log})
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
var Subscriptions = []busmetrics.Subscription{
	{Group: orders.ConsumerGroup, Topics: []string{smp.TopicOrders}},
	{Group: dispatch.ConsumerGroup, Topics: []string{smp.TopicOrders}},
}

// Open starts every component in dependency order; on error it closes
// what it opened.
func (a *App) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.Registry = prometheus.NewRegistry()
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := os.MkdirAll(a.Cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if a.Store, err = OpenStore(ctx, a.Cfg, a.Log, a.Registry); err != nil {
		return err
	}
	services, err := a.Cfg.ServiceSet()
	if err != nil {
		return err
	}
	if err = a.openBus(); err != nil {
		return err
	}
	if a.Consumed, err = consumer.NewMetrics(a.Registry); err != nil {
		return err
	}
	if a.Orders, err = orders.New(ctx, a.Store, orders.Config{StuckAfter: a.Cfg.StuckAfter, Registerer: a.Registry, Logger: a.Log}); err != nil {
		return err
	}
	if a.Flags, err = flags.New(ctx, a.Store, nil); err != nil {
		return err
	}

	var srv *httpapi.Server
	hubCfg := wsapi.Config{Logger: a.Log, Registerer: a.Registry}
	if a.Cfg.RedisAddr != "" {
		if a.Redis, err = redisstore.Open(ctx, redisstore.Config{Addr: a.Cfg.RedisAddr, Prefix: a.Cfg.RedisPrefix, PoolSize: a.Cfg.RedisPoolSize}); err != nil {
			return err
		}
		host, _ := os.Hostname()
		hubCfg.Sessions = a.Redis.Sessions(fmt.Sprintf("%s/%d", host, os.Getpid()))
	}
	if a.Hub, err = wsapi.NewHub(func(ctx context.Context, r *http.Request) (string, error) { return srv.TechnicianAuth(ctx, r) }, hubCfg); err != nil {
		return err
	}
	deps := dispatch.Deps{Store: a.Store, Orders: a.Orders, Bus: a.Bus, Flags: a.Flags, Notifier: a.Hub, Cities: a.Orders.Cities(),
		Consumed: a.Consumed, Queue: inmem.NewQueue(), Invitations: inmem.NewInvitations(), Geo: inmem.NewGeo(), Locker: inmem.NewLocker()}
	var broadcaster *redisstore.Broadcaster
	if a.Redis != nil {
		deps.Queue, deps.Invitations, deps.Geo, deps.Locker = a.Redis.Queue(), a.Redis.Invitations(), a.Redis.Geo(), a.Redis.Locker()
		// Offers for technicians connected to another process go through Redis.
		broadcaster = redisstore.NewBroadcaster(a.Redis, a.Hub, a.Log)
		deps.Notifier = broadcaster
		if err := a.Registry.Register(redisstore.NewCollector(a.Redis)); err != nil {
			return err
		}
	}
	// Every process has an engine: it is the technicians' gateway and
	// answers ops; only a dispatch-engine process starts it (and exports
	// its metrics, so dispatch_engine_up means what it says).
	engineReg := prometheus.Registerer(a.Registry)
	if !services[ServiceDispatchEngine] {
		engineReg = nil
	}
	if a.Engine, err = dispatch.New(deps, dispatch.Config{InvitationTTL: a.Cfg.InvitationTTL, RetryAfter: a.Cfg.RetryAfter, BackpressureThreshold: a.Cfg.BackpressureThreshold,
		Logger: a.Log, Registerer: engineReg}); err != nil {
		return err
	}
	a.Hub.SetGateway(a.Engine)
	a.Flags.OnChange(func(name string, v bool) {
		if name == smp.FlagEnableAutoDispatch && v {
			a.Engine.TriggerSweep()
		}
	})
	if a.Relay, err = outbox.New(a.Store, a.Bus, outbox.Config{Signal: a.Store.CommitSignal(), Locker: a.Store, Logger: a.Log, Registerer: a.Registry}); err != nil {
		return err
	}

	secrets := a.Cfg.InsideWebhookSecrets
	if services[ServiceIntegration] && secrets == "" {
		a.Log.Warn("SMP_INSIDE_WEBHOOK_SECRET is not set: inside's payment webhooks will be refused with 503")
	}
	if a.Payments, err = payments.New(a.Store, payments.Config{Secrets: payments.ParseSecrets(secrets), PaymentDueAfter: a.Cfg.PaymentDueAfter,
		Backoff: a.Cfg.PaymentRetryBackoff, Logger: a.Log, Registerer: a.Registry}); err != nil {
		return err
	}

	integ, err := a.openIntegrations()
	if err != nil {
		return err
	}

	statusPage := status.New(status.Config{FromAlerts: a.Cfg.StatusFromAlerts, CacheFor: 5 * time.Second}, a.Store)
	// Every operator action, for the admin API.
	actCfg := ops.Config{Store: a.Store, Logger: a.Log, Flags: a.Flags, Payments: a.Payments, Status: statusPage, Dispatch: a.Engine,
		Bus: a.Bus, BusAdmin: a.Bus.(smp.BusAdmin)}
	if integ.Inside != nil {
		actCfg.Breakers = append(actCfg.Breakers, integ.Inside.Client)
	}
	if integ.WMS != nil {
		actCfg.Breakers = append(actCfg.Breakers, integ.WMS.Client)
	}
	if a.Redis != nil {
		actCfg.FlushCache, actCfg.CheckFlushPattern = a.Redis.FlushCache, redisstore.CheckFlushPattern
	}
	actions, err := ops.New(actCfg)
	if err != nil {
		return err
	}
	views := httpapi.Ops{BusAdmin: a.Bus.(smp.BusAdmin), Replica: a.Store.ReplicaLag, ReadTarget: a.Store.ReadTarget}
	if srv, err = httpapi.New(httpapi.Config{Addr: a.Cfg.Addr, AdminToken: a.Cfg.AdminToken, Logger: a.Log, Registerer: a.Registry, Gatherer: a.Registry,
		SampleEvery: a.Cfg.DashboardSampleEvery},
		httpapi.Deps{Store: a.Store, Orders: a.Orders, Cities: a.Orders.Cities, Engine: a.Engine, Flags: a.Flags, WS: a.Hub,
			Checks: a.checks(services), PublicAPI: services[ServiceAPI], Payments: a.Payments, Integration: services[ServiceIntegration],
			Integrations: integ, Ops: views, Actions: actions, Status: statusPage}); err != nil {
		return err
	}
	a.HTTP = srv

	// Bind first: a taken or bad port fails before anything starts.
	if err = a.HTTP.Open(); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	if broadcaster != nil {
		if err = broadcaster.Run(runCtx); err != nil {
			return err
		}
	}
	if services[ServiceOutboxRelay] {
		a.Relay.Start(runCtx)
	}
	if services[ServiceDispatchEngine] {
		a.Engine.Start(runCtx)
	}
	if services[ServiceIntegration] {
		a.Payments.Start(runCtx)
	}
	if services[ServiceOrders] {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.Orders.Consume(runCtx, a.Bus, a.Consumed, a.Log) }()
	}
	a.wg.Add(1)
	go func() { defer a.wg.Done(); a.Flags.Run(runCtx, 5*time.Second) }()
	a.Log.Info("smp serving", "url", a.HTTP.URL(), "services", a.Cfg.Services, "database", a.Store.Dialect(), "reads", a.Store.ReadTarget())
	return nil
}

func (a *App) checks(services map[string]bool) []httpapi.Check {
	checks := []httpapi.Check{
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
			if n > 0 && time.Since(oldest) > time.Minute {
				return fmt.Errorf("%d events unpublished, oldest %s old", n, time.Since(oldest).Round(time.Second))
			}
			return nil
		}},
	}
	if services[ServiceDispatchEngine] {
		checks = append(checks, httpapi.Check{Name: "dispatch_engine", Critical: true, Fn: func(context.Context) error { return a.Engine.Healthy() }})
	}
	return checks
}

// Close stops everything in reverse order; safe after a failed Open.
func (a *App) Close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if a.HTTP != nil {
		errs = append(errs, a.HTTP.Close(ctx))
	}
	if a.Hub != nil {
		a.Hub.Close()
	}
	if a.Engine != nil {
		a.Engine.Stop()
	}
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.Relay != nil {
		a.Relay.Stop()
	}
	if a.Payments != nil {
		a.Payments.Stop()
	}
	if a.Bus != nil {
		errs = append(errs, a.Bus.Close())
	}
	if a.Redis != nil {
		errs = append(errs, a.Redis.Close())
	}
	if a.Store != nil {
		errs = append(errs, a.Store.Close())
	}
	return errors.Join(errs...)
}
