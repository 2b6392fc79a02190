// Command smp is SMP's single binary: every service and tool is a subcommand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `smp: SMP field-service marketplace platform

Usage:
  smp serve    [flags]   run every service in one process (embedded SQLite, in-process queues, durable event log)
  smp demo     [flags]   serve + seeded data + simulated technicians and customers
  smp migrate  [flags]   apply database migrations and exit
  smp token    [flags]   create an admin API token with a role (ops, admin, finance, security)
  smp ctl      ...       operate a running platform (smp ctl stats, smp ctl bus lag, ...)
  smp runbook check INC-00N|--all   run an incident's Detect and Triage steps; exit 1 if it holds
  smp bench SCENARIO|all [--quick]  measure SMP beside a reference (dispatch, candidate-search, order-create, ...)
  smp version

Every flag can also be set as SMP_<FLAG> in the environment (for example --data-dir as SMP_DATA_DIR).
Run 'smp <command> -h' for a command's flags.
`

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "smp:", err)
		}
		os.Exit(exitCode(err))
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"a command is required"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "demo":
		return runDemo(ctx, rest, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr)
	case "token":
		return runToken(ctx, rest, stdout, stderr)
	case "ctl":
		return runCtl(ctx, rest, stdout, stderr)
	case "runbook":
		return runRunbook(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "bench-technicians": // hidden: the dispatch bench's fleet of phones
		return runBenchTechnicians(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "smp", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("unknown command %q", cmd)}
}
