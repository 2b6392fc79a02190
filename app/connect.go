package app

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"smp"
	"smp/auth"
	"smp/cdc"
	"smp/connect"
	"smp/connectapi"
	"smp/internal/startstop"
	"smp/readmodel"
	"smp/readmodel/bleveindex"
	"smp/readmodel/esindex"
)

// initConnect builds the Kafka Connect worker (offsets in the store) and
// its REST API on ConnectAddr, behind the admin tokens the platform's API
// takes. Connector configurations and target states are kept in the
// store; source offsets on Kafka's connect-offsets topic when the bus is
// Kafka, else in the store. The worker runs smp-mysql-connector onto the event bus, created
// with its default configuration (snapshot.mode initial) the first time:
// on the embedded default (SQLite) the change-table source, on MySQL the
// binlog source reading the primary's binlog (--mysql-dsn; its database,
// smp_order in production, names the topics). A watchdog restarts what
// fails (ConnectMaxRestarts times, then leaves it FAILED). The worker
// starts before its API and stops after it.
func (a *App) initConnect(ctx context.Context) (startstop.Service, error) {
	plugins := map[string]connect.Plugin{}
	var defaults map[string]string
	// rows is the database side of the drift check and compare: the
	// tables themselves, with the change table's or the binlog's position.
	var rows readmodel.Rows
	switch a.Store.Dialect() {
	case "sqlite":
		p, err := cdc.NewEmbedded(cdc.Config{Store: a.Store, Publisher: a.Bus, Wake: a.Store.CommitSignal(), Now: a.Cfg.Now, Logger: a.Log, Registerer: a.Registry})
		if err != nil {
			return nil, err
		}
		plugins[cdc.Class], defaults = p, cdc.DefaultConfig()
		rows = a.Store
	case "mysql":
		p, err := cdc.NewBinlog(cdc.BinlogConfig{DSN: a.Cfg.MySQLDSN, Publisher: a.Bus, Now: a.Cfg.Now, Logger: a.Log, Registerer: a.Registry})
		if err != nil {
			return nil, err
		}
		plugins[cdc.Class], defaults = p, p.DefaultConfig()
		rows = readmodel.BinlogRows(p)
	}
	// The sink fills the read model on every backend.
	sink, err := readmodel.NewSink(readmodel.SinkConfig{Index: a.ReadIndex, Bus: a.Bus, Now: a.Cfg.Now, Logger: a.Log, Registerer: a.Registry})
	if err != nil {
		return nil, err
	}
	a.Sink = sink
	plugins[readmodel.Class] = sink
	// Source offsets are where Connect keeps them: the connect-offsets
	// topic when the bus is Kafka, the connect_offsets table otherwise.
	var offsets smp.ConnectOffsetStore = a.Store
	if a.Kafka != nil {
		offsets = a.Kafka.ConnectOffsets()
	}
	a.Connect, err = connect.New(connect.Config{WorkerID: a.Cfg.ConnectAddr, Plugins: plugins, Offsets: offsets, Configs: a.Store, Logger: a.Log, Registerer: a.Registry})
	if err != nil {
		return nil, err
	}
	// The stored connectors come back in the state operators left them
	// in; smp-mysql-connector is created with its defaults the first time.
	loaded, err := a.Connect.Load(ctx)
	if err != nil {
		return nil, err
	}
	if plugins[cdc.Class] != nil && !slices.Contains(loaded, cdc.ConnectorName) {
		if _, _, err := a.Connect.PutConfig(cdc.ConnectorName, defaults); err != nil {
			return nil, err
		}
	}
	if !slices.Contains(loaded, readmodel.ConnectorName) {
		if _, _, err := a.Connect.PutConfig(readmodel.ConnectorName, readmodel.DefaultConfig()); err != nil {
			return nil, err
		}
	}
	a.ConnectAPI, err = connectapi.New(connectapi.Config{Addr: a.Cfg.ConnectAddr, Worker: a.Connect,
		Auth: auth.NewAuthenticator(a.Store, a.Cfg.AdminToken), Logger: a.Log, Gatherer: a.Registry})
	if err != nil {
		return nil, err
	}
	// The watchdog restarts failed instances by itself, audited.
	dog := connect.NewWatchdog(a.Connect, connect.WatchdogConfig{MaxRestarts: a.Cfg.ConnectMaxRestarts, Now: a.Cfg.Now, Logger: a.Log,
		Audit: func(ctx context.Context, e smp.AuditEntry) error {
			return a.Store.InTx(ctx, func(tx smp.Tx) error { return tx.AddAudit(ctx, e) })
		}})
	// The read model's operations and its daily drift check (one process
	// at a time: the lease), which reads the tables from the database:
	// SQLite's snapshot with the change table's seq, MySQL's consistent
	// read with its binlog position.
	host, _ := os.Hostname()
	rmCfg := readmodel.ServiceConfig{Index: a.ReadIndex, Rows: rows, Connect: a.Connect, SourceConnector: cdc.ConnectorName, DeadLetters: a.Bus.(smp.BusAdmin),
		Sink: sink, Locker: a.Store, Owner: fmt.Sprintf("%s/%d", host, os.Getpid()), Now: a.Cfg.Now, Logger: a.Log.With("job", readmodel.JobName), Registerer: a.Registry,
		CustomerByPhone: func(ctx context.Context, phone string) (string, error) {
			c, err := a.Store.FindCustomerByPhone(ctx, phone)
			if err != nil {
				return "", err
			}
			return c.ID, nil
		}}
	if a.ReadModel, err = readmodel.NewService(rmCfg); err != nil {
		return nil, err
	}
	return sequence{a.Connect, a.ConnectAPI, dog, startstop.NewFunc(a.ReadModel.Run)}, nil
}

// initReadModel opens the read model's search index: the embedded bleve
// index under --data-dir/readmodel, or Elasticsearch with
// --readmodel-backend elasticsearch (not reached here: its calls answer
// unavailable while it is down). It is opened by the process that runs
// the Connect worker (the sink writes it); the API of that process reads
// it too.
func (a *App) initReadModel(ctx context.Context) (startstop.Service, error) {
	var x smp.SearchIndex
	var err error
	if a.Cfg.ReadModelBackend == ReadModelElasticsearch {
		var cfg esindex.Config
		if cfg, err = a.Cfg.ES.esIndexConfig(); err == nil {
			x, err = esindex.Open(cfg)
		}
		a.Log.Info("read model on Elasticsearch", "url", a.Cfg.ES.URL, "refresh", cmp.Or(a.Cfg.ES.Refresh, esindex.RefreshWaitFor))
	} else {
		x, err = bleveindex.Open(filepath.Join(a.Cfg.DataDir, "readmodel"))
	}
	if err != nil {
		return nil, err
	}
	a.ReadIndex = x
	return closer(x.Close), nil
}
