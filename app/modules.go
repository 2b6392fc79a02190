package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"smp"
	"smp/auth"
	smpbus "smp/bus"
	"smp/catalog"
	"smp/deploy"
	"smp/dispatch"
	"smp/flags"
	"smp/httpapi"
	"smp/inmem"
	"smp/internal/startstop"
	"smp/masterdata"
	"smp/ops"
	"smp/orders"
	"smp/outbox"
	"smp/payments"
	"smp/pricing"
	"smp/recon"
	"smp/redisstore"
	"smp/retention"
	"smp/status"
	"smp/wallet"
	"smp/wsapi"
)

// Internal modules: every process has them (the targets of --services
// depend on them). The targets are the Service* constants.
const (
	ModuleStore       = "store"         // the system of record (SQLite or MySQL)
	ModuleEventBus    = "event-bus"     // the embedded log or Kafka
	ModuleRedis       = "redis"         // shared queues, invitations, geo, locks (when configured)
	ModuleOrders      = "orders"        // the order service and the consumers' metrics
	ModuleFlags       = "flags"         // feature flags, refreshed every 5 s
	ModuleHub         = "ws-hub"        // the technicians' WebSocket connections
	ModuleEngine      = "engine"        // the dispatch engine object: the technicians' gateway in every process
	ModuleBroadcaster = "broadcaster"   // offers for technicians connected to other processes (Redis)
	ModuleRelay       = "relay"         // the outbox relay object
	ModulePayments    = "payments"      // inside's webhooks and the payment processor object
	ModuleIntegration = "integrations"  // inside and wms clients behind breakers
	ModuleWallet      = "wallet"        // the partners' wallets: the ledger's postings and verification
	ModuleLogins      = "logins"        // customers' and technicians' logins: codes by SMS, sessions
	ModuleOps         = "ops"           // the operator actions (audited) and the status page
	ModuleServer      = "server"        // HTTP: binds first, so a taken port fails before any loop starts
	ModuleHeartbeat   = "heartbeat"     // this process's liveness in the database; dispatch_engine_up from everyone's
	ModuleBeat        = "beat"          // the heartbeat's loop, started after every service
	ModuleRetention   = "retention"     // prunes what is kept only for a while (one process at a time: a lease)
	ModuleConnect     = "kafka-connect" // the Kafka Connect worker and its REST API (--connect-addr, :8083; INC-008)
	ModuleReadModel   = "read-model"    // the search index the elasticsearch-sink fills (INC-009)
	// ModuleReplication is service replication-agent: master data from the
	// --replicate-from regions to this one (INC-012).
	ModuleReplication = "replication-agent"
	ModuleRecon       = "recon" // the wallets' reconciliation: runs on demand, its history's metrics
	// ModuleReconCron is the nightly reconciliation's schedule (runbook
	// INC-010's job): in every process, one run a day under a lease.
	ModuleReconCron = "wallet-reconciliation-cron"
)

// module is one row of the table: a name, what it needs opened first, and
// its constructor. init may return a service, which the App starts right
// after and stops in reverse order.
type module struct {
	name string
	deps []string
	init func(a *App, ctx context.Context) (startstop.Service, error)
}

