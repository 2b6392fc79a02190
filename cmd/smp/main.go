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
	"path/filepath"
	"syscall"
)

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, argv(os.Args[0], os.Args[1:]), os.Stdout, os.Stderr); err != nil {
		if exitCode(err) != 2 { // run reported a usage error with its hint
			fmt.Fprintln(os.Stderr, "smp:", err)
		}
		stop()
		os.Exit(exitCode(err))
	}
}

// toolNames are the names the runbook runs SMP's tools under
// (/app/bin/recon-report, /app/bin/replay-webhooks, /app/bin/admin): links
// to this binary, which then runs the command of that name.
var toolNames = map[string]bool{"recon-report": true, "replay-webhooks": true, "admin": true}

// argv is the command line smp runs when invoked as arg0 with args: under
// one of toolNames, that command; otherwise args as given.
func argv(arg0 string, args []string) []string {
	if name := filepath.Base(arg0); toolNames[name] {
		return append([]string{name}, args...)
	}
	return args
}

// usageError is a command line smp cannot run: exit 2 with a hint.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// run runs the command line args (without the program name). A usage
// error it reports on stderr itself, with a one-line hint naming the
// command's help; other errors are the caller's to report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := &cli{ctx: ctx, stdout: stdout, stderr: stderr}
	root := c.root()
	root.SetArgs(longFlags(root, args))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	if !c.ran && !errors.As(err, new(usageError)) {
		// Cobra's own: an unknown command or flag, a bad flag value,
		// arguments a command does not take.
		err = usageError{err.Error()}
	}
	if exitCode(err) == 2 {
		fmt.Fprintln(stderr, "smp:", err)
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return err
}
