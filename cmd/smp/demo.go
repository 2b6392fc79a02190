package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"smp"
	"smp/app"
	"smp/auth"
	"smp/catalog"
	"smp/payments"
	"smp/sim"
)

func (c *cli) demoCmd() *cobra.Command {
	var cfg Config
	var techs, customers int
	var rate float64
	var duration, every time.Duration
	var regions string
	fs := flag.NewFlagSet("smp demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.register(fs)
	fs.IntVar(&techs, "technicians", 200, "simulated technicians (connected over WebSocket)")
	fs.IntVar(&customers, "customers", 50, "simulated customers")
	fs.Float64Var(&rate, "order-rate", 2, "orders per second placed by simulated customers")
	fs.DurationVar(&duration, "duration", 0, "stop after this long (0: until Ctrl-C)")
	fs.StringVar(&regions, "regions", "", "run these regions in this process (asia,china,us), each on its own embedded database and log under --data-dir/<region>, with replication between them and a master-data simulator in the master region (--master-region, or the first listed)")
	fs.DurationVar(&every, "masterdata-every", 3*time.Second, "with --regions: how often the simulator changes master data in the master region")
	// The demo talks to a person: readable logs, warnings only.
	fs.Lookup("log-level").DefValue, fs.Lookup("log-format").DefValue = "warn", "text"
	fs.Set("log-level", "warn")
	fs.Set("log-format", "text")
	cmd := &cobra.Command{Use: "demo", Short: "serve + seeded data + simulated technicians and customers"}
	return c.leaf(cmd, fs, func([]string) error {
		if cmd.Flags().Changed("regions") {
			return runDemoRegions(c.ctx, cfg, regions, every, duration, c.stdout, c.stderr)
		}
		return runDemo(c.ctx, cfg, demoLoad{techs, customers, rate, duration}, c.stdout, c.stderr)
	})
}

// demoLoad is the simulated load of smp demo.
type demoLoad struct {
	techs, customers int
	rate             float64
	duration         time.Duration
}

func runDemo(ctx context.Context, cfg Config, load demoLoad, stdout, stderr io.Writer) error {
	techs, customers, rate, duration := load.techs, load.customers, load.rate, load.duration
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg.fromEnv()
	if techs <= 0 || customers <= 0 || rate <= 0 {
		return usageError{"--technicians, --customers and --order-rate must be positive"}
	}
	if cfg.MySQLDSN != "" && cfg.DataDir == app.DefaultConfig().DataDir {
		// On MySQL only the read model's embedded index is on local disk:
		// the demo keeps it in a directory of its own, gone when it ends,
		// rather than leave ./smp-data behind.
		dir, err := os.MkdirTemp("", "smp-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.DataDir = dir
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = sim.NewToken("adm_")
	}
	if cfg.ConnectAddr == "" {
		// The Kafka Connect worker beside the API: :8083 on --addr's host,
		// or a free port when --addr asks for one.
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return usageError{"--addr: " + err.Error()}
		}
		if port != "0" {
			port = "8083"
		}
		cfg.ConnectAddr = net.JoinHostPort(host, port)
	}
	if need := techs + 64; cfg.HTTPMaxConnsPerIP > 0 && cfg.HTTPMaxConnsPerIP < need {
		// The simulated technicians and customers all connect from here.
		cfg.HTTPMaxConnsPerIP = need
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
	// The seed file (sim/seed.yaml) goes through the same import as smp
	// import: validated, audited, unchanged rows left alone on a restart.
	cat, err := catalog.New(catalog.Config{Store: db})
	if err != nil {
		db.Close()
		return err
	}
	ds, _, err := sim.LoadDemo(ctx, cat, db, smp.Principal{Name: "system:demo", Role: smp.RoleAdmin},
		sim.SeedConfig{Technicians: techs, Customers: customers, Seed: 1}, auth.HashToken)
	db.Close()
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}

	// The third parties, simulated: inside (customer info, payments, signed
	// webhooks) and wms (stock), unless real ones are configured.
	var inside *sim.Inside
	if cfg.InsideURL == "" {
		if cfg.InsideWebhookSecrets == "" {
			cfg.InsideWebhookSecrets = sim.NewToken("whsec_")
		}
		inside = &sim.Inside{Secret: payments.ParseSecrets(cfg.InsideWebhookSecrets)[0], AutoPay: true, PayAfter: 2 * time.Second}
		url, stop, err := serveSim(inside)
		if err != nil {
			return err
		}
		defer stop()
		cfg.InsideURL = url
	}
	if cfg.WMSURL == "" {
		url, stop, err := serveSim(&sim.WMS{})
		if err != nil {
			return err
		}
		defer stop()
		cfg.WMSURL = url
	}

	// VNPay, simulated unless configured: partners top up their wallets
	// through it (payment page paid at once, IPN a second later).
	var vnp *sim.VNPay
	if cfg.VNPayHashSecrets == "" {
		cfg.VNPayTmnCode, cfg.VNPayHashSecrets = "SMPDEMO1", sim.NewToken("vnp_")
		vnp = &sim.VNPay{TmnCode: cfg.VNPayTmnCode, Secret: []byte(cfg.VNPayHashSecrets), AutoPay: true, Seed: 1}
		vnp.SetFaults(sim.VNPayFaults{Delay: time.Second})
		url, stop, err := serveSim(vnp)
		if err != nil {
			return err
		}
		defer stop()
		cfg.VNPayPayURL, cfg.VNPayAPIURL, cfg.VNPayFilesURL = url+"/paymentv2/vpcpay.html", url+"/merchant_webapi/api/transaction", url
	}

	if cfg.SMSURL == "" && cfg.SMS == nil {
		cfg.SMS = &sim.SMS{} // the texts are read back from its outbox (demoLogins)
	}
	app := &App{Cfg: cfg.Config, Log: cfg.logger(stderr)}
	if err := app.Open(ctx); err != nil {
		return err
	}
	base := app.HTTP.URL()
	if inside != nil {
		inside.WebhookURL = base + "/integrations/inside/payment-webhook"
	}
	if vnp != nil {
		vnp.IPNURL = base + "/integrations/vnpay/ipn"
		defer vnp.Close()
	}
	fmt.Fprintf(stdout, `SMP demo running on %s

  API            %s/v1/orders
  Technician WS  %s/v1/technicians/ws
  Health         %s/health
  Metrics        %s/metrics
  Admin portal   %s/admin/   (log in with the admin token)
  Status page    %s/status
  Admin stats    curl -H 'Authorization: Bearer %s' %s/admin/stats
  Admin token    %s   (role admin)
  A customer     curl -H 'Authorization: Bearer %s' %s/v1/orders/<id>
  Third parties  inside %s, wms %s (simulated unless --inside-url/--wms-url)
  Kafka Connect  curl -H 'Authorization: Bearer %s' %s/connectors/smp-mysql-connector/status   (changes on smp.cdc.smp_order.*)

%d technicians from 20 partners are connecting; customers place %.1f orders/s. Ctrl-C stops.
`, demoBackends(cfg), base, "ws"+base[4:], base, base, base, base, cfg.AdminToken, base, cfg.AdminToken, ds.Customers[0].Token, base, cfg.InsideURL, cfg.WMSURL, cfg.AdminToken, app.ConnectAPI.URL(), len(ds.Technicians), rate)

	demoNextSteps(stdout, base, cfg)
	demoLogins(ctx, app, base, ds, stdout)

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

	// Customers pay completed orders through inside, which reports back
	// with signed webhooks.
	tokens := map[string]string{}
	for _, c := range ds.Customers {
		tokens[c.ID] = c.Token
	}
	wg.Add(1)
	go func() { defer wg.Done(); payCompleted(simCtx, app, base, tokens) }()
	if vnp != nil {
		wg.Add(1)
		go func() { defer wg.Done(); topUpPartners(simCtx, base, cfg.AdminToken) }()
	}

	// A progress line every 5 s, and a last one at the stop: a short run
	// (--duration) shows its figures too.
	start := time.Now()
	progress := func(ctx context.Context) {
		st, err := app.Engine.Stats(ctx)
		if err != nil {
			fmt.Fprintf(stdout, "[%3.0fs] the engine's figures are unavailable: %v\n", time.Since(start).Seconds(), err)
			return
		}
		s := st.OrdersPerStage
		ev, _ := app.Store.CountInboxEvents(ctx)
		tops, _ := app.Store.FindWalletEntries(ctx, smp.WalletEntryFilter{Type: smp.WalletTopup, Limit: 10000})
		comms, _ := app.Store.FindWalletEntries(ctx, smp.WalletEntryFilter{Type: smp.WalletCommission, Limit: 10000})
		fmt.Fprintf(stdout, "[%3.0fs] orders 01=%d 02=%d 03=%d 04=%d 05=%d 09=%d | technicians online=%d | queues HCMC=%d HN=%d DN=%d | first offer p50=%.0fms | assigned p50=%.0fms p99=%.0fms | payments processed=%d dlq=%d | wallets topups=%d commissions=%d\n",
			time.Since(start).Seconds(), s[smp.StageCreated], s[smp.StageDispatching], s[smp.StageAssigned], s[smp.StageInProgress],
			s[smp.StageCompleted], s[smp.StageCancelled], st.WebSocketConnections, st.QueueLength["HCMC"], st.QueueLength["HN"], st.QueueLength["DN"],
			st.FirstOfferLatencyMs.P50, st.DispatchLatencyMs.P50, st.DispatchLatencyMs.P99, ev[smp.InboxProcessed], ev[smp.InboxDLQ],
			len(tops), len(comms))
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			progress(ctx)
		}
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	progress(fctx)
	cancel()
	fmt.Fprintln(stdout, "stopping demo")
	stopSim()
	app.HTTP.Stop(context.Background())
	wg.Wait()
	return app.Close()
}

// serveSim serves a simulated third party on a loopback port.
func serveSim(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// payCompleted asks inside to collect every completed, unpaid order, as
// its customer would from the app.
func payCompleted(ctx context.Context, app *App, base string, tokens map[string]string) {
	asked := map[string]bool{}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		done, err := app.Store.FindOrders(ctx, smp.OrderFilter{Stage: smp.StageCompleted, Limit: 200})
		if err != nil {
			continue
		}
		for _, o := range done {
			if asked[o.ID] || o.PaymentStatus != smp.PaymentPending {
				continue
			}
			asked[o.ID] = true
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/orders/"+o.ID+"/pay", nil)
			req.Header.Set("Authorization", "Bearer "+tokens[o.CustomerID])
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}
}

// topUpPartners has a partner top its wallet up every 8 seconds, as its
// finance staff would: POST /v1/partners/{id}/topups, then the payment
// page (the simulated VNPay pays it and sends the IPN). Twenty partners in
// turn make each top up every 160 s, under the fraud rules' velocity (more
// than 5 in 10 minutes), whose soft block the detector applies.
func topUpPartners(ctx context.Context, base, token string) {
	tick := time.NewTicker(8 * time.Second)
	defer tick.Stop()
	client := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for i := 0; ; i++ {
		if i > 0 { // the first at once
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		body := strings.NewReader(fmt.Sprintf(`{"amount_vnd":%d}`, 100_000*(1+i%10)))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("%s/v1/partners/P%03d/topups", base, 1+i%20), body)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		var c struct {
			PaymentURL string `json:"payment_url"`
		}
		json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if c.PaymentURL == "" {
			continue
		}
		if req, err = http.NewRequestWithContext(ctx, http.MethodGet, c.PaymentURL, nil); err == nil {
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}
}

// demoLogins logs the first simulated technicians in as the app does (a
// code by SMS for a session token, read from the SMS simulator's outbox)
// before they open their WebSocket; the others keep their seeded tokens.
func demoLogins(ctx context.Context, app *App, base string, ds *sim.Dataset, stdout io.Writer) {
	if app.SMS == nil {
		return // a real SMS gateway: nobody here reads the texts
	}
	var done []string
	for i := range min(3, len(ds.Technicians)) {
		t := &ds.Technicians[i]
		if t.Phone == "" {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		token, err := sim.Login(lctx, base, t.Phone, app.SMS)
		cancel()
		if err != nil {
			app.Log.Warn("demo: a technician's SMS login failed; they use their seeded token", "technician_id", t.ID, "err", err)
			continue
		}
		t.Token = token
		done = append(done, t.ID)
	}
	if len(done) > 0 {
		fmt.Fprintf(stdout, `  SMS logins     %v logged in with a code by SMS (POST /v1/auth/otp, /v1/auth/verify); the simulated texts:
                 curl -H 'Authorization: Bearer %s' %s/admin/sms/outbox
  Sessions       curl -H 'Authorization: Bearer %s' '%s/admin/sessions?owner=%s'

`, done, app.Cfg.AdminToken, base, app.Cfg.AdminToken, base, done[0])
	}
}

// demoBackends names the backends this demo really uses.
func demoBackends(cfg Config) string {
	db, queues, events := "the embedded SQLite in "+filepath.Join(cfg.DataDir, "smp.db"), "in-process queues", "the embedded event log in "+filepath.Join(cfg.DataDir, "events.db")
	if cfg.MySQLDSN != "" {
		host := "MySQL"
		if i, j := strings.Index(cfg.MySQLDSN, "tcp("), strings.Index(cfg.MySQLDSN, ")"); i >= 0 && j > i {
			host += " at " + cfg.MySQLDSN[i+4:j]
		}
		db, events = host, "the event log in "+host+" (bus_* tables)"
	}
	if cfg.RedisAddr != "" {
		queues = "Redis at " + cfg.RedisAddr
	}
	if b := cfg.KafkaBrokerList(); len(b) > 0 {
		events = "Kafka at " + strings.Join(b, ",")
	}
	return fmt.Sprintf("%s, %s, %s", db, queues, events)
}

// demoNextSteps tells the person at the terminal what to try next, and
// what the dispatch latency it prints means.
func demoNextSteps(w io.Writer, base string, cfg Config) {
	secret := strings.Split(cfg.InsideWebhookSecrets, ",")[0]
	fmt.Fprintf(w, `
Next, in another shell:
  export SMP_SERVER=%s SMP_ADMIN_TOKEN=%s
  export SMP_INSIDE_WEBHOOK_SECRET=%s   # inside's webhook signing secret in use
  smp ctl stats                        # engine, queues, connections, latencies
  smp runbook check --all              # the runbook's Detect and Triage steps, INC-001 to INC-008
  body='{"test":true}'; ts=$(date +%%s); sig=$(printf '%%s.%%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$SMP_INSIDE_WEBHOOK_SECRET" | sed 's/^.* //')
  curl -s -X POST -H "%s: t=$ts,v1=$sig" -d "$body" $SMP_SERVER/integrations/inside/payment-webhook   # a signed test webhook: {"status":"test"}

Every 5 s a progress line follows, and a last one at the stop. "first offer" is the time from an
order to its first offer on a technician's phone: the engine's own speed. "assigned" runs until a technician accepts, so it
includes the simulated technicians' thinking time, offers that expired unanswered (each waits
--invitation-ttl) and rounds retried after --dispatch-retry-after: a long tail there is slow
technicians, not a slow dispatch.

`, base, cfg.AdminToken, secret, payments.SignatureHeader)
}