// modules is the table behind --services, in the manner of dskit's
// modules.Manager. A new subsystem is one row here.
var modules = []module{
	{ModuleStore, nil, (*App).initStore},
	{ModuleEventBus, []string{ModuleStore}, (*App).initBus},
	{ModuleRedis, nil, (*App).initRedis},
	{ModuleOrders, []string{ModuleStore}, (*App).initOrders},
	{ModuleFlags, []string{ModuleStore}, (*App).initFlags},
	{ModuleHub, []string{ModuleRedis}, (*App).initHub},
	{ModuleBroadcaster, []string{ModuleRedis, ModuleHub}, (*App).initBroadcaster},
	{ModuleWallet, []string{ModuleStore}, (*App).initWallet},
	{ModuleRecon, []string{ModuleWallet, ModuleStore}, (*App).initRecon},
	{ModuleEngine, []string{ModuleWallet, ModuleStore, ModuleEventBus, ModuleOrders, ModuleFlags, ModuleHub, ModuleBroadcaster}, (*App).initEngine},
	{ModuleRelay, []string{ModuleStore, ModuleEventBus}, (*App).initRelay},
	{ModulePayments, []string{ModuleStore}, (*App).initPayments},
	{ModuleIntegration, []string{ModuleFlags, ModuleRedis}, (*App).initIntegrations},
	{ModuleLogins, []string{ModuleStore, ModuleRedis}, (*App).initLogins},
	// The Connect worker and the read model come before ops and the server,
	// which serve the read model's operations where the worker runs.
	{ModuleReadModel, []string{ModuleStore}, (*App).initReadModel},
	{ModuleConnect, []string{ModuleStore, ModuleEventBus, ModuleReadModel}, (*App).initConnect},
	{ModuleOps, []string{ModuleWallet, ModuleRecon, ModuleStore, ModuleEventBus, ModuleRedis, ModuleFlags, ModuleEngine, ModulePayments, ModuleIntegration, ModuleLogins}, (*App).initOps},
	// The heartbeat object comes before the server (its checks and stats
	// read it); it beats from the end of the table (ModuleBeat), once the
	// services run, and stops beating first.
	{ModuleHeartbeat, []string{ModuleStore, ModuleEngine, ModuleHub}, (*App).initHeartbeat},
	{ModuleServer, []string{ModuleStore, ModuleEventBus, ModuleOrders, ModuleFlags, ModuleHub, ModuleEngine, ModulePayments, ModuleIntegration, ModuleWallet, ModuleRecon, ModuleLogins, ModuleOps, ModuleHeartbeat}, (*App).initServer},

	{ServiceAPI, []string{ModuleServer}, nil},
	{ServiceOrders, []string{ModuleOrders, ModuleWallet, ModuleEventBus, ModuleServer}, (*App).initOrderIntake},
	{ServiceDispatchEngine, []string{ModuleEngine, ModuleServer}, (*App).initDispatchEngine},
	{ServiceOutboxRelay, []string{ModuleRelay, ModuleServer}, (*App).initOutboxRelay},
	{ServiceIntegration, []string{ModulePayments, ModuleServer}, (*App).initIntegration},
	{ServiceFraud, []string{ModuleWallet, ModuleStore, ModuleEventBus, ModuleRedis, ModuleServer}, (*App).initFraud},

	{ModuleBeat, []string{ModuleHeartbeat}, (*App).initBeat},
	{ModuleRetention, []string{ModuleStore, ModuleEventBus, ModuleServer}, (*App).initRetention},
	{ModuleReplication, []string{ModuleStore, ModuleEventBus, ModuleServer}, (*App).initReplication},
	{ModuleReconCron, []string{ModuleRecon, ModuleServer}, (*App).initReconCron},
}

// alwaysOn are the modules every process runs whatever --services says.
var alwaysOn = []string{ModuleServer, ModuleFlags, ModuleBroadcaster, ModuleBeat, ModuleRetention, ModuleReconCron}

// order returns the modules that targets need, in table order. The table
// lists every module after its dependencies (TestModuleOrder checks it), so
// that order is a dependency order, and a stable one.
func order(targets []string) ([]module, error) {
	byName := map[string]module{}
	for _, m := range modules {
		byName[m.name] = m
	}
	need := map[string]bool{}
	var visit func(name string) error
	visit = func(name string) error {
		m, ok := byName[name]
		if !ok {
			return fmt.Errorf("app: unknown module %q", name)
		}
		if need[name] {
			return nil
		}
		need[name] = true
		for _, d := range m.deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		return nil
	}
	for _, t := range targets {
		if err := visit(t); err != nil {
			return nil, err
		}
	}
	var out []module
	for _, m := range modules {
		if need[m.name] {
			out = append(out, m)
		}
	}
	return out, nil
}

// running is a started module.
type running struct {
	name string
	svc  startstop.Service
}

