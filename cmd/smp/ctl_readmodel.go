package main

import (
	"context"
	"errors"
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

	"smp"
	"smp/readmodel"
)

// smp ctl readmodel …: the search read model's operations (runbook
// INC-009) through the admin API of --server (SMP_SERVER), token in
// SMP_ADMIN_TOKEN; restart goes to the Connect worker's API
// (--connect-server), as smp ctl connect restart does.
func (c *cli) ctlReadModelCmd(g *ctlFlags) *cobra.Command {
	view := func(name, short string) *cobra.Command {
		return c.leaf(&cobra.Command{Use: name, Short: short}, flag.NewFlagSet("smp ctl readmodel "+name, flag.ContinueOnError), func([]string) error {
			return runCtlReadModelView(c.ctx, g.apiServer(), g.output, name, c.stdout)
		})
	}
	var order, table string
	cfs := flag.NewFlagSet("smp ctl readmodel compare", flag.ContinueOnError)
	cfs.StringVar(&order, "order", "", "the order id")
	cfs.StringVar(&table, "table", "orders", "orders or order_transitions (then --order is a transition's id)")
	compare := c.leaf(&cobra.Command{Use: "compare", Short: "one order in the database and in the read model, field by field (exit 1 unless they match)"}, cfs, func([]string) error {
		return runCtlReadModelCompare(c.ctx, g.apiServer(), g.output, table, order, c.stdout)
	})
	var repair bool
	var checkReason string
	kfs := flag.NewFlagSet("smp ctl readmodel check", flag.ContinueOnError)
	kfs.BoolVar(&repair, "repair", false, "write what drifted again from the database, then check again (ops; audited)")
	kfs.StringVar(&checkReason, "reason", "", "why (audited; required with --repair)")
	check := c.leaf(&cobra.Command{Use: "check", Short: "the drift check readmodel-reconciliation now (exit 1 when drift is left)"}, kfs, func([]string) error {
		return runCtlReadModelCheck(c.ctx, g.apiServer(), g.output, repair, checkReason, c.stdout)
	})
	var mapping, reindexReason string
	rfs := flag.NewFlagSet("smp ctl readmodel reindex", flag.ContinueOnError)
	rfs.StringVar(&mapping, "mapping", "", "the corrected mapping, a file named <table>-v<N>.json (orders-v2.json)")
	rfs.StringVar(&reindexReason, "reason", "", "why (audited)")
	reindex := c.leaf(&cobra.Command{Use: "reindex", Short: "a new index version from --mapping, filled, the alias swapped, the old index dropped (scenario 3; ops; audited)"}, rfs, func([]string) error {
		return runCtlReadModelReindex(c.ctx, g.apiServer(), g.output, mapping, reindexReason, c.stdout, c.stderr)
	})
	var resyncReason string
	var waitFor time.Duration
	sfs := flag.NewFlagSet("smp ctl readmodel resync", flag.ContinueOnError)
	sfs.StringVar(&resyncReason, "reason", "", "why (audited)")
	sfs.DurationVar(&waitFor, "wait", 0, "then follow the rebuild up to this long (lag and counts each second) until the check finds no drift; exit 1 if it does not")
	resync := c.leaf(&cobra.Command{Use: "resync", Short: "pause the sink, drop the indices, rebuild from a fresh snapshot, resume (scenario 4; ops; audited)"}, sfs, func([]string) error {
		return runCtlReadModelResync(c.ctx, g.apiServer(), g.output, resyncReason, waitFor, c.stdout)
	})
	var o connectOpts
	tfs := flag.NewFlagSet("smp ctl readmodel restart", flag.ContinueOnError)
	tfs.StringVar(&o.server, "connect-server", "http://127.0.0.1:8083", "the Kafka Connect worker's URL (smp connect, or serve --connect-addr)")
	restart := c.leaf(&cobra.Command{Use: "restart", Short: "restart elasticsearch-sink and its tasks through the Connect API (scenario 2)"}, tfs, func([]string) error {
		o.connector, o.includeTasks = readmodel.ConnectorName, true
		return runCtlConnect(c.ctx, "restart", g.output, o, c.stdout)
	})
	return group(&cobra.Command{Use: "readmodel", Short: "the search read model: health, indices, allocation, lag, compare, check, reindex, resync, restart (INC-009)"},
		view("health", "_cluster/health: status, nodes, indices, unassigned shards"),
		view("indices", "_cat/indices: each index, its aliases, documents and size"),
		view("allocation", "_cat/allocation: each node's disk"),
		view("lag", "es_sink_lag_seconds (-1: no sink in that process)"),
		compare, check, reindex, resync, restart)
}

