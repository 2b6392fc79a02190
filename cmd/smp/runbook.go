package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"smp/runbook"
)

// errIncident: an incident condition holds (exit 1, not a usage error).
var errIncident = errors.New("an incident condition holds")

func runRunbook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprint(stderr, "smp runbook check INC-00N | --all [--server URL] [--output table|json]\n")
		return usageError{"smp runbook: use check"}
	}
	args = args[1:]
	var ids []string
	if len(args) > 0 && strings.HasPrefix(args[0], "INC-") {
		ids, args = []string{args[0]}, args[1:]
	}
	fs := flag.NewFlagSet("smp runbook check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server, output := "http://127.0.0.1:8080", "table"
	var all bool
	fs.StringVar(&server, "server", server, "the platform's base URL (SMP_SERVER)")
	fs.StringVar(&output, "output", output, "table or json")
	fs.BoolVar(&all, "all", false, "check every incident")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if all == (len(ids) > 0) {
		return usageError{"give one incident (INC-001 to INC-007) or --all"}
	}
	if all {
		ids = runbook.Incidents
	}
	if output != "table" && output != "json" {
		return usageError{"--output must be table or json"}
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
		verdicts = append(verdicts, v)
		holds = holds || v.Holds
	}
	if output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(verdicts)
	} else {
		for _, v := range verdicts {
			state := "healthy"
			switch {
			case v.Holds:
				state = "CONDITION HOLDS"
			case v.Unknown:
				state = "not applicable"
			}
			fmt.Fprintf(stdout, "%s %s: %s\n", v.Incident, v.Title, state)
			for _, f := range v.Findings {
				fmt.Fprintf(stdout, "  - %s\n", f)
			}
			if v.Case != "" {
				fmt.Fprintf(stdout, "  triage: %s\n", v.Case)
			}
			if v.Mitigation != "" {
				fmt.Fprintf(stdout, "  mitigate: %s\n", v.Mitigation)
			}
			fmt.Fprintf(stdout, "  runbook: docs/runbook.md#%s\n", strings.ToLower(v.Incident))
		}
	}
	if holds {
		return errIncident
	}
	return nil
}
