package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"smp/app"
	"smp/httpapi"
	"smp/sim"
)

const benchUsage = `smp bench SCENARIO|all [flags]: measure SMP beside a reference in the same run

Scenarios:
  dispatch          order created -> first offer on a technician's WebSocket, and -> assigned,
                    10,000 technicians online, open-loop order rates; the highest rate with p99 < 100 ms
  candidate-search  SMP's nearest-technician search beside Redis GEOSEARCH on the same technicians
  order-create      POST /v1/orders throughput beside the raw insert rate of the same store
  webhook-ingest    signed webhooks verified and durably stored, beside raw inserts
  events            outbox -> Kafka (kfake) -> consumer, beside raw franz-go produce+consume
  lifecycle         whole orders 01 -> 05 per second with simulated technicians
  all               every scenario

Backends (--backend): embedded (SQLite, in-process; default), mysql+redis (--mysql-dsn and
--redis-addr: a throwaway database and key prefix are made and removed), or all.
`

// benchLatency is a latency summary in milliseconds.
type benchLatency struct {
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// benchMeasure is one measured path: how many operations, how fast.
type benchMeasure struct {
	Name       string       `json:"name"`
	Ops        int          `json:"ops"`
	Seconds    float64      `json:"seconds"`
	Throughput float64      `json:"throughput"`
	Unit       string       `json:"unit"`
	Latency    benchLatency `json:"latency"`
}

// benchPoint is one offered load of a sweep (the dispatch scenario).
type benchPoint struct {
	Rate       float64      `json:"rate_per_s"`
	Orders     int          `json:"orders"`
	FirstOffer benchLatency `json:"first_offer"`
	Assigned   benchLatency `json:"assigned"`
	Reference  benchLatency `json:"reference"`
	Failed     int          `json:"failed"`
}

// benchResult is one scenario on one backend.
type benchResult struct {
	Scenario  string       `json:"scenario"`
	Backend   string       `json:"backend"`
	SMP       benchMeasure `json:"smp"`
	Reference benchMeasure `json:"reference"`
	// Ratio is SMP's throughput over the reference's (for dispatch: the
	// reference's p99 over SMP's, at the highest passing rate).
	Ratio float64        `json:"ratio"`
	Notes string         `json:"notes,omitempty"`
	Sweep []benchPoint   `json:"sweep,omitempty"`
	Extra map[string]any `json:"extra,omitempty"`
}

// benchReport is the whole run.
type benchReport struct {
	At      time.Time     `json:"at"`
	Quick   bool          `json:"quick"`
	Machine benchMachine  `json:"machine"`
	Results []benchResult `json:"results"`
}

type benchMachine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go"`
	OS        string `json:"os"`
	CPUModel  string `json:"cpu_model,omitempty"`
}

// recorder collects latencies from many goroutines.
type recorder struct {
	mu sync.Mutex
	d  []time.Duration
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.d)
}

func (r *recorder) summary() benchLatency {
	r.mu.Lock()
	d := slices.Clone(r.d)
	r.mu.Unlock()
	return summarize(d)
}

func summarize(d []time.Duration) benchLatency {
	if len(d) == 0 {
		return benchLatency{}
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return float64(d[max(0, min(i, len(d)-1))].Microseconds()) / 1000
	}
	return benchLatency{P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: float64(d[len(d)-1].Microseconds()) / 1000}
}