func runCtlReadModelView(ctx context.Context, server, output, view string, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	c, err := newAPIClient(server, 30*time.Second)
	if err != nil {
		return err
	}
	v, err := c.do(ctx, http.MethodGet, "/admin/readmodel/"+view, nil)
	if err != nil {
		return err
	}
	switch {
	case output == "json" || view == "health" || view == "lag":
		return render(stdout, output, v, "", nil)
	case view == "indices":
		var xs []smp.IndexInfo
		if err := remarshal(v, &xs); err != nil {
			return err
		}
		rows := [][]string{}
		for _, x := range xs {
			rows = append(rows, []string{x.Health, x.Name, strings.Join(x.Aliases, ","), strconv.FormatInt(x.Docs, 10), strconv.FormatInt(x.Bytes, 10)})
		}
		return writeRows(stdout, output, []string{"health", "index", "aliases", "docs.count", "store.size"}, rows)
	default:
		var xs []smp.Allocation
		if err := remarshal(v, &xs); err != nil {
			return err
		}
		rows := [][]string{}
		for _, x := range xs {
			rows = append(rows, []string{strconv.Itoa(x.Shards), strconv.FormatInt(x.DiskIndices, 10), strconv.FormatInt(x.DiskUsed, 10),
				strconv.FormatInt(x.DiskAvail, 10), strconv.FormatFloat(x.DiskPercent, 'f', 1, 64), x.Node})
		}
		return writeRows(stdout, output, []string{"shards", "disk.indices", "disk.used", "disk.avail", "disk.percent", "node"}, rows)
	}
}

func runCtlReadModelCompare(ctx context.Context, server, output, table, order string, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	if strings.TrimSpace(order) == "" {
		return usageError{"--order is required"}
	}
	if !validTable(table) {
		return usageError{fmt.Sprintf("--table %q: one of %s", table, strings.Join(readmodel.Tables, ", "))}
	}
	c, err := newAPIClient(server, 30*time.Second)
	if err != nil {
		return err
	}
	v, err := c.do(ctx, http.MethodGet, "/admin/readmodel/compare?"+url.Values{"order": {order}, "table": {table}}.Encode(), nil)
	if err != nil {
		return err
	}
	var cmp readmodel.Comparison
	if err := remarshal(v, &cmp); err != nil {
		return err
	}
	if output == "json" {
		err = render(stdout, output, v, "", nil)
	} else {
		rows := [][]string{}
		for _, d := range cmp.Differences {
			rows = append(rows, []string{d.Field, cell(d.Database), cell(d.Index)})
		}
		if err = writeRows(stdout, output, []string{"field", "database", "read_model"}, rows); err == nil && output == "table" {
			fmt.Fprintf(stdout, "%s %s: in the database %t, in the read model %t (version %d); match %t\n", cmp.Table, cmp.ID, cmp.InDatabase, cmp.InIndex, cmp.Version, cmp.Match)
		}
	}
	if err == nil && !cmp.Match {
		err = fmt.Errorf("%s %s: the database and the read model differ", cmp.Table, cmp.ID)
	}
	return err
}

func validTable(t string) bool {
	for _, x := range readmodel.Tables {
		if t == x {
			return true
		}
	}
	return false
}

