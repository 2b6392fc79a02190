// Package bench measures SMP beside a reference in the same run: each
// scenario opens the whole platform (app.App) on a backend, with a fresh
// database and data set, and measures one path of it and a baseline of the
// same work without SMP (raw inserts, Redis GEOSEARCH, raw franz-go on
// kfake, a bare push server). cmd/smp-bench is its command; it is not in
// the production binary.
package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"smp/app"
	"smp/auth"
	"smp/sim"
)

// Latency is a latency summary in milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Measure is one measured path: how many operations, how fast.
type Measure struct {
	Name       string  `json:"name"`
	Ops        int     `json:"ops"`
	Seconds    float64 `json:"seconds"`
	Throughput float64 `json:"throughput"`
	Unit       string  `json:"unit"`
	Latency    Latency `json:"latency"`
}

// Point is one offered load of a sweep (the dispatch scenario).
type Point struct {
	Rate       float64 `json:"rate_per_s"`
	Orders     int     `json:"orders"`
	FirstOffer Latency `json:"first_offer"`
	Assigned   Latency `json:"assigned"`
	Reference  Latency `json:"reference"`
	Failed     int     `json:"failed"`
	// Cost per order of the phase, from its first order until every
	// order was assigned (or the wait ended).
	Cost *Cost `json:"cost,omitempty"`
	// WholeOrder is the cost per order from the phase's first order
	// until every job won was completed, with the census of statements
	// (--sql-census, the sweep's first rate only).
	WholeOrder *Cost `json:"whole_order,omitempty"`
}

// Result is one scenario on one backend.
type Result struct {
	Scenario  string  `json:"scenario"`
	Backend   string  `json:"backend"`
	SMP       Measure `json:"smp"`
	Reference Measure `json:"reference"`
	// Ratio is SMP's throughput over the reference's (for dispatch: the
	// reference's p99 over SMP's, at the highest passing rate).
	Ratio float64        `json:"ratio"`
	Notes string         `json:"notes,omitempty"`
	Sweep []Point        `json:"sweep,omitempty"`
	Extra map[string]any `json:"extra,omitempty"`
	// Cost per operation of SMP's measured path (where it is per order).
	Cost *Cost `json:"cost,omitempty"`
	// Idle is the platform with nothing to do (dispatch: before the
	// technicians connect, and with them connected).
	Idle []Idle `json:"idle,omitempty"`
	// ToFirstOffer is what an order costs up to its first offer
	// (dispatch).
	ToFirstOffer *FirstOfferCost `json:"to_first_offer,omitempty"`
}

// Report is the whole run.
type Report struct {
	At      time.Time `json:"at"`
	Quick   bool      `json:"quick"`
	Machine Machine   `json:"machine"`
	Results []Result  `json:"results"`
}

type Machine struct {
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

func (r *recorder) summary() Latency {
	r.mu.Lock()
	d := slices.Clone(r.d)
	r.mu.Unlock()
	return summarize(d)
}

func summarize(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(d)))) - 1
		return float64(d[max(0, min(i, len(d)-1))].Microseconds()) / 1000
	}
	return Latency{P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: float64(d[len(d)-1].Microseconds()) / 1000}
}

func measure(name, unit string, ops int, elapsed time.Duration, lat Latency) Measure {
	return Measure{Name: name, Ops: ops, Seconds: round3(elapsed.Seconds()), Throughput: round1(float64(ops) / elapsed.Seconds()), Unit: unit, Latency: lat}
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
	fleet    string
	fleetEnv []string
	rates    []float64     // the dispatch sweep's (nil: its defaults)
	job      time.Duration // a simulated job, assignment to completion (0: 1 s)
	census   bool          // count statements by text (dispatch)
}

func (e *benchEnv) logf(format string, args ...any) {
	fmt.Fprintf(e.log, "bench: "+format+"\n", args...)
}

