package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"
	"time"

	"smp"
)

const ctlEventsUsage = `smp ctl events list [--status received|processed|dlq] [--type inside.payment.succeeded] [--order ID] [--limit 100] [--output table|json]
    provider events in event_log, as the runbook's mongosh queries (INC-002):
    smp ctl events list --status dlq --type inside.payment.succeeded
  With --server URL (SMP_SERVER) it reads through the admin API (SMP_ADMIN_TOKEN); otherwise
  the database: --mysql-dsn (SMP_MYSQL_DSN), else SQLite in --data-dir, as for smp serve.
  Replays go through the admin API (POST /admin/events/{id}/replay): they are audited.
`

func runCtlEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		fmt.Fprint(stderr, ctlEventsUsage)
		return usageError{"smp ctl events: use list"}
	}
	fs := flag.NewFlagSet("smp ctl events list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.StringVar(&cfg.DataDir, "data-dir", "./smp-data", "data dir of the embedded database")
	cfg.registerMySQL(fs)
	var status, typ, order, output, server string
	fs.StringVar(&server, "server", "", "a running platform's URL: read through its admin API instead of the database (SMP_SERVER)")
	var limit int
	fs.StringVar(&status, "status", "", "received, processed or dlq")
	fs.StringVar(&typ, "type", "", "event type, e.g. inside.payment.succeeded")
	fs.StringVar(&order, "order", "", "order id")
	fs.IntVar(&limit, "limit", 100, "at most this many, newest first")
	fs.StringVar(&output, "output", "table", "table or json")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	switch smp.InboxStatus(status) {
	case "", smp.InboxReceived, smp.InboxProcessed, smp.InboxDLQ:
	default:
		return usageError{"--status must be received, processed or dlq"}
	}
	if output != "table" && output != "json" && !(server != "" && output == "csv") {
		return usageError{"--output must be table or json (or csv with --server)"}
	}
	if limit < 1 || limit > 10000 {
		return usageError{"--limit must be between 1 and 10000"}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if server != "" {
		c, err := newAPIClient(server, 30*time.Second)
		if err != nil {
			return err
		}
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		for k, v := range map[string]string{"status": status, "event_type": typ, "order_id": order} {
			if v != "" {
				q.Set(k, v)
			}
		}
		v, err := c.do(ctx, http.MethodGet, "/admin/events?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		return render(stdout, output, v, "events", []string{"event_id", "event_type", "order_id", "amount_vnd", "status", "attempts", "received_at", "last_error"})
	}
	db, err := openStore(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	evs, err := db.FindInboxEvents(ctx, smp.InboxFilter{Status: smp.InboxStatus(status), EventType: typ, OrderID: order, Limit: limit})
	if err != nil {
		return err
	}
	if output == "json" {
		if evs == nil {
			evs = []*smp.InboxEvent{}
		}
		return json.NewEncoder(stdout).Encode(evs)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "EVENT_ID\tTYPE\tORDER\tAMOUNT_VND\tSTATUS\tATTEMPTS\tRECEIVED\tLAST_ERROR")
	for _, e := range evs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%s\n", e.EventID, e.EventType, e.OrderID, e.AmountVND, e.Status, e.Attempts, e.ReceivedAt.Format(time.RFC3339), e.LastError)
	}
	w.Flush()
	fmt.Fprintf(stdout, "%d events\n", len(evs))
	return nil
}