func runCtlReadModelCheck(ctx context.Context, server, output string, repair bool, reason string, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	if repair {
		if err := needReason(reason); err != nil {
			return err
		}
	}
	c, err := newAPIClient(server, 10*time.Minute)
	if err != nil {
		return err
	}
	v, err := c.do(ctx, http.MethodPost, "/admin/readmodel/check", map[string]any{"repair": repair, "reason": reason})
	if err != nil {
		return err
	}
	var r readmodel.DriftReport
	if err := remarshal(v, &r); err != nil {
		return err
	}
	if output == "json" {
		err = render(stdout, output, v, "", nil)
	} else {
		err = writeDriftReport(stdout, output, &r)
	}
	if err != nil {
		return err
	}
	left := r.Total()
	if r.After != nil {
		left = r.After.Total()
	}
	if left > 0 {
		return fmt.Errorf("%d ids drifted in the read model (%s)", left, driftHint(repair))
	}
	return nil
}

func driftHint(repaired bool) string {
	if repaired {
		return "left after the repair: smp ctl readmodel resync"
	}
	return "repair: smp ctl readmodel check --repair --reason ..."
}

// writeDriftReport prints a drift report: a row per table (counts,
// watermarks, the ids that drifted), then the connectors, the
// dead-letter depth and, after a repair, the check again.
func writeDriftReport(w io.Writer, output string, r *readmodel.DriftReport) error {
	rows := [][]string{}
	add := func(phase string, r *readmodel.DriftReport) {
		for _, t := range r.Tables {
			rows = append(rows, []string{phase, t.Table, strconv.FormatInt(t.Rows, 10), strconv.FormatInt(t.Documents, 10),
				micros(t.WatermarkDB), micros(t.WatermarkIndex), strconv.Itoa(t.Sampled),
				ids(t.Missing), ids(t.Extra), ids(t.Mismatched), strconv.FormatFloat(t.DriftRatio*100, 'f', 3, 64)})
		}
	}
	add("found", r)
	if r.After != nil {
		add("after", r.After)
	}
	if err := writeRows(w, output, []string{"check", "table", "rows", "documents", "watermark_db", "watermark_index", "sampled", "missing", "extra", "mismatched", "drift_pct"}, rows); err != nil {
		return err
	}
	if output != "table" {
		return nil
	}
	var states []string
	for _, name := range []string{"smp-mysql-connector", readmodel.ConnectorName} {
		if s, ok := r.Connectors[name]; ok {
			states = append(states, name+" "+s)
		}
	}
	for name, s := range r.Connectors {
		if name != "smp-mysql-connector" && name != readmodel.ConnectorName {
			states = append(states, name+" "+s)
		}
	}
	if len(states) == 0 {
		states = []string{"unknown"}
	}
	fmt.Fprintf(w, "connectors: %s\n", strings.Join(states, "; "))
	fmt.Fprintf(w, "dead letters on %s: %d; es_sink_lag_seconds %.1f\n", readmodel.DefaultDLQ, r.DeadLetters, r.LagSeconds)
	after := r.Total()
	if r.After != nil {
		after = r.After.Total()
		fmt.Fprintf(w, "drifted %d, repaired %d, drift after the repair %d\n", r.Total(), r.Repaired, after)
	} else {
		fmt.Fprintf(w, "drifted %d (above 0.1 %%: %t)\n", after, r.Drifted)
	}
	return nil
}

func micros(us int64) string {
	if us == 0 {
		return ""
	}
	return time.UnixMicro(us).UTC().Format(time.RFC3339)
}

// ids lists drifted ids, at most 5 (then how many more).
func ids(xs []string) string {
	if len(xs) <= 5 {
		return strings.Join(xs, " ")
	}
	return strings.Join(xs[:5], " ") + fmt.Sprintf(" (+%d)", len(xs)-5)
}