func measure(name, unit string, ops int, elapsed time.Duration, lat benchLatency) benchMeasure {
	return benchMeasure{Name: name, Ops: ops, Seconds: round3(elapsed.Seconds()), Throughput: round1(float64(ops) / elapsed.Seconds()), Unit: unit, Latency: lat}
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// benchEnv is what a scenario runs on.
type benchEnv struct {
	backend   string // embedded or mysql+redis
	quick     bool
	mysqlDSN  string // the server (a database is made per scenario)
	redisAddr string // for mysql+redis, and the GEOSEARCH reference
	log       io.Writer
	dir       string
	// technicians online in the dispatch scenario (0: 10,000, or 300 with --quick)
	technicians int
	// fleet: where the dispatch scenario's technicians run: "process" (a
	// child process), "inline" (this one), or "" (a child above 1,000)
	fleet string
}

func (e *benchEnv) logf(format string, args ...any) {
	fmt.Fprintf(e.log, "bench: "+format+"\n", args...)
}

// config is a platform configuration on this backend, with a fresh
// database and key prefix; cleanup removes them.
func (e *benchEnv) config(ctx context.Context) (Config, func(), error) {
	dir, err := os.MkdirTemp(e.dir, "app-")
	if err != nil {
		return Config{}, nil, err
	}
	cfg := Config{LogLevel: "error", LogFormat: "json", Config: app.Config{Addr: "127.0.0.1:0", DataDir: dir, AdminToken: sim.NewToken("bench_"),
		InvitationTTL: 20 * time.Second, RetryAfter: time.Second, StuckAfter: time.Hour, BackpressureThreshold: 100, Partitions: 12,
		PaymentRetryBackoff: time.Second, PaymentDueAfter: time.Hour, BreakerOpenFor: 30 * time.Second, DashboardSampleEvery: 5 * time.Second}}
	cleanup := func() { os.RemoveAll(dir) }
	if e.backend == "embedded" {
		return cfg, cleanup, nil
	}
	dsn, drop, err := createBenchDatabase(ctx, e.mysqlDSN)
	if err != nil {
		return Config{}, cleanup, err
	}
	prefix := "bench" + randomHex(4) + ":"
	cfg.MySQLDSN, cfg.RedisAddr, cfg.RedisPrefix, cfg.MySQLMaxConns = dsn, e.redisAddr, prefix, 64
	return cfg, func() {
		drop()
		dropRedisPrefix(e.redisAddr, prefix)
		cleanup()
	}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// createBenchDatabase makes a throwaway database on the DSN's server.
func createBenchDatabase(ctx context.Context, server string) (string, func(), error) {
	mc, err := mysql.ParseDSN(server)
	if err != nil {
		return "", nil, usageError{fmt.Sprintf("--mysql-dsn: %v", err)}
	}
	mc.DBName = ""
	db, err := sql.Open("mysql", mc.FormatDSN())
	if err != nil {
		return "", nil, err
	}
	name := "smp_bench_" + randomHex(4)
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4"); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("create bench database: %w", err)
	}
	mc.DBName = name
	mc.ParseTime = false
	return mc.FormatDSN(), func() {
		db.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+name)
		db.Close()
	}, nil
}

func dropRedisPrefix(addr, prefix string) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			rdb.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		rdb.Unlink(ctx, keys...)
	}
}

// startBenchApp seeds the data set and opens the whole platform.
func startBenchApp(ctx context.Context, cfg Config, seed sim.SeedConfig, mutate func(*Config)) (*App, *sim.Dataset, error) {
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	db, err := openStore(ctx, cfg, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	ds, err := sim.Seed(ctx, db, seed, httpapi.HashToken)
	db.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("seed: %w", err)
	}
	a := &App{Cfg: cfg.Config, Log: slog.New(slog.DiscardHandler)}
	if err := a.Open(ctx); err != nil {
		return nil, nil, err
	}
	return a, ds, nil
}

// app opens the whole platform on this backend, with a fresh database and
// the data set seeded; stop closes it and removes the data.
func (e *benchEnv) app(ctx context.Context, seed sim.SeedConfig, mutate func(*Config)) (*App, *sim.Dataset, func(), error) {
	cfg, cleanup, err := e.config(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	app, ds, err := startBenchApp(ctx, cfg, seed, mutate)
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	return app, ds, func() { app.Close(); cleanup() }, nil
}

type benchScenario struct {
	name string
	run  func(ctx context.Context, e *benchEnv) (benchResult, error)
}

var benchScenarios = []benchScenario{
	{"dispatch", benchDispatch},
	{"candidate-search", benchCandidateSearch},
	{"order-create", benchOrderCreate},
	{"webhook-ingest", benchWebhookIngest},
	{"events", benchEvents},
	{"lifecycle", benchLifecycle},
}

// benchOpts are smp bench's flags.
type benchOpts struct {
	quick                        bool
	backend, mysqlDSN, redisAddr string
	jsonOut, mdOut, chartOut     string
	cpuProfile, output           string
	technicians                  int
	fleet                        string
}

func (c *cli) benchCmd() *cobra.Command {
	var o benchOpts
	fs := flag.NewFlagSet("smp bench", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "a small, fast run (CI smoke): fewer technicians, operations and rates")
	fs.StringVar(&o.backend, "backend", "embedded", "embedded, mysql+redis or all")
	fs.StringVar(&o.mysqlDSN, "mysql-dsn", "", "MySQL server for the mysql+redis backend, e.g. root@tcp(127.0.0.1:3306)/ (a database is made and dropped)")
	fs.StringVar(&o.redisAddr, "redis-addr", "", "Redis for the mysql+redis backend (a key prefix is used and removed) and the GEOSEARCH reference")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.mdOut, "markdown", "", "also write the results as a markdown table to this file")
	fs.StringVar(&o.chartOut, "chart", "", "write an SVG chart of dispatch latency against offered load to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the run to this file")
	fs.StringVar(&o.output, "output", "markdown", "what to print: markdown or json")
	fs.StringVar(&o.fleet, "fleet", "", "where the dispatch scenario's simulated technicians run: process (a child process), inline, or empty (a child above 1,000)")
	fs.IntVar(&o.technicians, "technicians", 0, "technicians online in the dispatch scenario (default 10000; 300 with --quick)")
	var names []string
	for _, s := range benchScenarios {
		names = append(names, s.name)
	}
	cmd := &cobra.Command{
		Use:       "bench SCENARIO|all",
		Short:     "measure SMP beside a reference (dispatch, candidate-search, order-create, ...)",
		Long:      benchUsage,
		ValidArgs: append(names, "all"),
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return usageError{"a scenario is required"}
			case len(args) > 1:
				return usageError{fmt.Sprintf("unexpected arguments %v", args[1:])}
			}
			return nil
		},
	}
	return c.leaf(cmd, fs, func(args []string) error { return runBench(c.ctx, args[0], o, c.stdout, c.stderr) })
}

