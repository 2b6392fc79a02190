package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// smp ctl connect status|restart|pause|resume|stop|offsets: the Kafka
// Connect worker's REST API (runbook INC-008's curl commands) with the
// token of SMP_ADMIN_TOKEN, at --connect-server (SMP_CONNECT_SERVER).
func (c *cli) ctlConnectCmd(g *ctlFlags) *cobra.Command {
	var o connectOpts
	mk := func(use, short string, extra func(fs *flag.FlagSet)) *cobra.Command {
		fs := flag.NewFlagSet("smp ctl connect "+use, flag.ContinueOnError)
		fs.StringVar(&o.server, "connect-server", "http://127.0.0.1:8083", "the Kafka Connect worker's URL (smp connect, or serve --connect-addr)")
		fs.StringVar(&o.connector, "connector", "smp-mysql-connector", "the connector")
		if extra != nil {
			extra(fs)
		}
		return c.leaf(&cobra.Command{Use: use, Short: short}, fs, func([]string) error {
			return runCtlConnect(c.ctx, use, g.output, o, c.stdout)
		})
	}
	return group(&cobra.Command{Use: "connect", Short: "the Kafka Connect worker: connector status, restart, pause, resume, stop, offsets (INC-008)"},
		mk("status", "the connector's and its tasks' states (a failed task's trace)", nil),
		mk("restart", "restart the connector (--include-tasks, --only-failed) or one task (--task)", func(fs *flag.FlagSet) {
			fs.BoolVar(&o.includeTasks, "include-tasks", false, "restart its tasks too")
			fs.BoolVar(&o.onlyFailed, "only-failed", false, "only what is FAILED")
			fs.IntVar(&o.task, "task", -1, "restart only this task")
		}),
		mk("pause", "pause the connector", nil),
		mk("resume", "resume a paused or stopped connector", nil),
		mk("stop", "stop the connector (its offsets may then be reset)", nil),
		mk("offsets", "the connector's source offsets; --reset deletes them (only while STOPPED: the next start snapshots)", func(fs *flag.FlagSet) {
			fs.BoolVar(&o.reset, "reset", false, "delete the offsets")
		}))
}

type connectOpts struct {
	server, connector        string
	includeTasks, onlyFailed bool
	reset                    bool
	task                     int
}

func runCtlConnect(ctx context.Context, cmd, output string, o connectOpts, stdout io.Writer) error {
	if err := checkOutput(output); err != nil {
		return err
	}
	token := os.Getenv("SMP_ADMIN_TOKEN")
	if token == "" {
		return usageError{"SMP_ADMIN_TOKEN is not set (an admin bearer token: smp token --role ops --name you)"}
	}
	base := "/connectors/" + url.PathEscape(o.connector)
	method, path := http.MethodGet, base+"/status"
	switch cmd {
	case "restart":
		method, path = http.MethodPost, base+"/restart"
		if o.task >= 0 {
			path = fmt.Sprintf("%s/tasks/%d/restart", base, o.task)
		} else if o.includeTasks || o.onlyFailed {
			path += fmt.Sprintf("?includeTasks=%t&onlyFailed=%t", o.includeTasks, o.onlyFailed)
		}
	case "pause", "resume", "stop":
		method, path = http.MethodPut, base+"/"+cmd
	case "offsets":
		path = base + "/offsets"
		if o.reset {
			method = http.MethodDelete
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(o.server, "/")+path, nil)
	if err != nil {
		return usageError{fmt.Sprintf("--connect-server %q: %v", o.server, err)}
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", o.server, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	var v map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%s answered HTTP %d with a body that is not a JSON object", o.server, resp.StatusCode)
		}
	}
	if resp.StatusCode >= 300 {
		msg, _ := v["message"].(string)
		return fmt.Errorf("%s (HTTP %d)", msg, resp.StatusCode)
	}
	if output == "json" {
		if v == nil {
			v = map[string]any{"status": resp.StatusCode}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	switch {
	case v == nil:
		_, err = fmt.Fprintf(stdout, "%s %s: HTTP %d\n", method, path, resp.StatusCode)
		return err
	case v["connector"] != nil: // a status
		rows := [][]string{statusRow("connector", v["connector"])}
		tasks, _ := v["tasks"].([]any)
		for _, t := range tasks {
			m, _ := t.(map[string]any)
			rows = append(rows, statusRow(fmt.Sprintf("task %v", m["id"]), m))
		}
		return writeRows(stdout, output, []string{"instance", "state", "worker_id", "trace"}, rows)
	case v["offsets"] != nil:
		var rows [][]string
		offs, _ := v["offsets"].([]any)
		for _, x := range offs {
			m, _ := x.(map[string]any)
			p, _ := json.Marshal(m["partition"])
			off, _ := json.Marshal(m["offset"])
			rows = append(rows, []string{string(p), string(off)})
		}
		return writeRows(stdout, output, []string{"partition", "offset"}, rows)
	}
	msg, _ := v["message"].(string)
	_, err = fmt.Fprintln(stdout, msg)
	return err
}

func statusRow(name string, x any) []string {
	m, _ := x.(map[string]any)
	s := func(k string) string { v, _ := m[k].(string); return v }
	trace := s("trace")
	if i := strings.IndexByte(trace, '\n'); i >= 0 {
		trace = trace[:i]
	}
	return []string{name, s("state"), s("worker_id"), trace}
}
