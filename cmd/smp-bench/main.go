// Command smp-bench measures SMP beside a reference in the same run (the
// scenarios are package bench). It is a binary of its own so that the
// benchmarks' references (kfake, raw drivers) stay out of smp.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"smp/bench"
)

const usage = `smp-bench SCENARIO|all [flags]: measure SMP beside a reference in the same run

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

Every flag can also be set as SMP_<FLAG> (--mysql-dsn as SMP_MYSQL_DSN). Exit status: 0 done,
1 failed, 2 a usage error.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if exitCode(err) != 2 { // run reported a usage error with its hint
			fmt.Fprintln(os.Stderr, "smp-bench:", err)
		}
		stop()
		os.Exit(exitCode(err))
	}
}

// usageError is a command line smp-bench cannot run: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	var bu *bench.UsageError
	if errors.As(err, &u) || errors.As(err, &bu) {
		return 2
	}
	return 1
}

type options struct {
	bench.Options
	backend                  string
	jsonOut, mdOut, chartOut string
	cpuProfile, output       string
}

// run runs the command line args (without the program name); a usage
// error it reports on stderr with a one-line hint.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	ran := false
	root := &cobra.Command{
		Use:           "smp-bench SCENARIO|all",
		Short:         "measure SMP beside a reference in the same run",
		Long:          usage,
		ValidArgs:     append(bench.Scenarios(), "all"),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args: func(_ *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return usageError{"a scenario is required"}
			case len(args) > 1:
				return usageError{fmt.Sprintf("unexpected arguments %v", args[1:])}
			}
			return nil
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return fillFromEnv(cmd.Flags()) },
		RunE: func(_ *cobra.Command, args []string) error {
			ran = true
			return runBench(ctx, args[0], o, stdout, stderr)
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	fs := root.Flags()
	fs.BoolVar(&o.Quick, "quick", false, "a small, fast run (CI smoke): fewer technicians, operations and rates")
	fs.StringVar(&o.backend, "backend", "embedded", "embedded, mysql+redis or all")
	fs.StringVar(&o.MySQLDSN, "mysql-dsn", "", "MySQL server for the mysql+redis backend, e.g. root@tcp(127.0.0.1:3306)/ (a database is made and dropped)")
	fs.StringVar(&o.RedisAddr, "redis-addr", "", "Redis for the mysql+redis backend (a key prefix is used and removed) and the GEOSEARCH reference")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.StringVar(&o.mdOut, "markdown", "", "also write the results as a markdown table to this file")
	fs.StringVar(&o.chartOut, "chart", "", "write an SVG chart of dispatch latency against offered load to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the run to this file")
	fs.StringVar(&o.output, "output", "markdown", "what to print: markdown or json")
	fs.StringVar(&o.Fleet, "fleet", "", "where the dispatch scenario's simulated technicians run: process (a child process), inline, or empty (a child above 1,000)")
	fs.IntVar(&o.Technicians, "technicians", 0, "technicians online in the dispatch scenario (default 10000; 300 with --quick)")
	fs.Float64SliceVar(&o.Rates, "rates", nil, "the dispatch sweep's order rates, ascending, e.g. 100,400,1000 (default 10,50,100,200,400,600,800,1000,1500; 5,10 with --quick)")
	fs.BoolVar(&o.SQLCensus, "sql-census", false, "dispatch: count SQL statements by text and print the most frequent per order, to the first offer and for a whole order at the sweep's first rate")
	fs.DurationVar(&o.Job, "job", 0, "how long a simulated technician's job lasts in the dispatch scenario, assignment to completion, after which they are free again (default 1s)")
	root.AddCommand(&cobra.Command{
		Use:    "bench-technicians SPEC.json", // the dispatch scenario's fleet in a child process
		Hidden: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{"usage: smp-bench bench-technicians SPEC.json"}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			ran = true
			return bench.RunTechnicians(ctx, args[0], stdout)
		},
	})
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	if !ran && exitCode(err) != 2 {
		err = usageError{err.Error()}
	}
	if exitCode(err) == 2 {
		fmt.Fprintln(stderr, "smp-bench:", err)
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return err
}

func runBench(ctx context.Context, scenario string, o options, stdout, stderr io.Writer) error {
	o.Scenarios, o.Log = []string{scenario}, stderr
	// The fleet's child is this executable; a test binary (TestMain) runs
	// as smp-bench only with SMP_TEST_EXEC=1, which smp-bench ignores.
	o.FleetEnv = []string{"SMP_TEST_EXEC=1"}
	switch o.backend {
	case "all":
		o.Backends = bench.Backends
	default:
		o.Backends = []string{o.backend}
	}
	if err := o.Validate(); err != nil {
		return err
	}
	if o.output != "markdown" && o.output != "json" {
		return usageError{"--output must be markdown or json"}
	}
	if o.chartOut != "" && scenario != "all" && scenario != "dispatch" {
		return usageError{"--chart needs the dispatch scenario"}
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := bench.Run(ctx, o.Options)
	if err != nil {
		return err
	}
	md := rep.Markdown()
	js, _ := json.MarshalIndent(rep, "", "  ")
	if o.output == "json" {
		fmt.Fprintln(stdout, string(js))
	} else {
		fmt.Fprint(stdout, md)
	}
	for path, data := range map[string][]byte{o.jsonOut: append(js, '\n'), o.mdOut: []byte(md)} {
		if path != "" {
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return err
			}
		}
	}
	if o.chartOut != "" {
		svg, ok := rep.Chart()
		if !ok {
			return usageError{"--chart needs the dispatch scenario"}
		}
		if err := os.WriteFile(o.chartOut, []byte(svg), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// fillFromEnv fills every flag not given on the command line from
// SMP_<FLAG> (dashes as underscores), as smp does.
func fillFromEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil || f.Name == "help" {
			return
		}
		env := "SMP_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = usageError{fmt.Sprintf("%s: %v", env, e)}
			}
		}
	})
	return err
}
