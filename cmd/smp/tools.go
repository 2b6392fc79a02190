package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The runbook's tools for wallets and fraud (INC-010, INC-011), run as
// /app/bin/recon-report, /app/bin/replay-webhooks and /app/bin/admin:
// links to smp (see argv). Their flags are the runbook's. recon-report
// and replay-webhooks talk to a running platform's admin API (--server or
// SMP_SERVER, SMP_ADMIN_TOKEN), as admin does (admin.go).

func (c *cli) toolCmds() []*cobra.Command {
	// recon-report --date=yesterday --format=csv (INC-010 triage)
	var date, output, rserver, rreason string
	var runNow bool
	fs := flag.NewFlagSet("recon-report", flag.ContinueOnError)
	fs.StringVar(&date, "date", "yesterday", "the day reconciled: yesterday, today or YYYY-MM-DD (Asia/Ho_Chi_Minh)")
	fs.StringVar(&output, "output", "table", "table, json or csv (--format is the runbook's spelling)")
	fs.StringVar(&rserver, "server", "", "a running platform's URL (SMP_SERVER; default http://127.0.0.1:8080)")
	fs.BoolVar(&runNow, "run", false, "run the reconciliation of the day now (finance; audited) and report that run, instead of the last one kept")
	fs.StringVar(&rreason, "reason", "", "why, with --run (audited)")
	recon := c.leaf(&cobra.Command{Use: "recon-report", Short: "wallet reconciliation report per partner: partner_id, smp_balance, gateway_balance, diff_amount, diff_pct, last_txn_id (INC-010)"}, fs, func([]string) error {
		if err := checkOutput(output); err != nil {
			return err
		}
		if rserver == "" {
			rserver = "http://127.0.0.1:8080"
		}
		cl, err := newAPIClient(rserver, 30*time.Minute)
		if err != nil {
			return err
		}
		return c.reconReport(cl, date, output, runNow, rreason)
	})
	recon.Flags().SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "format" {
			name = "output"
		}
		return pflag.NormalizedName(name)
	})

	// replay-webhooks --gateway=vnpay --from=... --to=... (INC-010 mitigation)
	var gateway, from, to, server, reason, routput string
	fs = flag.NewFlagSet("replay-webhooks", flag.ContinueOnError)
	fs.StringVar(&gateway, "gateway", "", "the payment gateway, e.g. vnpay")
	fs.StringVar(&from, "from", "", "replay the gateway's records of top-ups created from this time (what date -d prints, RFC 3339 or YYYY-MM-DD)")
	fs.StringVar(&to, "to", "", "up to this time")
	fs.StringVar(&server, "server", "", "a running platform's URL (SMP_SERVER; default http://127.0.0.1:8080)")
	fs.StringVar(&reason, "reason", "", "why (audited)")
	fs.StringVar(&routput, "output", "table", "table, json or csv")
	replay := c.leaf(&cobra.Command{Use: "replay-webhooks", Short: "replay a payment gateway's missed notifications over a time range (INC-010)"}, fs, func([]string) error {
		if gateway == "" || from == "" || to == "" {
			return usageError{"--gateway, --from and --to are required"}
		}
		f, err := parseWhen(from)
		if err != nil {
			return usageError{"--from: " + err.Error()}
		}
		t, err := parseWhen(to)
		if err != nil {
			return usageError{"--to: " + err.Error()}
		}
		if err := checkOutput(routput); err != nil {
			return err
		}
		if server == "" {
			server = "http://127.0.0.1:8080"
		}
		cl, err := newAPIClient(server, 10*time.Minute)
		if err != nil {
			return err
		}
		v, err := cl.do(c.ctx, http.MethodPost, "/admin/wallets/replay-webhooks", map[string]any{"gateway": gateway,
			"from": f.Format(time.RFC3339), "to": t.Format(time.RFC3339), "reason": reason})
		if err != nil {
			return err
		}
		if err := render(c.stdout, routput, v, "", nil); err != nil {
			return err
		}
		if m, ok := v.(map[string]any); ok && m["failed"] != 0.0 {
			return fmt.Errorf("replay-webhooks: %v top-up(s) failed", cell(m["failed"]))
		}
		return nil
	})

	// admin freeze|unfreeze|soft-block … (INC-011 mitigation): admin.go
	admin := c.adminCmd()
	return []*cobra.Command{recon, replay, admin}
}

