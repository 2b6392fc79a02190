package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smp/bench"
	"smp/internal/envtest"
	"smp/wsapi"
)

// TestMain lets the dispatch scenario's fleet run this test binary as
// smp-bench bench-technicians (SMP_TEST_EXEC=1).
func TestMain(m *testing.M) {
	if os.Getenv("SMP_TEST_EXEC") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(envtest.Main(m).Run())
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFleetHeartbeatUnderIdleTimeout: the dispatch scenario's phones beat
// more often than the hub closes a silent connection, or the fleet
// reconnects in the background of every rate (it did, at 60 s against 45).
func TestFleetHeartbeatUnderIdleTimeout(t *testing.T) {
	if bench.FleetHeartbeat >= wsapi.DefaultIdleTimeout {
		t.Fatalf("the phones' heartbeat %s is not under the hub's idle timeout %s", bench.FleetHeartbeat, wsapi.DefaultIdleTimeout)
	}
}

// TestBenchQuick is the CI smoke run of smp-bench: every scenario with
// --quick, on the embedded default and (when the servers are given) on
// MySQL + Redis. It checks that each measured something beside its
// reference and that the outputs are written, never how fast.
func TestBenchQuick(t *testing.T) {
	t.Parallel()
	backends := []string{"embedded"}
	args := []string{}
	dsn, whyDB := envtest.MySQLDSN()
	addr, whyRedis := envtest.RedisAddr()
	if dsn != "" && addr != "" {
		backends = append(backends, "mysql+redis")
		args = append(args, "--mysql-dsn", dsn, "--redis-addr", addr)
	} else {
		t.Run("mysql+redis", func(t *testing.T) { envtest.Skip(t, "MySQL+Redis", strings.Trim(whyDB+"; "+whyRedis, "; ")) })
	}
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			dir := t.TempDir()
			js, md, chart := filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.md"), filepath.Join(dir, "dispatch.svg")
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"all", "--quick", "--backend", b, "--json", js, "--markdown", md, "--chart", chart}, args...), &out, &errOut)
			if err != nil {
				t.Fatalf("smp-bench: %v\n%s", err, errOut.String())
			}
			raw, err := os.ReadFile(js)
			must(t, err)
			var rep bench.Report
			must(t, json.Unmarshal(raw, &rep))
			seen := map[string]bool{}
			for _, r := range rep.Results {
				seen[r.Scenario] = true
				if r.Backend != b || r.SMP.Ops <= 0 || r.SMP.Throughput <= 0 || r.Reference.Ops <= 0 || r.Reference.Throughput <= 0 || r.Ratio <= 0 || r.SMP.Latency.P99 <= 0 {
					t.Errorf("%s: %+v", r.Scenario, r)
				}
				// The costs per order are counted (statements, commits,
				// Redis commands on mysql+redis), and idle is measured.
				costs := []*bench.Cost{r.Cost}
				switch r.Scenario {
				case "dispatch":
					costs = nil
					for _, p := range r.Sweep {
						costs = append(costs, p.Cost)
					}
					if len(r.Idle) != 2 || r.Idle[0].Seconds <= 0 {
						t.Errorf("dispatch idle: %+v", r.Idle)
					}
					// To the first offer: counted per order, the
					// background shown, and the figure printed.
					if f := r.ToFirstOffer; f == nil || f.Orders <= 0 || f.WindowMS <= 0 || f.SQLStatements <= 0 || f.Net <= 0 ||
						(b == "mysql+redis") != (f.RedisCommands > 0) {
						t.Errorf("dispatch to the first offer: %+v", f)
					}
					if !strings.Contains(out.String(), "dispatch on "+b+", to the first offer, per order:") {
						t.Error("the markdown lacks the cost to the first offer")
					}
				case "lifecycle", "order-create":
				default:
					costs = nil
				}
				for _, c := range costs {
					if c == nil || c.SQLStatements <= 0 || c.Commits <= 0 || c.SQLByOp["insert"] <= 0 || (b == "embedded") != (c.Fsyncs > 0) || (b == "mysql+redis") != (c.RedisCommands > 0) {
						t.Errorf("%s: cost per order %+v", r.Scenario, c)
					}
				}
			}
			for _, s := range bench.Scenarios() {
				if !seen[s] {
					t.Errorf("scenario %s did not run", s)
				}
				if !strings.Contains(out.String(), "| "+s+" | "+b+" |") {
					t.Errorf("the markdown table lacks %s", s)
				}
			}
			if m, _ := os.ReadFile(md); string(m) != out.String() {
				t.Error("--markdown differs from what was printed")
			}
			if svg, _ := os.ReadFile(chart); !bytes.HasPrefix(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("polyline")) {
				t.Errorf("chart: %.200s", svg)
			}
		})
	}
}

