package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

const ctlAPIUsage = `smp ctl over a running platform's admin API (token from SMP_ADMIN_TOKEN,
server from --server or SMP_SERVER, default http://127.0.0.1:8080;
--output table|json|csv):

  smp ctl stats                                     WebSocket connections, queues, latency (INC-001)
  smp ctl queues                                    queue length per city (LLEN dispatch:queue:*)
  smp ctl flags get [--name NAME]
  smp ctl flags set --name ENABLE_AUTO_DISPATCH --value false --reason "..."
  smp ctl orders list [--stage 02_dispatching] [--older-than 10m] [--payment pending] [--limit N] [--after CURSOR]
  smp ctl candidates --order ID
  smp ctl assign --order ID --technician T0042 --reason "..." [--override]
  smp ctl events replay --id EVENT_ID [--reason "..."]
  smp ctl events replay --type inside.payment.succeeded --reason "..."   (every dlq event of the type)
  smp ctl breakers [status]
  smp ctl breakers half-open --service inside
  smp ctl alerts [--status firing]
  smp ctl replica                                   where reads go, replica lag (INC-003)
  smp ctl wallets show [--partner P001]             partner wallets: balance, floor, state (INC-010)
  smp ctl wallets verify                            the ledger's hash chain and balances (exit 1 if it fails)
  smp ctl wallets adjust --partner P001 --amount -50000 --reason "..." [--expected-diff N] [--id KEY]
  smp ctl wallets floor --partner P001 --floor-vnd 100000 --reason "..."
  smp ctl regions status                            replication paths into this region: state, lag (INC-012)
  smp ctl regions pause|resume --path asia-to-china --reason "..."
  smp ctl regions verify --sample 10 --peers china=URL,us=URL   spot check by hash (exit 1 if one differs)
  smp ctl readmodel health|indices|allocation|lag  the search read model: _cluster/health, _cat/indices, _cat/allocation, es_sink_lag_seconds (INC-009)
  smp ctl readmodel compare --order ID              the order in the database and in the read model, field by field (exit 1 unless they match)
  smp ctl readmodel check [--repair --reason "..."] the drift check readmodel-reconciliation now (exit 1 when drift is left)
  smp ctl readmodel reindex --mapping orders-v2.json --reason "..."   new index version, filled, alias swapped, old dropped
  smp ctl readmodel resync --reason "..." [--wait 10m]                pause the sink, drop the indices, re-snapshot, resume
  smp ctl readmodel restart [--connect-server URL]  restart elasticsearch-sink and its tasks through the Connect API
  smp ctl bus ... --server URL                      consumer lag, DLQ list/replay, offset reset through the API (audited)
`

// apiError is an answer of the admin API other than 2xx.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d %s)", e.Message, e.Status, e.Code) }

// newAPIClient is a client of the admin API at server with the token in
// SMP_ADMIN_TOKEN (never a flag: flags show in ps).
func newAPIClient(server string, timeout time.Duration) (*apiClient, error) {
	token := os.Getenv("SMP_ADMIN_TOKEN")
	if token == "" {
		return nil, usageError{"SMP_ADMIN_TOKEN is not set (an admin bearer token: smp token --role ops --name you)"}
	}
	return &apiClient{server: server, token: token, http: &http.Client{Timeout: timeout}}, nil
}

type apiClient struct {
	server, token string
	http          *http.Client
}

func (c *apiClient) do(ctx context.Context, method, path string, body any) (any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.server, "/")+path, rd)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--server %q: %v", c.server, err)}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("%s answered HTTP %d with a body that is not JSON", c.server, resp.StatusCode)
	}
	if resp.StatusCode >= 300 {
		e := &apiError{Status: resp.StatusCode}
		if m, ok := v.(map[string]any); ok {
			if em, ok := m["error"].(map[string]any); ok {
				e.Code, _ = em["code"].(string)
				e.Message, _ = em["message"].(string)
			}
		}
		return nil, e
	}
	return v, nil
}

// apiOpts are the flags of the admin-API commands.
type apiOpts struct {
	name, value, reason, order, tech, id, typ, service, stage, status string
	override                                                          bool
	// orders list
	payment, after string
	olderThan      time.Duration
	limit          int
}