// reconColumns are the report's columns: the runbook's six, then the
// verdict and its note.
var reconColumns = []string{"partner_id", "smp_balance", "gateway_balance", "diff_amount", "diff_pct", "last_txn_id", "verdict", "note"}

// reconReport prints the last run kept for date (or a run made now) with
// its rows. It fails (exit 1) when no run of the day is kept, or when the
// run failed.
func (c *cli) reconReport(cl *apiClient, date, output string, runNow bool, reason string) error {
	var id string
	if runNow {
		v, err := cl.do(c.ctx, http.MethodPost, "/admin/wallets/recon/runs", map[string]any{"date": date, "reason": reason})
		if err != nil {
			return err
		}
		id = cell(v.(map[string]any)["id"])
	} else {
		v, err := cl.do(c.ctx, http.MethodGet, "/admin/wallets/recon/runs?limit=1&date="+url.QueryEscape(date), nil)
		if err != nil {
			return err
		}
		runs, _ := v.(map[string]any)["runs"].([]any)
		if len(runs) == 0 {
			return fmt.Errorf("recon-report: no reconciliation run is kept for %s (recon-report --run runs one now)", date)
		}
		id = cell(runs[0].(map[string]any)["id"])
	}
	v, err := cl.do(c.ctx, http.MethodGet, "/admin/wallets/recon/runs/"+url.PathEscape(id), nil)
	if err != nil {
		return err
	}
	run, _ := v.(map[string]any)
	if output == "json" {
		return render(c.stdout, output, run, "", nil)
	}
	rows, _ := run["rows"].([]any)
	var table [][]string
	for _, r := range rows {
		m, _ := r.(map[string]any)
		row := make([]string, len(reconColumns))
		for i, col := range reconColumns {
			row[i] = cell(m[col])
		}
		if m["verdict"] == "inconclusive" { // no figure to compare: never a diff
			row[2], row[3], row[4] = "", "", ""
		}
		table = append(table, row)
	}
	if err := writeRows(c.stdout, output, reconColumns, table); err != nil {
		return err
	}
	summary := fmt.Sprintf("run %s of %s: %s, verdict %s; %s partner(s), %s mismatch(es), %s inconclusive, %s auto-corrected; largest diff %s %% / %s VND",
		cell(run["id"]), cell(run["day"]), cell(run["status"]), cell(run["verdict"]), cell(run["partners"]), cell(run["mismatches"]),
		cell(run["inconclusive"]), cell(run["auto_corrected"]), cell(run["max_diff_pct"]), cell(run["max_diff_vnd"]))
	if e := cell(run["error"]); e != "" {
		summary += "; " + e
	}
	if output == "csv" {
		fmt.Fprintln(c.stderr, summary) // the CSV itself stays the rows (> recon.csv)
	} else {
		fmt.Fprintln(c.stdout, summary)
	}
	if run["status"] == "failed" {
		return fmt.Errorf("recon-report: run %s failed: %s", cell(run["id"]), cell(run["error"]))
	}
	return nil
}

// whenLayouts are the times replay-webhooks takes: what date -d prints
// (its default format, with a zone name or a numeric offset), RFC 3339,
// and plain dates and times (UTC).
var whenLayouts = []string{time.RFC3339, "Mon Jan _2 15:04:05 -07 2006", "Mon Jan _2 15:04:05 -0700 2006", time.UnixDate,
	"Mon _2 Jan 2006 15:04:05 MST", "Mon _2 Jan 2006 03:04:05 PM MST", time.RFC1123, time.RFC1123Z, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"}

// parseWhen reads a time given as date -d prints it (or RFC 3339, or a
// date); a bare date or time is UTC.
func parseWhen(s string) (time.Time, error) {
	s = strings.Join(strings.Fields(s), " ")
	for _, l := range whenLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (give what date -d prints, RFC 3339 or YYYY-MM-DD)", s)
}
