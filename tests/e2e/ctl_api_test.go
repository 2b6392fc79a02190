package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
	"smp/sim"
)

// TestCtlAdminAPI: smp ctl's admin-API commands against a running
// platform, in table, JSON and CSV, with clear errors and exit codes.
// Not parallel: the token comes from SMP_ADMIN_TOKEN.
func TestCtlAdminAPI(t *testing.T) {
	insideSrv := httptest.NewServer(&sim.Inside{})
	t.Cleanup(insideSrv.Close)
	a := startApp(t, func(c *Config) { c.InsideURL = insideSrv.URL })
	ctl := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append(append([]string{"ctl"}, args...), "--server", a.url), &out, &errb)
		return out.String() + errb.String(), err
	}
	t.Setenv("SMP_ADMIN_TOKEN", "")
	if _, err := ctl("stats"); exitCode(err) != 2 || !strings.Contains(err.Error(), "SMP_ADMIN_TOKEN") {
		t.Fatalf("without a token: %v", err)
	}
	t.Setenv("SMP_ADMIN_TOKEN", "wrong")
	if _, err := ctl("stats"); exitCode(err) != 1 || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("with a wrong token: %v", err)
	}
	t.Setenv("SMP_ADMIN_TOKEN", a.admin)

	out, err := ctl("stats")
	if err != nil || !strings.Contains(out, "websocket_connections") || !strings.Contains(out, "queue_length.HCMC") {
		t.Fatalf("stats: %v\n%s", err, out)
	}
	out, err = ctl("stats", "--output", "json")
	var st map[string]any
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st["engine_up"] != true {
		t.Fatalf("stats json: %v\n%s", err, out)
	}
	if out, err = ctl("queues", "--output", "csv"); err != nil || !strings.HasPrefix(out, "key,value\n") || !strings.Contains(out, "HCMC,0") {
		t.Fatalf("queues csv: %v\n%s", err, out)
	}
	if out, err = ctl("flags"); err != nil || !strings.Contains(out, "ENABLE_AUTO_DISPATCH") {
		t.Fatalf("flags: %v\n%s", err, out)
	}
	if _, err = ctl("flags", "set", "--name", "ENABLE_AUTO_DISPATCH", "--value", "false"); exitCode(err) != 2 {
		t.Fatalf("flags set without a reason: %v", err)
	}
	if out, err = ctl("flags", "set", "--name", "ENABLE_AUTO_DISPATCH", "--value", "false", "--reason", "INC-001 option D"); err != nil {
		t.Fatalf("flags set: %v\n%s", err, out)
	}
	if out, _ = ctl("flags", "get", "--output", "csv"); !strings.Contains(out, "ENABLE_AUTO_DISPATCH,false") {
		t.Fatalf("flag not set:\n%s", out)
	}
	if out, err = ctl("orders", "list", "--stage", "02_dispatching"); err != nil || !strings.Contains(out, "PAYMENT_STATUS") {
		t.Fatalf("orders list: %v\n%s", err, out)
	}
	_, err = ctl("assign", "--order", "ord_nope", "--technician", "T0001", "--reason", "manual dispatch")
	if err == nil || !strings.Contains(err.Error(), "(HTTP 404 ") || exitCode(err) != 1 {
		t.Fatalf("assign of an unknown order: %v", err)
	}
	if _, err = ctl("events", "replay", "--id", "nope"); err == nil || !strings.Contains(err.Error(), "(HTTP 404 ") {
		t.Fatalf("replay of an unknown event: %v", err)
	}
	if out, err = ctl("events", "list", "--status", "dlq", "--output", "csv"); err != nil || !strings.HasPrefix(out, "event_id,event_type,order_id") {
		t.Fatalf("events list through the API: %v\n%s", err, out)
	}
	if _, err = ctl("events", "replay"); exitCode(err) != 2 {
		t.Fatalf("replay without --id or --type: %v", err)
	}
	if out, err = ctl("breakers"); err != nil || !strings.Contains(out, "inside") || !strings.Contains(out, "closed") {
		t.Fatalf("breakers: %v\n%s", err, out)
	}
	if out, err = ctl("breakers", "half-open", "--service", "inside"); err != nil || !strings.Contains(out, "half-open") {
		t.Fatalf("half-open: %v\n%s", err, out)
	}
	if out, err = ctl("alerts"); err != nil || !strings.Contains(out, "NAME") {
		t.Fatalf("alerts: %v\n%s", err, out)
	}
	if out, err = ctl("replica", "--output", "json"); err != nil || !strings.Contains(out, `"reads": "sqlite"`) {
		t.Fatalf("replica: %v\n%s", err, out)
	}

	// The bus through the API: lag, a dead letter listed and replayed (audited), a refused reset.
	must(t, a.Bus.Publish(context.Background(), smp.Message{Topic: smp.TopicOrders, Key: "x", Value: []byte("poison")}))
	wait.Until(t, 30*time.Second, "the poison dead-lettered by every group reading orders.events", func() bool {
		out, err := ctl("bus", "dlq", "list", "--topic", "orders.events.dlq", "--output", "csv")
		return err == nil && strings.Count(out, "schema mismatch") == groupsReading(smp.TopicOrders)
	})
	if out, err = ctl("bus", "lag", "--group", "dispatch-engine"); err != nil || !strings.Contains(out, "LOG_END_OFFSET") {
		t.Fatalf("bus lag: %v\n%s", err, out)
	}
	if _, err = ctl("bus", "dlq", "replay", "--topic", "orders.events.dlq", "--all"); exitCode(err) != 2 {
		t.Fatalf("replay without a reason: %v", err)
	}
	if out, err = ctl("bus", "dlq", "replay", "--topic", "orders.events.dlq", "--all", "--reason", "INC-007 after the fix"); err != nil || !strings.Contains(out, "replayed") {
		t.Fatalf("bus dlq replay: %v\n%s", err, out)
	}
	if _, err = ctl("bus", "reset-offsets", "--group", "dispatch-engine", "--topic", "orders.events:0", "--to-offset", "0", "--reason", "skip it"); err == nil || !strings.Contains(err.Error(), "(HTTP 409 ") {
		t.Fatalf("reset of a running group: %v", err)
	}
	if audit := a.do("GET", "/admin/audit", a.admin, nil); !strings.Contains(audit.Raw, "bus.dlq_replay") {
		t.Fatalf("dlq replay not audited: %s", audit.Raw)
	}

	if _, err = ctl("stats", "--output", "xml"); exitCode(err) != 2 {
		t.Fatalf("bad output: %v", err)
	}
	var o, e bytes.Buffer
	if err := run(context.Background(), []string{"ctl", "stats", "--server", "http://127.0.0.1:1"}, &o, &e); err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("unreachable server: %v", err)
	}
}
