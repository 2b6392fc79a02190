package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"smp/httpapi"
)

// smp ctl fraud export: a partner's evidence bundle (runbook INC-011:
// "Preserve evidence") through GET /admin/fraud/export.
func (c *cli) ctlFraudCmd(g *ctlFlags) *cobra.Command {
	var o fraudExportOpts
	fs := flag.NewFlagSet("smp ctl fraud export", flag.ContinueOnError)
	fs.StringVar(&o.partner, "partner", "", "the partner, e.g. P001")
	fs.StringVar(&o.from, "from", "", "from this time (what date -d prints, RFC 3339 or YYYY-MM-DD; default 30 days before --to)")
	fs.StringVar(&o.to, "to", "", "to this time (default now)")
	fs.StringVar(&o.dir, "out", "", "directory to write the bundle into (default fraud-evidence-<partner>-<time>)")
	export := c.leaf(&cobra.Command{Use: "export", Short: "write a partner's evidence bundle: decisions, IPs and devices, audit entries, postings (JSON and CSV; security role)"},
		fs, func([]string) error {
			return runCtlFraudExport(c.ctx, g.apiServer(), o, c.stdout)
		})
	return group(&cobra.Command{Use: "fraud", Short: "fraud detection (export)"}, export)
}

type fraudExportOpts struct {
	partner, from, to, dir string
}

func runCtlFraudExport(ctx context.Context, server string, o fraudExportOpts, stdout io.Writer) error {
	if o.partner == "" {
		return usageError{"--partner is required"}
	}
	q := url.Values{"partner": {o.partner}}
	for _, p := range []struct{ flag, v, key string }{{"--from", o.from, "from"}, {"--to", o.to, "to"}} {
		if p.v == "" {
			continue
		}
		t, err := parseWhen(p.v)
		if err != nil {
			return usageError{p.flag + ": " + err.Error()}
		}
		q.Set(p.key, t.UTC().Format(time.RFC3339))
	}
	c, err := newAPIClient(server, 5*time.Minute)
	if err != nil {
		return err
	}
	v, err := c.do(ctx, http.MethodGet, "/admin/fraud/export?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(v)
	var b httpapi.FraudEvidence
	if err := json.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("the server's bundle: %w", err)
	}
	dir := o.dir
	if dir == "" {
		dir = "fraud-evidence-" + o.partner + "-" + b.GeneratedAt.Format("20060102T150405Z")
	}
	if err := writeEvidence(dir, &b); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d decisions, %d top-ups, %d postings, %d audit entries (%s to %s)\n", dir, len(b.Decisions), len(b.Topups),
		len(b.Postings), len(b.Audit), b.From.Format(time.RFC3339), b.To.Format(time.RFC3339))
	return nil
}

// writeEvidence writes bundle.json and one CSV per part into dir.
func writeEvidence(dir string, b *httpapi.FraudEvidence) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(b, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "bundle.json"), append(js, '\n'), 0o640); err != nil {
		return err
	}
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	files := map[string][][]string{}
	rows := [][]string{{"decision_id", "created_at", "txn_id", "amount_vnd", "score", "outcome", "severity", "signals", "txn_ids", "ips", "ip_country", "user_agent", "device_id", "rules_version"}}
	for _, d := range b.Decisions {
		rows = append(rows, []string{d.ID, ts(d.CreatedAt), d.TxnID, strconv.FormatInt(d.AmountVND, 10), strconv.Itoa(d.Score), string(d.Outcome), d.Severity,
			strings.Join(d.Signals, " "), strings.Join(d.Evidence.TxnIDs, " "), strings.Join(d.Evidence.IPs, " "), d.Evidence.Country, d.Evidence.UserAgent,
			d.Evidence.DeviceID, d.RulesVersion})
	}
	files["decisions.csv"] = rows
	rows = [][]string{{"topup_id", "created_at", "txn_ref", "amount_vnd", "status", "client_ip", "user_agent", "device_id", "posting_id"}}
	for _, t := range b.Topups {
		rows = append(rows, []string{t.ID, ts(t.CreatedAt), t.TxnRef, strconv.FormatInt(t.AmountVND, 10), string(t.Status), t.ClientIP, t.UserAgent, t.DeviceID, t.PostingID})
	}
	files["topups.csv"] = rows
	rows = [][]string{{"seq", "id", "created_at", "type", "amount_vnd", "debit_account", "credit_account", "balance_after_vnd", "gateway_ref", "actor", "reason", "hash"}}
	for _, e := range b.Postings {
		rows = append(rows, []string{strconv.FormatInt(e.Seq, 10), e.ID, ts(e.CreatedAt), string(e.Type), strconv.FormatInt(e.AmountVND, 10), e.DebitAccount,
			e.CreditAccount, strconv.FormatInt(e.BalanceAfterVND, 10), e.GatewayRef, e.Actor, e.Reason, e.Hash})
	}
	files["postings.csv"] = rows
	rows = [][]string{{"at", "actor", "role", "action", "target", "reason"}}
	for _, a := range b.Audit {
		rows = append(rows, []string{ts(a.At), a.Actor, string(a.Role), a.Action, a.Target, a.Reason})
	}
	files["audit.csv"] = rows
	for name, rows := range files {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		w := csv.NewWriter(f)
		w.WriteAll(rows)
		if err := w.Error(); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}
