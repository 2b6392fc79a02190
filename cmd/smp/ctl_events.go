package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"smp"
)

const ctlEventsUsage = `smp ctl events list [--status received|processed|dlq] [--type inside.payment.succeeded] [--order ID] [--limit 100] [--output table|json|csv]
    provider events in event_log, as the runbook's mongosh queries (INC-002):
    smp ctl events list --status dlq --type inside.payment.succeeded
  With --server URL (SMP_SERVER) it reads through the admin API (SMP_ADMIN_TOKEN); otherwise
  the database: --mysql-dsn (SMP_MYSQL_DSN), else SQLite in --data-dir, as for smp serve.
  Replays go through the admin API (POST /admin/events/{id}/replay): they are audited.
`

func (c *cli) ctlEventsCmd(g *ctlFlags) *cobra.Command {
	fs := flag.NewFlagSet("smp ctl events list", flag.ContinueOnError)
	var cfg Config
	fs.StringVar(&cfg.DataDir, "data-dir", "./smp-data", "data dir of the embedded database")
	cfg.registerMySQL(fs)
	var status, typ, order string
	var limit int
	fs.StringVar(&status, "status", "", "received, processed or dlq")
	fs.StringVar(&typ, "type", "", "event type, e.g. inside.payment.succeeded")
	fs.StringVar(&order, "order", "", "order id")
	fs.IntVar(&limit, "limit", 100, "at most this many, newest first")
	list := c.leaf(&cobra.Command{Use: "list", Short: "provider events in event_log (INC-002)", Long: ctlEventsUsage}, fs, func([]string) error {
		return runCtlEvents(c.ctx, cfg, g.server, g.output, status, typ, order, limit, c.stdout)
	})
	return group(&cobra.Command{Use: "events", Short: "provider events (list, replay)", Long: ctlEventsUsage},
		list, c.apiCmd(g, "events replay", "replay", "replay provider events through the admin API (audited)"))
}

func runCtlEvents(ctx context.Context, cfg Config, server, output, status, typ, order string, limit int, stdout io.Writer) error {
	switch smp.InboxStatus(status) {
	case "", smp.InboxReceived, smp.InboxProcessed, smp.InboxDLQ:
	default:
		return usageError{"--status must be received, processed or dlq"}
	}
	if err := checkOutput(output); err != nil {
		return err
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
	if err := needPlatform(cfg, "smp.db", "the events are read there"); err != nil {
		return err
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
	rows := make([][]string, len(evs))
	for i, e := range evs {
		rows[i] = []string{e.EventID, e.EventType, e.OrderID, fmt.Sprint(e.AmountVND), string(e.Status), fmt.Sprint(e.Attempts), e.ReceivedAt.Format(time.RFC3339), e.LastError}
	}
	if output == "csv" {
		return writeRows(stdout, output, []string{"event_id", "event_type", "order_id", "amount_vnd", "status", "attempts", "received_at", "last_error"}, rows)
	}
	writeRows(stdout, output, []string{"event_id", "type", "order", "amount_vnd", "status", "attempts", "received", "last_error"}, rows)
	fmt.Fprintf(stdout, "%d events\n", len(evs))
	return nil
}