// Open opens and starts the modules that Cfg.Services asks for, in
// dependency order; on error it stops what it started.
func (a *App) Open(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	if a.Cfg.Now == nil {
		a.Cfg.Now = time.Now
	}
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	a.Registry = prometheus.NewRegistry()
	a.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.services, err = a.Cfg.ServiceSet(); err != nil {
		return err
	}
	targets := slices.Clone(alwaysOn)
	for s := range a.services {
		targets = append(targets, s)
	}
	if a.Cfg.ConnectOnly {
		targets = nil
	}
	if a.Cfg.ConnectAddr != "" {
		targets = append(targets, ModuleConnect)
	}
	if a.Cfg.ReplicateOnly {
		targets, a.services = slices.Clone(alwaysOn), map[string]bool{}
	}
	if a.Cfg.ReplicateFrom != "" {
		targets = append(targets, ModuleReplication)
	}
	mods, err := order(targets)
	if err != nil {
		return err
	}
	a.failed = make(chan struct{})
	// The modules run until Close, whatever happens to Open's context.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a.cancel = cancel
	a.mu.Lock()
	a.runCtx = runCtx
	a.mu.Unlock()
	for _, m := range mods {
		if m.init == nil {
			continue
		}
		svc, err := m.init(a, ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		if svc == nil {
			continue
		}
		a.mu.Lock()
		a.running = append(a.running, running{m.name, svc})
		a.mu.Unlock()
		if err := svc.Start(runCtx); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
	}
	if a.HTTP != nil {
		a.Log.Info("smp serving", "url", a.HTTP.URL(), "services", a.Cfg.Services, "database", a.Store.Dialect(), "reads", a.Store.ReadTarget())
	}
	if a.ConnectAPI != nil {
		a.Log.Info("kafka-connect serving", "url", a.ConnectAPI.URL(), "connectors", a.Connect.Connectors())
	}
	return nil
}

// Close stops the running modules in reverse order and closes the
// backends, each within 10 s; safe after a failed Open and twice.
func (a *App) Close() error {
	a.mu.Lock()
	rs := a.running
	a.running = nil
	a.mu.Unlock()
	var errs []error
	for i := len(rs) - 1; i >= 0; i-- {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := rs[i].svc.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", rs[i].name, err))
		}
		cancel()
	}
	if a.cancel != nil {
		a.cancel()
	}
	return errors.Join(errs...)
}

// StopModule stops one running module, as if that part of the process
// had died (the runbook's incidents are reproduced this way: the
// dispatch-engine module is the engine and its consumer group together).
// ENOTFOUND if no module of that name runs.
func (a *App) StopModule(ctx context.Context, name string) error {
	a.mu.Lock()
	i := slices.IndexFunc(a.running, func(r running) bool { return r.name == name })
	if i < 0 {
		a.mu.Unlock()
		return smp.Errorf(smp.ENOTFOUND, "no running module %q", name)
	}
	r := a.running[i]
	a.running = slices.Delete(slices.Clone(a.running), i, i+1)
	a.stopped = append(a.stopped, r)
	a.mu.Unlock()
	return r.svc.Stop(ctx)
}

// StartModule starts again a module StopModule stopped, as a restarted
// pod would run it (the runbook's Option A for INC-001). ENOTFOUND if no
// stopped module has that name.
func (a *App) StartModule(ctx context.Context, name string) error {
	a.mu.Lock()
	i := slices.IndexFunc(a.stopped, func(r running) bool { return r.name == name })
	if i < 0 || a.runCtx == nil {
		a.mu.Unlock()
		return smp.Errorf(smp.ENOTFOUND, "no stopped module %q", name)
	}
	r := a.stopped[i]
	a.stopped = slices.Delete(slices.Clone(a.stopped), i, i+1)
	a.running = append(a.running, r)
	runCtx := a.runCtx
	a.mu.Unlock()
	if err := r.svc.Start(runCtx); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// Fail stops the process: a module that cannot go on calls it; Failed is
// closed and Err returns err. Only the first failure counts.
func (a *App) Fail(module string, err error) {
	a.failOnce.Do(func() {
		a.failErr = fmt.Errorf("%s: %w", module, err)
		a.Log.Error("module failed; stopping", "module", module, "err", err)
		if a.failed != nil {
			close(a.failed)
		}
	})
}

// Failed is closed when a module has failed; cmd/smp then closes the App
// and exits non-zero.
func (a *App) Failed() <-chan struct{} { return a.failed }

// Err is the first module failure, or nil.
func (a *App) Err() error {
	select {
	case <-a.failed:
		return a.failErr
	default:
		return nil
	}
}

// Modules are the running modules' names, in start order.
func (a *App) Modules() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, r := range a.running {
		out = append(out, r.name)
	}
	return out
}

// closer is a backend as a module: nothing to start, Close to stop.
type closer func() error

func (c closer) Start(context.Context) error { return nil }
func (c closer) Stop(context.Context) error  { return c() }