// config is a platform configuration on this backend, with a fresh
// database and key prefix; cleanup removes them.
func (e *benchEnv) config(ctx context.Context) (app.Config, func(), error) {
	dir, err := os.MkdirTemp(e.dir, "app-")
	if err != nil {
		return app.Config{}, nil, err
	}
	cfg := app.Config{Addr: "127.0.0.1:0", DataDir: dir, AdminToken: sim.NewToken("bench_"),
		InvitationTTL: 20 * time.Second, RetryAfter: time.Second, StuckAfter: time.Hour, BackpressureThreshold: 100, Partitions: 12,
		PaymentRetryBackoff: time.Second, PaymentDueAfter: time.Hour, BreakerOpenFor: 30 * time.Second, DashboardSampleEvery: 5 * time.Second}
	cleanup := func() { os.RemoveAll(dir) }
	if e.backend == "embedded" {
		return cfg, cleanup, nil
	}
	dsn, drop, err := createBenchDatabase(ctx, e.mysqlDSN)
	if err != nil {
		return app.Config{}, cleanup, err
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
		return "", nil, usageError("--mysql-dsn: %v", err)
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
func startBenchApp(ctx context.Context, cfg app.Config, seed sim.SeedConfig, mutate func(*app.Config)) (*app.App, *sim.Dataset, error) {
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	db, err := app.OpenStore(ctx, cfg, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	ds, err := sim.Seed(ctx, db, seed, auth.HashToken)
	db.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("seed: %w", err)
	}
	a := &app.App{Cfg: cfg, Log: slog.New(slog.DiscardHandler)}
	if err := a.Open(ctx); err != nil {
		return nil, nil, err
	}
	return a, ds, nil
}

// app opens the whole platform on this backend, with a fresh database and
// the data set seeded; stop closes it and removes the data.
func (e *benchEnv) app(ctx context.Context, seed sim.SeedConfig, mutate func(*app.Config)) (*app.App, *sim.Dataset, func(), error) {
	cfg, cleanup, err := e.config(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	a, ds, err := startBenchApp(ctx, cfg, seed, mutate)
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	return a, ds, func() { a.Close(); cleanup() }, nil
}

type benchScenario struct {
	name string
	run  func(ctx context.Context, e *benchEnv) (Result, error)
}

var benchScenarios = []benchScenario{
	{"dispatch", benchDispatch},
	{"candidate-search", benchCandidateSearch},
	{"order-create", benchOrderCreate},
	{"webhook-ingest", benchWebhookIngest},
	{"events", benchEvents},
	{"lifecycle", benchLifecycle},
}

// Scenarios are the scenarios' names, in the order "all" runs them.
func Scenarios() []string {
	var names []string
	for _, s := range benchScenarios {
		names = append(names, s.name)
	}
	return names
}

// Backends are the backends a scenario runs on.
var Backends = []string{"embedded", "mysql+redis"}

// Options are a run's scenarios, backends and knobs.
type Options struct {
	Scenarios []string // names from Scenarios; "all" is every one
	Backends  []string // from Backends
	Quick     bool     // a small, fast run (CI smoke)
	// MySQLDSN and RedisAddr are the servers of the mysql+redis backend (a
	// database and a key prefix are made and removed); RedisAddr is also
	// the GEOSEARCH reference.
	MySQLDSN, RedisAddr string
	// Technicians online in the dispatch scenario (0: 10,000, or 300
	// with Quick).
	Technicians int
	// Fleet is where the dispatch scenario's technicians run: "process" (a
	// child: this executable's bench-technicians command, RunTechnicians),
	// "inline", or "" (a child above 1,000).
	Fleet string
	// FleetEnv is added to the environment of the fleet's child process
	// (a test binary runs as smp-bench with SMP_TEST_EXEC=1).
	FleetEnv []string
	// Rates are the dispatch sweep's offered order rates, ascending (nil:
	// 10, 50, 100 … 1,500, or 5 and 10 with Quick); the sweep stops at the first
	// whose first-offer p99 reaches 100 ms.
	Rates []float64
	// Job is how long a simulated technician's job lasts in the dispatch
	// scenario, from the assignment (the phone starts it after a quarter
	// and completes it at the end, through the API), which frees the
	// technician for the next orders (0: one second).
	Job time.Duration
	// SQLCensus counts the dispatch scenario's statements by text and
	// reports the most frequent ones per order, to the first offer and
	// for a whole order at the sweep's first rate.
	SQLCensus bool
	Log       io.Writer // progress; nil: discarded
}

// UsageError is a run that cannot start as asked (a usage error of the
// command that runs it).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usageError(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// Validate checks the options; its errors are *UsageError.
func (o *Options) Validate() error {
	if len(o.Scenarios) == 0 {
		return usageError("a scenario is required")
	}
	for _, name := range o.Scenarios {
		if name != "all" && !slices.Contains(Scenarios(), name) {
			return usageError("unknown scenario %q (use all or %s)", name, strings.Join(Scenarios(), ", "))
		}
	}
	if o.Fleet != "" && o.Fleet != "process" && o.Fleet != "inline" {
		return usageError("--fleet must be process or inline")
	}
	if o.Technicians < 0 {
		return usageError("--technicians must be positive")
	}
	for i, r := range o.Rates {
		if r <= 0 || i > 0 && r <= o.Rates[i-1] {
			return usageError("--rates must be positive and ascending")
		}
	}
	if o.Job < 0 {
		return usageError("--job must not be negative")
	}
	if len(o.Backends) == 0 {
		return usageError("a backend is required")
	}
	for _, b := range o.Backends {
		if !slices.Contains(Backends, b) {
			return usageError("--backend must be embedded, mysql+redis or all")
		}
	}
	if slices.Contains(o.Backends, "mysql+redis") {
		if o.MySQLDSN == "" || o.RedisAddr == "" {
			return usageError("the mysql+redis backend needs --mysql-dsn and --redis-addr (or SMP_MYSQL_DSN and SMP_REDIS_ADDR)")
		}
		if _, err := mysql.ParseDSN(o.MySQLDSN); err != nil {
			return usageError("--mysql-dsn: %v", err)
		}
	}
	return nil
}

// Run measures the scenarios on the backends, each on a fresh platform
// and data set, in this process.
func Run(ctx context.Context, o Options) (Report, error) {
	if err := o.Validate(); err != nil {
		return Report{}, err
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	var picked []benchScenario
	for _, s := range benchScenarios {
		if slices.Contains(o.Scenarios, "all") || slices.Contains(o.Scenarios, s.name) {
			picked = append(picked, s)
		}
	}
	dir, err := os.MkdirTemp("", "smp-bench-")
	if err != nil {
		return Report{}, err
	}
	defer os.RemoveAll(dir)

	rep := Report{At: time.Now().UTC(), Quick: o.Quick, Machine: machine()}
	for _, b := range o.Backends {
		for _, s := range picked {
			env := &benchEnv{backend: b, quick: o.Quick, mysqlDSN: o.MySQLDSN, redisAddr: o.RedisAddr, log: o.Log, dir: dir, technicians: o.Technicians, fleet: o.Fleet, fleetEnv: o.FleetEnv,
				rates: o.Rates, job: o.Job, census: o.SQLCensus}
			env.logf("%s on %s…", s.name, b)
			start := time.Now()
			res, err := s.run(ctx, env)
			if err != nil {
				return rep, fmt.Errorf("bench %s on %s: %w", s.name, b, err)
			}
			res.Scenario, res.Backend = s.name, b
			env.logf("%s on %s done in %s", s.name, b, time.Since(start).Round(100*time.Millisecond))
			rep.Results = append(rep.Results, res)
		}
	}
	return rep, nil
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
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

// Markdown renders the results as one table plus the dispatch sweeps.
func (rep Report) Markdown() string {
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
		if c := r.Cost; c != nil {
			fmt.Fprintf(&b, "\n- %s on %s, per order: %s", r.Scenario, r.Backend, c.String())
		}
		for _, i := range r.Idle {
			fmt.Fprintf(&b, "\n- %s on %s, idle (%s): %s", r.Scenario, r.Backend, i.What, i.String())
		}
		if f := r.ToFirstOffer; f != nil {
			fmt.Fprintf(&b, "\n- %s on %s, to the first offer, per order: %s", r.Scenario, r.Backend, f.String())
			if len(f.Census) > 0 {
				fmt.Fprintf(&b, "\n- %s on %s, SQL census to the first offer, statements per order by text:%s", r.Scenario, r.Backend, censusMarkdown(f.Census, censusTop))
			}
		}
		for _, p := range r.Sweep {
			if c := p.WholeOrder; c != nil {
				fmt.Fprintf(&b, "\n- %s on %s at %s orders/s, whole order (created → completed), per order: %s", r.Scenario, r.Backend, num(p.Rate), c.String())
				if len(c.Census) > 0 {
					fmt.Fprintf(&b, "\n- %s on %s at %s orders/s, SQL census of the whole order, statements per order by text:%s", r.Scenario, r.Backend, num(p.Rate), censusMarkdown(c.Census, censusTop))
				}
			}
		}
	}
	b.WriteString("\n")
	for _, r := range rep.Results {
		if len(r.Sweep) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\nDispatch on %s, open-loop order rates (latency from the order's scheduled send):\n\n", r.Backend)
		b.WriteString("| orders/s | orders | first offer p50 | p95 | p99 | assigned p50 | p95 | p99 | reference p50 | p99 | failed | SQL stmts/order | write commits/order | fsyncs/order | Redis cmds/order | CPU ms/order |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, p := range r.Sweep {
			var c Cost
			if p.Cost != nil {
				c = *p.Cost
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s |\n", num(p.Rate), p.Orders,
				num(p.FirstOffer.P50), num(p.FirstOffer.P95), num(p.FirstOffer.P99), num(p.Assigned.P50), num(p.Assigned.P95), num(p.Assigned.P99),
				num(p.Reference.P50), num(p.Reference.P99), p.Failed, num(c.SQLStatements), num(c.Commits), num(c.Fsyncs), num(c.RedisCommands), num(c.CPUms))
		}
		for _, p := range r.Sweep {
			if p.Cost != nil {
				fmt.Fprintf(&b, "\n- at %s orders/s, per order: %s", num(p.Rate), p.Cost.String())
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// censusTop is how many statement texts of a census the markdown lists.
const censusTop = 30

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

// Chart draws p50/p99 to first offer and p99 to assignment against
// the offered order rate, one panel per backend, as a standalone SVG.
func (rep Report) Chart() (string, bool) {
	var rs []Result
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
		get               func(Point) float64
	}{
		{"first offer p50", "#0a58ca", "", func(p Point) float64 { return p.FirstOffer.P50 }},
		{"first offer p99", "#cf222e", "", func(p Point) float64 { return p.FirstOffer.P99 }},
		{"assigned p99", "#9a6700", "6 3", func(p Point) float64 { return p.Assigned.P99 }},
		{"reference p99", "#1a7f37", "2 3", func(p Point) float64 { return p.Reference.P99 }},
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
