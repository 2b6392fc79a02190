package main

import (
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const rootLong = `smp: SMP field-service marketplace platform

Every flag can also be set as SMP_<FLAG> in the environment (for example --data-dir as
SMP_DATA_DIR); a flag on the command line wins. Flags go before or after a subcommand
(smp ctl --server URL stats). Exit status: 0 done, 1 failed (or, for runbook check, an
incident condition holds), 2 a usage error.

Installed as /app/bin/recon-report, /app/bin/replay-webhooks or /app/bin/admin (links to
smp), the binary runs that command.`

// cli is one run of the command line: where it writes, and whether a
// command's own code ran (an error before that is a usage error).
type cli struct {
	ctx            context.Context
	stdout, stderr io.Writer
	ran            bool
}

// root is the command tree, built afresh per run: cobra commands hold
// their flags' values.
func (c *cli) root() *cobra.Command {
	root := &cobra.Command{
		Use:               "smp",
		Short:             "SMP field-service marketplace platform",
		Long:              rootLong,
		SilenceErrors:     true,
		SilenceUsage:      true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return fillFromEnv(cmd.Flags()) },
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError{"a command is required"}
		},
	}
	root.SetOut(c.stdout) // before the completion command captures it
	root.SetErr(c.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err.Error()} })
	root.AddCommand(
		c.serveCmd(), c.connectCmd(), c.replicateCmd(), c.demoCmd(), c.migrateCmd(), c.tokenCmd(), c.ctlCmd(), c.runbookCmd(), c.importCmd(),
		c.versionCmd(), movedBenchCmd(),
	)
	root.AddCommand(c.toolCmds()...)
	// smp completion bash|zsh|fish: cobra's, but without a shell it is a
	// usage error like any group's.
	root.InitDefaultCompletionCmd()
	for _, sub := range root.Commands() {
		if sub.Name() == "completion" {
			sub.Args, sub.RunE = nil, groupRunE
		}
	}
	return root
}

// movedBenchCmd answers smp bench, which became a binary of its own (its
// references, kfake and raw drivers, stay out of smp).
func movedBenchCmd() *cobra.Command {
	return &cobra.Command{Use: "bench", Hidden: true, DisableFlagParsing: true, RunE: func(*cobra.Command, []string) error {
		return usageError{"the benchmarks are a binary of their own: smp-bench SCENARIO|all [flags] (go run ./cmd/smp-bench --help)"}
	}}
}

func (c *cli) versionCmd() *cobra.Command {
	return c.leaf(&cobra.Command{Use: "version", Short: "print the version"}, nil, func([]string) error {
		fmt.Fprintln(c.stdout, "smp", version)
		return nil
	})
}

// leaf completes a command that runs: its flags are those fs registers
// (Go flag definitions, shared with tests and the deploy checks), it takes
// no arguments unless cmd.Args says otherwise, and run gets the arguments.
func (c *cli) leaf(cmd *cobra.Command, fs *flag.FlagSet, run func(args []string) error) *cobra.Command {
	if fs != nil {
		cmd.Flags().AddGoFlagSet(fs)
	}
	if cmd.Args == nil {
		cmd.Args = noArgs
	}
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		c.ran = true
		return run(args)
	}
	return cmd
}

// group completes a command that only holds subcommands (ctl, ctl bus …):
// without one, or with an unknown one, it is a usage error.
func group(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	cmd.AddCommand(subs...)
	cmd.RunE = groupRunE
	return cmd
}

func groupRunE(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())}
	}
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return usageError{fmt.Sprintf("%q needs a command: %s", cmd.CommandPath(), strings.Join(names, ", "))}
}

// noArgs: a command that takes no positional arguments (or only its
// subcommands' names).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return usageError{fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())}
	}
	return usageError{fmt.Sprintf("unexpected argument %q", args[0])}
}

// envNames are the variables that may set a flag not given on the command
// line: SMP_<FLAG> (dashes as underscores), and a few the runbook names.
func envNames(flagName string) []string {
	names := []string{"SMP_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))}
	if flagName == "mysql-read-dsn" {
		names = append(names, "MYSQL_READ_DSN") // the runbook's name (INC-003)
	}
	return names
}

// fillFromEnv fills every flag of fs not given on the command line from
// its environment variable, e.g. --data-dir from SMP_DATA_DIR.
func fillFromEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed || err != nil || f.Name == "help" {
			return
		}
		for _, env := range envNames(f.Name) {
			if v, ok := os.LookupEnv(env); ok {
				if e := f.Value.Set(v); e != nil {
					err = usageError{fmt.Sprintf("%s: %v", env, e)} // the value may be a secret: not echoed
				}
				return
			}
		}
	})
	return err
}

// parseFlags parses args with fs's flags as smp's commands do (GNU style,
// flags anywhere), then fills every flag not given from SMP_<FLAG>.
func parseFlags(fs *flag.FlagSet, args []string) error {
	pf := pflag.NewFlagSet(fs.Name(), pflag.ContinueOnError)
	pf.SetOutput(io.Discard)
	pf.AddGoFlagSet(fs)
	if err := pf.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if pf.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pf.Arg(0))}
	}
	return fillFromEnv(pf)
}

var singleDashLong = regexp.MustCompile(`^-([a-z][a-z0-9-]+)(=.*)?$`)

// longFlags rewrites -name (Go's flag package accepted one dash for long
// flags) as --name, for the names of the tree's flags; after "--" nothing.
func longFlags(root *cobra.Command, args []string) []string {
	names := map[string]bool{"help": true}
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) { names[f.Name] = true })
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, len(args))
	for i, a := range args {
		if a == "--" {
			copy(out[i:], args[i:])
			break
		}
		if m := singleDashLong.FindStringSubmatch(a); m != nil && names[m[1]] {
			a = "-" + a
		}
		out[i] = a
	}
	return out
}

// checkOutput validates --output of a listing command.
func checkOutput(output string) error {
	switch output {
	case "table", "json", "csv":
		return nil
	}
	return usageError{"--output must be table, json or csv"}
}

// writeRows prints rows under header as an aligned table or as CSV.
func writeRows(w io.Writer, output string, header []string, rows [][]string) error {
	if output == "csv" {
		cw := csv.NewWriter(w)
		cw.Write(header)
		cw.WriteAll(rows)
		return cw.Error()
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(header, "\t")))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}