func (a *App) initStore(ctx context.Context) (startstop.Service, error) {
	var err error
	if a.Store, err = OpenStore(ctx, a.Cfg, a.Log, a.Registry); err != nil {
		return nil, err
	}
	return closer(a.Store.Close), nil
}

func (a *App) initBus(ctx context.Context) (startstop.Service, error) {
	if err := a.openBus(); err != nil {
		return nil, err
	}
	return closer(a.Bus.Close), nil
}

func (a *App) initRedis(ctx context.Context) (startstop.Service, error) {
	if a.Cfg.RedisAddr == "" {
		return nil, nil
	}
	var err error
	if a.Redis, err = redisstore.Open(ctx, redisstore.Config{Addr: a.Cfg.RedisAddr, Prefix: a.Cfg.RedisPrefix, PoolSize: a.Cfg.RedisPoolSize}); err != nil {
		return nil, err
	}
	if err := a.Registry.Register(redisstore.NewCollector(a.Redis)); err != nil {
		a.Redis.Close()
		return nil, err
	}
	return closer(a.Redis.Close), nil
}

func (a *App) initOrders(ctx context.Context) (startstop.Service, error) {
	var err error
	if a.Consumed, err = smpbus.NewMetrics(a.Registry); err != nil {
		return nil, err
	}
	a.Orders, err = orders.New(ctx, a.Store, orders.Config{StuckAfter: a.Cfg.StuckAfter, Now: a.Cfg.Now, Registerer: a.Registry, Logger: a.Log})
	return nil, err
}

func (a *App) initFlags(ctx context.Context) (startstop.Service, error) {
	var err error
	if a.Flags, err = flags.New(ctx, a.Store, a.Cfg.Now); err != nil {
		return nil, err
	}
	if err := a.Registry.Register(flags.NewCollector(a.Flags)); err != nil {
		return nil, err
	}
	return a.Flags, nil
}

func (a *App) initHub(ctx context.Context) (startstop.Service, error) {
	cfg := wsapi.Config{Now: a.Cfg.Now, Logger: a.Log, Registerer: a.Registry}
	if a.Redis != nil {
		host, _ := os.Hostname()
		cfg.Sessions, cfg.Process = a.Redis.Sessions(), fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	var err error
	// The server comes later in the table; technicians connect only once it serves.
	a.Hub, err = wsapi.NewHub(func(ctx context.Context, r *http.Request) (string, error) { return a.HTTP.TechnicianAuth(ctx, r) }, cfg)
	return a.Hub, err
}

func (a *App) initBroadcaster(ctx context.Context) (startstop.Service, error) {
	if a.Redis == nil {
		return nil, nil
	}
	// Offers for technicians connected to another process go through Redis.
	a.broadcaster = redisstore.NewBroadcaster(a.Redis, a.Hub, a.Log)
	return a.broadcaster, nil
}

func (a *App) initEngine(ctx context.Context) (startstop.Service, error) {
	deps := dispatch.Deps{Store: a.Store, Orders: a.Orders, Flags: a.Flags, Notifier: a.Hub, Cities: a.Orders.Cities(), OfferGate: a.Wallet.OfferGate,
		Queue: inmem.NewQueue(), Invitations: inmem.NewInvitations(), Geo: inmem.NewGeo(), Locker: inmem.NewLocker()}
	if a.Redis != nil {
		deps.Queue, deps.Invitations, deps.Geo, deps.Locker = a.Redis.Queue(), a.Redis.Invitations(), a.Redis.Geo(), a.Redis.Locker()
		deps.Notifier = a.broadcaster
	}
	// Dispatch on commit: the order service pushes each order it commits
	// onto the engine's queue, where one drains it: Redis's is shared by
	// every process; the in-process one only by this process's engine
	// (elsewhere the engine's sweeper finds the orders in the database).
	if a.Redis != nil || a.services[ServiceDispatchEngine] {
		a.queue = deps.Queue
		a.Orders.SetDispatch(orders.IntakeConfig{Queue: a.queue, Flags: a.Flags})
	}
	// Every process has an engine: it is the technicians' gateway and
	// answers ops; only a dispatch-engine process starts it (and exports
	// its metrics; dispatch_engine_up comes from the heartbeats, in every
	// process).
	reg := prometheus.Registerer(a.Registry)
	if !a.services[ServiceDispatchEngine] {
		reg = nil
	}
	var err error
	if a.Engine, err = dispatch.New(deps, dispatch.Config{InvitationTTL: a.Cfg.InvitationTTL, RetryAfter: a.Cfg.RetryAfter,
		BackpressureThreshold: a.Cfg.BackpressureThreshold, Now: a.Cfg.Now, Logger: a.Log, Registerer: reg}); err != nil {
		return nil, err
	}
	a.Hub.SetGateway(a.Engine)
	a.Flags.OnChange(func(name string, v bool) {
		if name == smp.FlagEnableAutoDispatch && v {
			a.Engine.TriggerSweep()
		}
	})
	return nil, nil
}

func (a *App) initHeartbeat(ctx context.Context) (startstop.Service, error) {
	host, _ := os.Hostname()
	cfg := dispatch.HeartbeatConfig{Store: a.Store, ID: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), uuid.NewString()[:8]), Services: a.Cfg.Services,
		Connections: a.Hub.Connections, Interval: a.Cfg.HeartbeatInterval, Now: a.Cfg.Now, Logger: a.Log, Registerer: a.Registry}
	if a.services[ServiceDispatchEngine] {
		cfg.EngineUp = func() bool { return a.Engine.Healthy() == nil }
	}
	var err error
	a.Heartbeat, err = dispatch.NewHeartbeat(cfg)
	return nil, err
}