func runBench(ctx context.Context, scenario string, o benchOpts, stdout, stderr io.Writer) error {
	quick, backend, mysqlDSN, redisAddr := o.quick, o.backend, o.mysqlDSN, o.redisAddr
	jsonOut, mdOut, chartOut, cpuProfile, output := o.jsonOut, o.mdOut, o.chartOut, o.cpuProfile, o.output
	technicians, fleet := o.technicians, o.fleet
	var picked []benchScenario
	for _, s := range benchScenarios {
		if scenario == "all" || s.name == scenario {
			picked = append(picked, s)
		}
	}
	if len(picked) == 0 {
		return usageError{fmt.Sprintf("unknown scenario %q (run smp bench -h)", scenario)}
	}
	if fleet != "" && fleet != "process" && fleet != "inline" {
		return usageError{"--fleet must be process or inline"}
	}
	if technicians < 0 {
		return usageError{"--technicians must be positive"}
	}
	if output != "markdown" && output != "json" {
		return usageError{"--output must be markdown or json"}
	}
	var backends []string
	switch backend {
	case "embedded", "mysql+redis":
		backends = []string{backend}
	case "all":
		backends = []string{"embedded", "mysql+redis"}
	default:
		return usageError{"--backend must be embedded, mysql+redis or all"}
	}
	if slices.Contains(backends, "mysql+redis") && (mysqlDSN == "" || redisAddr == "") {
		return usageError{"the mysql+redis backend needs --mysql-dsn and --redis-addr (or SMP_MYSQL_DSN and SMP_REDIS_ADDR)"}
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	dir, err := os.MkdirTemp("", "smp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	rep := benchReport{At: time.Now().UTC(), Quick: quick, Machine: machine()}
	for _, b := range backends {
		for _, s := range picked {
			env := &benchEnv{backend: b, quick: quick, mysqlDSN: mysqlDSN, redisAddr: redisAddr, log: stderr, dir: dir, technicians: technicians, fleet: fleet}
			env.logf("%s on %s…", s.name, b)
			start := time.Now()
			res, err := s.run(ctx, env)
			if err != nil {
				return fmt.Errorf("bench %s on %s: %w", s.name, b, err)
			}
			res.Scenario, res.Backend = s.name, b
			env.logf("%s on %s done in %s", s.name, b, time.Since(start).Round(100*time.Millisecond))
			rep.Results = append(rep.Results, res)
		}
	}
	md := markdownReport(rep)
	js, _ := json.MarshalIndent(rep, "", "  ")
	if output == "json" {
		fmt.Fprintln(stdout, string(js))
	} else {
		fmt.Fprint(stdout, md)
	}
	for path, data := range map[string][]byte{jsonOut: append(js, '\n'), mdOut: []byte(md)} {
		if path != "" {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return err
			}
		}
	}
	if chartOut != "" {
		svg, ok := dispatchChart(rep)
		if !ok {
			return usageError{"--chart needs the dispatch scenario"}
		}
		if err := os.WriteFile(chartOut, []byte(svg), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func machine() benchMachine {
	m := benchMachine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// markdownReport renders the results as one table plus the dispatch sweeps.
func markdownReport(rep benchReport) string {
	var b strings.Builder
	mode := "full"
	if rep.Quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "SMP bench (%s run), %s, %d CPUs (%s), %s\n\n", mode, rep.At.Format("2006-01-02 15:04 MST"), rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.GoVersion)
	b.WriteString("| scenario | backend | measured | throughput | p50 ms | p95 ms | p99 ms | reference | ref. throughput | ref. p50 ms | ref. p99 ms | ratio |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rep.Results {
		fmt.Fprintf(&b, "| %s | %s | %s | %s %s | %s | %s | %s | %s | %s %s | %s | %s | %.2f |\n", r.Scenario, r.Backend,
			r.SMP.Name, num(r.SMP.Throughput), r.SMP.Unit, num(r.SMP.Latency.P50), num(r.SMP.Latency.P95), num(r.SMP.Latency.P99),
			r.Reference.Name, num(r.Reference.Throughput), r.Reference.Unit, num(r.Reference.Latency.P50), num(r.Reference.Latency.P99), r.Ratio)
	}
	for _, r := range rep.Results {
		if r.Notes != "" {
			fmt.Fprintf(&b, "\n- %s on %s: %s", r.Scenario, r.Backend, r.Notes)
		}
	}
	b.WriteString("\n")
	for _, r := range rep.Results {
		if len(r.Sweep) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\nDispatch on %s, open-loop order rates (latency from the order's scheduled send):\n\n", r.Backend)
		b.WriteString("| orders/s | orders | first offer p50 | p95 | p99 | assigned p50 | p95 | p99 | reference p50 | p99 | failed |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, p := range r.Sweep {
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", num(p.Rate), p.Orders,
				num(p.FirstOffer.P50), num(p.FirstOffer.P95), num(p.FirstOffer.P99), num(p.Assigned.P50), num(p.Assigned.P95), num(p.Assigned.P99),
				num(p.Reference.P50), num(p.Reference.P99), p.Failed)
		}
	}
	return b.String()
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// dispatchChart draws p50/p99 to first offer and p99 to assignment against
// the offered order rate, one panel per backend, as a standalone SVG.
func dispatchChart(rep benchReport) (string, bool) {
	var rs []benchResult
	for _, r := range rep.Results {
		if r.Scenario == "dispatch" && len(r.Sweep) > 0 {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return "", false
	}
	const W, H, L, R, T, B = 560, 300, 60, 20, 40, 50
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H*len(rs), W, H*len(rs))
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	series := []struct {
		name, color, dash string
		get               func(benchPoint) float64
	}{
		{"first offer p50", "#0a58ca", "", func(p benchPoint) float64 { return p.FirstOffer.P50 }},
		{"first offer p99", "#cf222e", "", func(p benchPoint) float64 { return p.FirstOffer.P99 }},
		{"assigned p99", "#9a6700", "6 3", func(p benchPoint) float64 { return p.Assigned.P99 }},
		{"reference p99", "#1a7f37", "2 3", func(p benchPoint) float64 { return p.Reference.P99 }},
	}
	for i, r := range rs {
		y0 := i * H
		maxRate, maxMs := 0.0, 100.0
		for _, p := range r.Sweep {
			maxRate = math.Max(maxRate, p.Rate)
			for _, s := range series {
				maxMs = math.Max(maxMs, s.get(p))
			}
		}
		maxMs = math.Min(maxMs*1.1, 2000)
		x := func(v float64) float64 { return L + v/maxRate*(W-L-R) }
		y := func(v float64) float64 { return float64(y0) + T + (1-math.Min(v, maxMs)/maxMs)*(H-T-B) }
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="14" font-weight="bold">Dispatch latency against load (%s, %d technicians online)</text>`+"\n", L-40, y0+20, r.Backend, r.Extra["technicians"])
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#888"/>`+"\n", L, y(0), W-R, y(0))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#888"/>`+"\n", L, y(maxMs), L, y(0))
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#cf222e" stroke-dasharray="4 4" opacity="0.6"/><text x="%d" y="%.1f" fill="#cf222e">100 ms</text>`+"\n", L, y(100), W-R, y(100), W-R-45, y(100)-4)
		for _, t := range []float64{0, maxMs / 2, maxMs} {
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%.0f ms</text>`+"\n", L-6, y(t)+4, t)
		}
		for _, p := range r.Sweep {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(p.Rate), y(0)+16, num(p.Rate))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="middle">offered orders per second</text>`+"\n", (W+L)/2, y(0)+34)
		for j, s := range series {
			var pts []string
			for _, p := range r.Sweep {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.Rate), y(s.get(p))))
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`+"\n", s.color, s.dash, strings.Join(pts, " "))
			lx := L + 10 + j*125
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, y0+T-8, lx+18, y0+T-8, s.color, s.dash, lx+22, y0+T-4, s.name)
		}
	}
	b.WriteString("</svg>\n")
	return b.String(), true
}