// ctlAPICmds are the admin-API commands but events replay (under events).
// A bare "flags" or "breakers" means their listing.
func (c *cli) ctlAPICmds(g *ctlFlags) []*cobra.Command {
	flags := c.apiCmd(g, "flags get", "flags", "feature flags (get, set); bare: get")
	flags.AddCommand(c.apiCmd(g, "flags get", "get", "feature flags and who changed them"),
		c.apiCmd(g, "flags set", "set", "change a flag (audited)"))
	breakers := c.apiCmd(g, "breakers status", "breakers", "the integrations' circuit breakers (status, half-open); bare: status")
	breakers.AddCommand(c.apiCmd(g, "breakers status", "status", "each breaker's state"),
		c.apiCmd(g, "breakers half-open", "half-open", "let a probe through an open breaker"))
	return []*cobra.Command{
		c.apiCmd(g, "stats", "stats", "WebSocket connections, queues, latency (INC-001)"),
		c.apiCmd(g, "queues", "queues", "queue length per city (LLEN dispatch:queue:*)"),
		flags,
		group(&cobra.Command{Use: "orders", Short: "orders (list)"}, c.apiCmd(g, "orders list", "list", "orders, e.g. --stage 02_dispatching")),
		c.apiCmd(g, "candidates", "candidates", "an order's candidate technicians"),
		c.apiCmd(g, "assign", "assign", "assign an order to a technician (manual dispatch, audited)"),
		breakers,
		c.apiCmd(g, "alerts", "alerts", "alerts received from Alertmanager"),
		c.apiCmd(g, "replica", "replica", "where reads go, replica lag (INC-003)"),
	}
}

// apiCmd is the admin-API command cmd ("flags set"), named use.
func (c *cli) apiCmd(g *ctlFlags, cmd, use, short string) *cobra.Command {
	o := &apiOpts{}
	fs := flag.NewFlagSet("smp ctl "+cmd, flag.ContinueOnError)
	switch cmd {
	case "flags get":
		fs.StringVar(&o.name, "name", "", "one flag")
	case "flags set":
		fs.StringVar(&o.name, "name", "", "the flag, e.g. ENABLE_AUTO_DISPATCH")
		fs.StringVar(&o.value, "value", "", "true or false")
		fs.StringVar(&o.reason, "reason", "", "why (audited)")
	case "orders list":
		fs.StringVar(&o.stage, "stage", "", "e.g. 02_dispatching")
		fs.StringVar(&o.payment, "payment", "", "payment status, e.g. pending (INC-002 option B's list)")
		fs.DurationVar(&o.olderThan, "older-than", 0, "only orders whose stage changed longer ago than this, e.g. 10m")
		fs.IntVar(&o.limit, "limit", 100, "orders per page (1 to 1000)")
		fs.StringVar(&o.after, "after", "", "the next page: the cursor the previous page printed")
	case "candidates":
		fs.StringVar(&o.order, "order", "", "order id")
	case "assign":
		fs.StringVar(&o.order, "order", "", "order id")
		fs.StringVar(&o.tech, "technician", "", "technician id")
		fs.StringVar(&o.reason, "reason", "", "why (audited)")
		fs.BoolVar(&o.override, "override", false, "assign although the technician is offline, in another city or lacks the skill (audited as an override)")
	case "events replay":
		fs.StringVar(&o.id, "id", "", "one event id")
		fs.StringVar(&o.typ, "type", "", "every dlq event of this type")
		fs.StringVar(&o.reason, "reason", "", "why (audited)")
	case "breakers half-open":
		fs.StringVar(&o.service, "service", "", "inside or wms")
	case "alerts":
		fs.StringVar(&o.status, "status", "", "firing or resolved")
	}
	return c.leaf(&cobra.Command{Use: use, Short: short}, fs, func([]string) error {
		return runCtlAPI(c.ctx, cmd, g.apiServer(), g.output, o, c.stdout)
	})
}