// initBeat starts the heartbeat's loop last, so the first beat already
// says whether the engine runs; it is stopped first.
func (a *App) initBeat(ctx context.Context) (startstop.Service, error) { return a.Heartbeat, nil }

func (a *App) initRelay(ctx context.Context) (startstop.Service, error) {
	var err error
	a.Relay, err = outbox.New(a.Store, a.Bus, outbox.Config{Signal: a.Store.OutboxSignal(), Locker: a.Store, Now: a.Cfg.Now, Logger: a.Log, Registerer: a.Registry,
		MaxInFlight: a.Cfg.RelayMaxInFlight})
	return nil, err
}

func (a *App) initPayments(ctx context.Context) (startstop.Service, error) {
	if a.services[ServiceIntegration] && a.Cfg.InsideWebhookSecrets == "" {
		a.Log.Warn("SMP_INSIDE_WEBHOOK_SECRET is not set: inside's payment webhooks will be refused with 503")
	}
	var err error
	a.Payments, err = payments.New(a.Store, payments.Config{Secrets: payments.ParseSecrets(a.Cfg.InsideWebhookSecrets), Webhooks: a.services[ServiceIntegration], PaymentDueAfter: a.Cfg.PaymentDueAfter,
		Backoff: a.Cfg.PaymentRetryBackoff, Now: a.Cfg.Now, Logger: a.Log, Registerer: a.Registry})
	return nil, err
}

func (a *App) initWallet(ctx context.Context) (startstop.Service, error) {
	var err error
	if a.services[ServiceIntegration] && a.Cfg.VNPayHashSecrets == "" {
		a.Log.Warn("SMP_VNPAY_HASH_SECRET is not set: VNPay top-ups answer 503 and IPNs 99")
	}
	v := wallet.VNPay{TmnCode: a.Cfg.VNPayTmnCode, Secrets: payments.ParseSecrets(a.Cfg.VNPayHashSecrets), PayURL: a.Cfg.VNPayPayURL,
		ReturnURL: a.Cfg.VNPayReturnURL, APIURL: a.Cfg.VNPayAPIURL}
	a.Wallet, err = wallet.New(a.Store, wallet.Config{VNPay: v, Now: a.Cfg.Now, Logger: a.Log, Registerer: a.Registry, LargeValueVND: a.Cfg.LargeValueVND})
	return nil, err
}

// initRecon builds the wallets' reconciliation (package recon): VNPay's
// daily files (--vnpay-files-url) behind a breaker, missed notifications
// applied through the wallet service's querydr; its metrics read the
// stored runs, so every process exports them.
func (a *App) initRecon(ctx context.Context) (startstop.Service, error) {
	host, _ := os.Hostname()
	at := a.Cfg.ReconAt
	if a.Cfg.VNPayFilesURL == "" && at != "off" {
		at = "off" // nothing to reconcile against: no schedule (the missed-run alert says so)
	}
	var err error
	a.Recon, err = recon.New(recon.Config{Store: a.Store, Gateway: recon.NewVNPayFiles(a.Cfg.VNPayFilesURL, nil, 3, 5*time.Minute),
		Replayer: a.Wallet, Locker: a.Store, Owner: fmt.Sprintf("%s/%d", host, os.Getpid()), At: at, Now: a.Cfg.Now, Logger: a.Log,
		Registerer: a.Registry})
	return nil, err
}