func runCtlReadModelReindex(ctx context.Context, server, output, file, reason string, stdout, stderr io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	if file == "" {
		return usageError{"--mapping is required: the corrected mapping, a file named <table>-v<N>.json"}
	}
	if err := needReason(reason); err != nil {
		return err
	}
	table, _, err := readmodel.ParseMappingName(file)
	if err != nil {
		return usageError{err.Error()}
	}
	if !validTable(table) {
		return usageError{fmt.Sprintf("--mapping %s: the read model indexes %s", filepath.Base(file), strings.Join(readmodel.Tables, ", "))}
	}
	body, err := os.ReadFile(file)
	if err != nil {
		return usageError{fmt.Sprintf("--mapping: %v", err)}
	}
	if _, err := smp.ParseSearchMapping(body); err != nil {
		return usageError{fmt.Sprintf("--mapping %s: %v", file, err)}
	}
	c, err := newAPIClient(server, 30*time.Minute)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "reindexing %s from %s (the sink is paused meanwhile; searches answer throughout)…\n", table, filepath.Base(file))
	v, err := c.do(ctx, http.MethodPost, "/admin/readmodel/reindex", map[string]any{"file": filepath.Base(file), "mapping": jsonRaw(body), "reason": reason})
	if err != nil {
		return err
	}
	if output != "table" {
		return render(stdout, output, v, "", nil)
	}
	var r readmodel.ReindexResult
	if err := remarshal(v, &r); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "reindexed %s: %d documents copied from %s to %s, the alias %s moved to %s, %s dropped\n", r.Table, r.Documents, r.From, r.To, r.Table, r.To, r.From)
	return err
}

// jsonRaw sends a file's JSON as it is.
type jsonRaw []byte

func (j jsonRaw) MarshalJSON() ([]byte, error) { return j, nil }

func runCtlReadModelResync(ctx context.Context, server, output, reason string, waitFor time.Duration, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	if err := needReason(reason); err != nil {
		return err
	}
	if waitFor < 0 {
		return usageError{"--wait must not be negative"}
	}
	c, err := newAPIClient(server, 5*time.Minute)
	if err != nil {
		return err
	}
	v, err := c.do(ctx, http.MethodPost, "/admin/readmodel/resync", map[string]any{"reason": reason})
	if err != nil {
		return err
	}
	var r readmodel.ResyncResult
	if err := remarshal(v, &r); err != nil {
		return err
	}
	if output == "json" && waitFor == 0 {
		return render(stdout, output, v, "", nil)
	}
	if output != "json" {
		fmt.Fprintf(stdout, "dropped %s; created %s; smp-mysql-connector takes a fresh snapshot and %s indexes it\n",
			orNone(r.Dropped), orNone(r.Created), readmodel.ConnectorName)
	}
	if waitFor == 0 {
		if output != "json" {
			fmt.Fprintln(stdout, "the rebuild goes on: smp ctl readmodel lag, then smp ctl readmodel check")
		}
		return nil
	}
	// Follow the rebuild: the lag, then the check (without repair) until
	// the documents match the rows.
	deadline := time.Now().Add(waitFor)
	for {
		lv, err := c.do(ctx, http.MethodGet, "/admin/readmodel/lag", nil)
		if err != nil {
			return err
		}
		lag, _ := lv.(map[string]any)["es_sink_lag_seconds"].(float64)
		if lag == 0 {
			cv, err := c.do(ctx, http.MethodPost, "/admin/readmodel/check", map[string]any{})
			if err != nil {
				return err
			}
			var rep readmodel.DriftReport
			if err := remarshal(cv, &rep); err != nil {
				return err
			}
			var counts []string
			for _, t := range rep.Tables {
				counts = append(counts, fmt.Sprintf("%s %d rows / %d documents", t.Table, t.Rows, t.Documents))
			}
			if output != "json" {
				fmt.Fprintf(stdout, "lag 0 s; %s; drifted %d\n", strings.Join(counts, ", "), rep.Total())
			}
			if rep.Total() == 0 {
				if output == "json" {
					return render(stdout, output, map[string]any{"resync": v, "check": cv}, "", nil)
				}
				fmt.Fprintln(stdout, "re-sync done: the read model matches the database")
				return nil
			}
		} else if output != "json" {
			fmt.Fprintf(stdout, "lag %.1f s\n", lag)
		}
		if time.Now().After(deadline) {
			return errors.New("the read model does not match the database yet (--wait elapsed): smp ctl readmodel check")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}
