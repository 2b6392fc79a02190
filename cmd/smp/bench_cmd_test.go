package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"smp/sqlstore/sqlstoretest"
)

// TestBenchQuick is the CI smoke run of smp bench: every scenario with
// --quick, on the embedded default and (when the servers are given) on
// MySQL + Redis. It checks that each measured something beside its
// reference and that the outputs are written, never how fast.
func TestBenchQuick(t *testing.T) {
	t.Parallel()
	backends := []string{"embedded"}
	args := []string{}
	if dsn, addr := os.Getenv(sqlstoretest.EnvDSN), os.Getenv(envRedis); dsn != "" && addr != "" {
		backends = append(backends, "mysql+redis")
		args = append(args, "--mysql-dsn", dsn, "--redis-addr", addr)
	} else {
		t.Logf("%s and %s are unset: the mysql+redis backend is not smoke-tested", sqlstoretest.EnvDSN, envRedis)
	}
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			dir := t.TempDir()
			js, md, chart := filepath.Join(dir, "bench.json"), filepath.Join(dir, "bench.md"), filepath.Join(dir, "dispatch.svg")
			var out, errOut bytes.Buffer
			err := run(context.Background(), append([]string{"bench", "all", "--quick", "--backend", b, "--json", js, "--markdown", md, "--chart", chart}, args...), &out, &errOut)
			if err != nil {
				t.Fatalf("smp bench: %v\n%s", err, errOut.String())
			}
			raw, err := os.ReadFile(js)
			must(t, err)
			var rep benchReport
			must(t, json.Unmarshal(raw, &rep))
			seen := map[string]bool{}
			for _, r := range rep.Results {
				seen[r.Scenario] = true
				if r.Backend != b || r.SMP.Ops <= 0 || r.SMP.Throughput <= 0 || r.Reference.Ops <= 0 || r.Reference.Throughput <= 0 || r.Ratio <= 0 || r.SMP.Latency.P99 <= 0 {
					t.Errorf("%s: %+v", r.Scenario, r)
				}
			}
			for _, s := range benchScenarios {
				if !seen[s.name] {
					t.Errorf("scenario %s did not run", s.name)
				}
				if !strings.Contains(out.String(), "| "+s.name+" | "+b+" |") {
					t.Errorf("the markdown table lacks %s", s.name)
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
		"NoScenario":        {"bench"},
		"UnknownScenario":   {"bench", "warp-speed"},
		"BadBackend":        {"bench", "events", "--backend", "postgres"},
		"MySQLWithoutDSN":   {"bench", "events", "--backend", "mysql+redis"},
		"BadOutput":         {"bench", "events", "--output", "xml"},
		"ExtraArgs":         {"bench", "events", "now"},
		"ChartWithoutSweep": {"bench", "candidate-search", "--quick", "--chart", filepath.Join(t.TempDir(), "c.svg")},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		if exitCode(err) != 2 {
			t.Errorf("%s: %v (exit %d), want a usage error", name, err, exitCode(err))
		}
	}
}