// initReconCron starts the nightly schedule in every process, after the
// server: a lease lets one process run each day's reconciliation.
func (a *App) initReconCron(ctx context.Context) (startstop.Service, error) { return a.Recon, nil }

func (a *App) initIntegrations(ctx context.Context) (startstop.Service, error) {
	var err error
	a.integrations, err = a.openIntegrations()
	return nil, err
}

// initOps builds the status page and every operator action (package ops),
// which the admin API (and any other transport) calls.
func (a *App) initOps(ctx context.Context) (startstop.Service, error) {
	integ := a.integrations
	rules, err := deploy.AlertRules()
	if err != nil {
		return nil, err
	}
	a.Status = status.New(status.Config{FromAlerts: a.Cfg.StatusFromAlerts, CacheFor: 5 * time.Second, Now: a.Cfg.Now, Rules: rules}, a.Store)
	if a.MasterData, err = masterdata.New(masterdata.Config{Region: a.Cfg.Region, Owner: a.Cfg.MasterRegion, Now: a.Cfg.Now}, a.Store); err != nil {
		return nil, err
	}
	if a.Pricing, err = pricing.New(pricing.Config{Region: a.Cfg.Region, Owner: a.Cfg.MasterRegion, Currency: a.Cfg.DisplayCurrency,
		TaxCountry: a.Cfg.TaxCountry, TaxCode: a.Cfg.TaxCode, Now: a.Cfg.Now}, a.Store); err != nil {
		return nil, err
	}
	actCfg := ops.Config{MasterData: a.MasterData, Regions: a.Store, Store: a.Store, Groups: Subscriptions, Logger: a.Log, Flags: a.Flags, Payments: a.Payments, Wallets: a.Wallet, Recon: a.Recon, Status: a.Status, Dispatch: a.Engine,
		Bus: a.Bus, BusAdmin: a.Bus.(smp.BusAdmin), Now: a.Cfg.Now, Sessions: a.sessions, Technicians: a.Engine,
		LoggedOut: a.loggedOut}
	if a.ReadModel != nil {
		actCfg.ReadModel = a.ReadModel
	}
	if integ.Inside != nil {
		actCfg.Breakers = append(actCfg.Breakers, integ.Inside.Client)
	}
	if integ.WMS != nil {
		actCfg.Breakers = append(actCfg.Breakers, integ.WMS.Client)
	}
	if a.Redis != nil {
		actCfg.FlushCache, actCfg.CheckFlushPattern = a.Redis.FlushCache, redisstore.CheckFlushPattern
	}
	if a.Actions, err = ops.New(actCfg); err != nil {
		return nil, err
	}
	a.Catalog, err = catalog.New(catalog.Config{Store: a.Store, Now: a.Cfg.Now, Logger: a.Log, Suspended: a.technicianSuspended})
	return nil, err
}