func runCtlAPI(ctx context.Context, cmd, server, output string, o *apiOpts, stdout io.Writer) error {
	name, value, reason, order, tech, id, typ, service, stage, status := o.name, o.value, o.reason, o.order, o.tech, o.id, o.typ, o.service, o.stage, o.status
	if err := checkOutput(output); err != nil {
		return err
	}
	c, err := newAPIClient(server, 30*time.Second)
	if err != nil {
		return err
	}
	need := func(v, flagName string) error {
		if strings.TrimSpace(v) == "" {
			return usageError{"--" + flagName + " is required"}
		}
		return nil
	}
	var method, path, list string
	var body any
	var cols []string
	method = http.MethodGet
	switch cmd {
	case "stats":
		path = "/admin/stats"
	case "queues":
		path, list = "/admin/stats", "queue_length"
	case "flags get":
		path, list, cols = "/admin/flags", "flags", []string{"name", "value", "updated_at", "updated_by"}
	case "flags set":
		if err := need(name, "name"); err != nil {
			return err
		}
		if value != "true" && value != "false" {
			return usageError{"--value must be true or false"}
		}
		if err := need(reason, "reason"); err != nil {
			return err
		}
		method, path, body = http.MethodPut, "/admin/flags/"+url.PathEscape(name), map[string]any{"value": value == "true", "reason": reason}
	case "orders list":
		path, list, cols = "/admin/orders", "orders", []string{"id", "city", "service", "stage", "payment_status", "technician_id", "stage_changed_at"}
		if o.limit < 1 || o.limit > 1000 {
			return usageError{"--limit must be between 1 and 1000"}
		}
		if o.olderThan < 0 {
			return usageError{"--older-than must be positive"}
		}
		q := url.Values{"limit": {fmt.Sprint(o.limit)}}
		for k, v := range map[string]string{"stage": stage, "payment": o.payment, "after": o.after} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if o.olderThan > 0 {
			q.Set("older_than", fmt.Sprint(o.olderThan.Seconds()))
		}
		path += "?" + q.Encode()
	case "candidates":
		if err := need(order, "order"); err != nil {
			return err
		}
		path, list = "/admin/orders/"+url.PathEscape(order)+"/candidates", "candidates"
	case "assign":
		for f, v := range map[string]string{"order": order, "technician": tech, "reason": reason} {
			if err := need(v, f); err != nil {
				return err
			}
		}
		method, path, body = http.MethodPost, "/admin/orders/"+url.PathEscape(order)+"/assign", map[string]any{"technician_id": tech, "reason": reason, "override": o.override}
	case "events replay":
		if (id == "") == (typ == "") {
			return usageError{"give --id EVENT_ID or --type EVENT_TYPE"}
		}
		method = http.MethodPost
		if id != "" {
			path, body = "/admin/events/"+url.PathEscape(id)+"/replay", map[string]string{"reason": reason}
		} else {
			if err := need(reason, "reason"); err != nil {
				return err
			}
			path, body = "/admin/events/replay", map[string]string{"event_type": typ, "reason": reason}
		}
	case "breakers status":
		path, list, cols = "/admin/circuit-breaker", "breakers", []string{"service", "state", "failures", "successes", "remaining_open_seconds", "bypassed"}
	case "breakers half-open":
		if err := need(service, "service"); err != nil {
			return err
		}
		method, path, body = http.MethodPost, "/admin/circuit-breaker/half-open", map[string]string{"service": service}
	case "replica":
		path = "/admin/replica"
	case "alerts":
		path, list, cols = "/admin/alerts", "alerts", []string{"name", "status", "severity", "starts_at", "updated_at"}
		if status != "" {
			path += "?status=" + url.QueryEscape(status)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	if err := render(stdout, output, v, list, cols); err != nil {
		return err
	}
	if m, ok := v.(map[string]any); ok && cmd == "orders list" && output == "table" {
		// Never stop silently at a page: say there is more, and how to get it.
		n, _ := m["orders"].([]any)
		if next, _ := m["next"].(string); next != "" {
			fmt.Fprintf(stdout, "%d orders shown; more match: add --after %s for the next page\n", len(n), next)
		} else {
			fmt.Fprintf(stdout, "%d orders\n", len(n))
		}
	}
	return nil
}

// render prints v: JSON as is; table and CSV as rows. With list, the
// rows are v[list] (a list of objects, or a map shown as key/value);
// without, v itself is flattened into key/value rows.
func render(w io.Writer, output string, v any, list string, cols []string) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	var header []string
	var rows [][]string
	target := v
	if m, ok := v.(map[string]any); ok && list != "" {
		target = m[list]
	}
	switch t := target.(type) {
	case []any:
		if len(cols) == 0 && len(t) > 0 {
			if first, ok := t[0].(map[string]any); ok {
				cols = slices.Sorted(maps.Keys(first))
			}
		}
		header = cols
		for _, it := range t {
			m, _ := it.(map[string]any)
			row := make([]string, len(cols))
			for i, c := range cols {
				row[i] = cell(m[c])
			}
			rows = append(rows, row)
		}
	default:
		header = []string{"key", "value"}
		flat := map[string]string{}
		flatten("", target, flat)
		for _, k := range slices.Sorted(maps.Keys(flat)) {
			rows = append(rows, []string{k, flat[k]})
		}
	}
	return writeRows(w, output, header, rows)
}

func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, x, out)
		}
	default:
		out[prefix] = cell(t)
	}
}

func cell(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		if t == float64(int64(t)) {
			return fmt.Sprintf("%d", int64(t))
		}
		return fmt.Sprintf("%g", t)
	case map[string]any, []any:
		b, _ := json.Marshal(t)
		return string(b)
	}
	return fmt.Sprint(v)
}
