package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"smp/runbook"
)

// errIncident: an incident condition holds (exit 1, not a usage error).
var errIncident = errors.New("an incident condition holds")

func (c *cli) runbookCmd() *cobra.Command {
	fs := flag.NewFlagSet("smp runbook check", flag.ContinueOnError)
	server, output, base := "http://127.0.0.1:8080", "table", DefaultRunbookBaseURL
	var all bool
	fs.StringVar(&server, "server", server, "the platform's base URL (SMP_SERVER)")
	fs.StringVar(&output, "output", output, "table, json or csv")
	fs.BoolVar(&all, "all", false, "check every incident")
	fs.StringVar(&base, "runbook-base-url", base, "where docs/runbook.md is published: the verdicts link to <base>/docs/runbook.md#inc-00N (as the alerts' runbook_url, whose base is Prometheus's external label runbook_base_url)")
	check := c.leaf(&cobra.Command{
		Use:   "check INC-00N | --all",
		Short: "run an incident's Detect and Triage steps; exit 1 if its condition holds",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 1 && !strings.HasPrefix(args[0], "INC-")) {
				return usageError{fmt.Sprintf("unexpected argument %q", args[len(args)-1])}
			}
			return nil
		},
		ValidArgs: runbook.Incidents,
	}, fs, func(ids []string) error { return runRunbookCheck(c.ctx, ids, all, server, output, base, c.stdout) })
	return group(&cobra.Command{Use: "runbook", Short: "the runbook's checks (smp runbook check INC-00N|--all)"}, check)
}

// DefaultRunbookBaseURL is where docs/runbook.md is published unless
// --runbook-base-url says otherwise (the alert rules' default too).
const DefaultRunbookBaseURL = "https://runbooks.smp.vn"

func runRunbookCheck(ctx context.Context, ids []string, all bool, server, output, base string, stdout io.Writer) error {
	if u, err := url.Parse(base); err != nil || u.Scheme == "" || u.Host == "" {
		return usageError{fmt.Sprintf("--runbook-base-url %q is not an absolute URL", base)}
	}
	base = strings.TrimRight(base, "/")
	if all == (len(ids) > 0) {
		return usageError{"give one incident (INC-001 to INC-012) or --all"}
	}
	if all {
		ids = runbook.Incidents
	}
	if err := checkOutput(output); err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := runbook.Check(&runbook.Snapshot{}, id); err != nil {
			return usageError{err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	snap, err := runbook.Fetch(ctx, server)
	if err != nil {
		return err
	}
	var verdicts []runbook.Verdict
	holds := false
	for _, id := range ids {
		v, _ := runbook.Check(snap, id)
		v.RunbookURL = base + "/docs/runbook.md#" + strings.ToLower(v.Incident)
		verdicts = append(verdicts, v)
		holds = holds || v.Holds
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(verdicts)
	} else if output == "csv" {
		var rows [][]string
		for _, v := range verdicts {
			rows = append(rows, []string{v.Incident, v.Title, verdictState(v), strings.Join(v.Findings, "; "), v.Case, v.Mitigation})
		}
		writeRows(stdout, output, []string{"incident", "title", "state", "findings", "triage", "mitigation"}, rows)
	} else {
		for _, v := range verdicts {
			fmt.Fprintf(stdout, "%s %s: %s\n", v.Incident, v.Title, verdictState(v))
			for _, f := range v.Findings {
				fmt.Fprintf(stdout, "  - %s\n", f)
			}
			if v.Case != "" {
				fmt.Fprintf(stdout, "  triage: %s\n", v.Case)
			}
			if v.Mitigation != "" {
				fmt.Fprintf(stdout, "  mitigate: %s\n", v.Mitigation)
			}
			fmt.Fprintf(stdout, "  runbook: %s\n", v.RunbookURL)
		}
	}
	if holds {
		return errIncident
	}
	return nil
}

func verdictState(v runbook.Verdict) string {
	switch {
	case v.Holds:
		return "CONDITION HOLDS"
	case v.Unknown:
		return "not applicable"
	}
	return "healthy"
}