func (a *App) initServer(ctx context.Context) (startstop.Service, error) {
	integ := a.integrations
	views := httpapi.Ops{BusAdmin: a.Bus.(smp.BusAdmin), Replica: a.Store.ReplicaLag, ReadTarget: a.Store.ReadTarget}
	var err error
	jwtv, err := auth.NewJWTVerifier(auth.JWTConfig{HS256Secret: []byte(a.Cfg.JWTHS256Secret), JWKSURL: a.Cfg.JWTJWKSURL, Issuer: a.Cfg.JWTIssuer,
		Audience: a.Cfg.JWTAudience, RoleClaim: a.Cfg.JWTRoleClaim, Now: a.Cfg.Now, Registerer: a.Registry})
	if err != nil {
		return nil, err
	}
	a.HTTP, err = httpapi.New(httpapi.Config{Addr: a.Cfg.Addr, AdminToken: a.Cfg.AdminToken, AlertmanagerToken: a.Cfg.AlertmanagerToken, JWT: jwtv, Logger: a.Log, Registerer: a.Registry, Gatherer: a.Registry,
		SampleEvery: a.Cfg.DashboardSampleEvery, Now: a.Cfg.Now, OnServeError: func(err error) { a.Fail(ModuleServer, err) },
		ReadTimeout: a.Cfg.HTTPReadTimeout, WriteTimeout: a.Cfg.HTTPWriteTimeout, IdleTimeout: a.Cfg.HTTPIdleTimeout, MaxConnsPerIP: a.Cfg.HTTPMaxConnsPerIP},
		httpapi.Deps{Store: a.Store, Fraud: a.Store, Orders: a.Orders, Cities: a.Orders.Cities, Engine: a.Engine, Flags: a.Flags, WS: a.Hub,
			Checks: a.checks(a.services), PublicAPI: a.services[ServiceAPI], Payments: a.Payments, Integration: a.services[ServiceIntegration],
			Integrations: integ, Ops: views, Actions: a.Actions, Status: a.Status, Heartbeat: a.Heartbeat, Wallets: a.Wallet, Recon: a.Recon, Catalog: a.Catalog,
			MasterData: a.MasterData, Pricing: a.Pricing, ReadModel: a.ReadModel, Logins: a.Logins, Sessions: a.sessions, SMSOutbox: a.smsOutbox()})
	return a.HTTP, err
}

// newRouter returns a bus.Router for a target's consumers (retry, dead
// letters, idempotence, panics and metrics: see package bus).
func (a *App) newRouter() (*smpbus.Router, error) {
	return smpbus.NewRouter(a.Bus, smpbus.Config{Metrics: a.Consumed, Registerer: a.Registry, Logger: a.Log})
}

func (a *App) initOrderIntake(ctx context.Context) (startstop.Service, error) {
	r, err := a.newRouter()
	if err != nil {
		return nil, err
	}
	// The intake, dispatch on commit's fallback, fills the engine's queue
	// as it moves orders still in 01 into 02 (the engine module, built in
	// every process, chose the queue; nil where nothing drains it).
	if err := a.Orders.AddIntake(r, orders.IntakeConfig{Queue: a.queue, Flags: a.Flags}); err != nil {
		return nil, err
	}
	// The wallet's commission on order.completed, on the same router.
	if err := a.Wallet.AddIntake(r); err != nil {
		return nil, err
	}
	return r, nil
}

// initDispatchEngine runs the engine, then its intake on a router (stopped
// first).
func (a *App) initDispatchEngine(ctx context.Context) (startstop.Service, error) {
	r, err := a.newRouter()
	if err != nil {
		return nil, err
	}
	if err := a.Engine.AddIntake(r); err != nil {
		return nil, err
	}
	return sequence{a.Engine, r}, nil
}

// sequence starts services in order (stopping the started ones if one
// fails) and stops them in reverse.
type sequence []startstop.Service

func (s sequence) Start(ctx context.Context) error {
	for i, svc := range s {
		if err := svc.Start(ctx); err != nil {
			_ = s[:i].Stop(context.WithoutCancel(ctx))
			return err
		}
	}
	return nil
}

func (s sequence) Stop(ctx context.Context) error {
	var errs []error
	for i := len(s) - 1; i >= 0; i-- {
		errs = append(errs, s[i].Stop(ctx))
	}
	return errors.Join(errs...)
}

func (a *App) initOutboxRelay(ctx context.Context) (startstop.Service, error) { return a.Relay, nil }

func (a *App) initIntegration(ctx context.Context) (startstop.Service, error) { return a.Payments, nil }

// initRetention runs the pruning job in every process; the lease in the
// database lets one prune at a time (package retention).
func (a *App) initRetention(ctx context.Context) (startstop.Service, error) {
	host, _ := os.Hostname()
	cfg := retention.Config{Store: a.Store, Locker: a.Store, Owner: fmt.Sprintf("%s/%d", host, os.Getpid()), Policies: a.Cfg.RetentionPolicies(),
		Every: a.Cfg.RetentionEvery, Now: a.Cfg.Now, Logger: a.Log, Registerer: a.Registry}
	if b, ok := a.Bus.(retention.BusPruner); ok {
		cfg.Bus = b // the embedded log; Kafka's retention is the brokers'
	}
	return retention.New(cfg)
}
