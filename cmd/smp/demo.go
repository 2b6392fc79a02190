package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"smp"
	"smp/httpapi"
	"smp/sim"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg Config
	var techs, customers int
	var rate float64
	var duration time.Duration
	fs := flag.NewFlagSet("smp demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.register(fs)
	fs.IntVar(&techs, "technicians", 200, "simulated technicians (connected over WebSocket)")
	fs.IntVar(&customers, "customers", 50, "simulated customers")
	fs.Float64Var(&rate, "order-rate", 2, "orders per second placed by simulated customers")
	fs.DurationVar(&duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	// The demo talks to a person: readable logs, warnings only.
	fs.Lookup("log-level").DefValue, fs.Lookup("log-format").DefValue = "warn", "text"
	fs.Set("log-level", "warn")
	fs.Set("log-format", "text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if techs <= 0 || customers <= 0 || rate <= 0 {
		return usageError{"--technicians, --customers and --order-rate must be positive"}
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = sim.NewToken("adm_")
	}
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}

	// Seed before the services load the catalogue.
	db, err := openStore(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	ds, err := sim.Seed(ctx, db, sim.SeedConfig{Technicians: techs, Customers: customers, Seed: 1}, httpapi.HashToken)
	db.Close()
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}

	app := &App{Cfg: cfg, Log: cfg.logger(stderr)}
	if err := app.Open(ctx); err != nil {
		return err
	}
	base := app.HTTP.URL()
	fmt.Fprintf(stdout, `SMP demo running on the embedded default (data in %s)

  API            %s/v1/orders
  Technician WS  %s/v1/technicians/ws
  Health         %s/health
  Metrics        %s/metrics
  Admin stats    curl -H 'Authorization: Bearer %s' %s/admin/stats
  Admin token    %s   (role admin)
  A customer     curl -H 'Authorization: Bearer %s' %s/v1/orders/<id>

%d technicians from 20 partners are connecting; customers place %.1f orders/s. Ctrl-C stops.
`, cfg.DataDir, base, "ws"+base[4:], base, base, cfg.AdminToken, base, cfg.AdminToken, ds.Customers[0].Token, base, len(ds.Technicians), rate)

	simCtx, stopSim := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, t := range ds.Technicians {
		st := sim.NewTechnician(base, t, sim.Behavior{}, uint64(i+1), app.Log)
		wg.Add(1)
		go func() { defer wg.Done(); st.Run(simCtx) }()
	}
	cust := &sim.Customers{BaseURL: base, Customers: ds.Customers, Cities: ds.Cities, Services: ds.Services, Rate: rate, Logger: app.Log, Seed: 1}
	wg.Add(1)
	go func() { defer wg.Done(); cust.Run(simCtx) }()

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	start := time.Now()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			st, err := app.Engine.Stats(ctx)
			if err != nil {
				continue
			}
			s := st.OrdersPerStage
			fmt.Fprintf(stdout, "[%3.0fs] orders 01=%d 02=%d 03=%d 04=%d 05=%d 09=%d | technicians online=%d | queues HCMC=%d HN=%d DN=%d | dispatch p50=%.0fms p99=%.0fms\n",
				time.Since(start).Seconds(), s[smp.StageCreated], s[smp.StageDispatching], s[smp.StageAssigned], s[smp.StageInProgress],
				s[smp.StageCompleted], s[smp.StageCancelled], st.WebSocketConnections, st.QueueLength["HCMC"], st.QueueLength["HN"], st.QueueLength["DN"],
				st.DispatchLatencyMs.P50, st.DispatchLatencyMs.P99)
		}
	}
	fmt.Fprintln(stdout, "stopping demo")
	stopSim()
	app.HTTP.Close(context.Background())
	wg.Wait()
	return app.Close()
}