func TestBenchRejectsBadUsage(t *testing.T) {
	t.Parallel()
	for name, args := range map[string][]string{
		"NoScenario":        {},
		"UnknownScenario":   {"warp-speed"},
		"BadBackend":        {"events", "--backend", "postgres"},
		"MySQLWithoutDSN":   {"events", "--backend", "mysql+redis"},
		"BadMySQLDSN":       {"events", "--backend", "mysql+redis", "--mysql-dsn", "not a dsn", "--redis-addr", "127.0.0.1:1"},
		"BadOutput":         {"events", "--output", "xml"},
		"ExtraArgs":         {"events", "now"},
		"UnknownFlag":       {"events", "--fast"},
		"ChartWithoutSweep": {"candidate-search", "--quick", "--chart", filepath.Join(t.TempDir(), "c.svg")},
		"RatesDescending":   {"dispatch", "--rates", "100,50"},
		"RatesNotNumbers":   {"dispatch", "--rates", "fast"},
		"NegativeJob":       {"dispatch", "--job", "-1s"},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		if exitCode(err) != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), "Run 'smp-bench --help' for usage.") {
			t.Errorf("%s: %v (exit %d), stdout %q, stderr %q; want a usage error with its hint", name, err, exitCode(err), out.String(), errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out, &errOut); err != nil || !strings.Contains(out.String(), "--quick") || errOut.Len() != 0 {
		t.Errorf("--help: %v, stdout %.80q, stderr %q", err, out.String(), errOut.String())
	}
}

// TestBenchSQLCensus: --sql-census prints, per order, the statements by
// text to the first offer and for a whole order at the sweep's first
// rate, and writes them in the JSON.
func TestBenchSQLCensus(t *testing.T) {
	t.Parallel()
	js := filepath.Join(t.TempDir(), "bench.json")
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"dispatch", "--quick", "--sql-census", "--rates", "5", "--json", js}, &out, &errOut); err != nil {
		t.Fatalf("smp-bench: %v\n%s", err, errOut.String())
	}
	raw, err := os.ReadFile(js)
	must(t, err)
	var rep bench.Report
	must(t, json.Unmarshal(raw, &rep))
	if len(rep.Results) != 1 || rep.Results[0].ToFirstOffer == nil || len(rep.Results[0].Sweep) == 0 {
		t.Fatalf("results: %+v", rep.Results)
	}
	r := rep.Results[0]
	has := func(lines []bench.CensusLine, prefix string) bool {
		for _, l := range lines {
			if strings.HasPrefix(l.Text, prefix) && l.PerOrder > 0 {
				return true
			}
		}
		return false
	}
	// Every order inserts its row once before its first offer.
	if f := r.ToFirstOffer; !has(f.Census, "INSERT INTO orders ") || !has(f.Census, "INSERT INTO order_transitions ") {
		t.Errorf("census to the first offer: %+v", f.Census)
	}
	w := r.Sweep[0].WholeOrder
	if w == nil {
		t.Fatal("no whole-order cost at the sweep's first rate")
	}
	if w.SQLStatements <= 0 || w.Commits <= 0 || !has(w.Census, "UPDATE orders SET stage") {
		t.Errorf("whole order: %+v", w)
	}
	var sum float64
	for _, l := range w.Census {
		sum += l.PerOrder
	}
	if sum < 0.95*w.SQLStatements || sum > 1.05*w.SQLStatements { // the census counts every statement (rounding aside)
		t.Errorf("census sums to %.2f statements per order, counters to %.2f", sum, w.SQLStatements)
	}
	for _, want := range []string{"SQL census to the first offer, statements per order by text:", "whole order (created → completed), per order:", "× `INSERT INTO orders "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the markdown lacks %q:\n%s", want, out.String())
		}
	}
}
