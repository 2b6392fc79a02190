package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/app"
	"smp/auth"
	"smp/internal/wait"
	"smp/sim"
)

// TestCtlReadModel drives the read model of a running platform (serve
// with the Connect worker) with smp ctl readmodel: the runbook's views,
// compare, the drift check finding a document deleted behind the sink's
// back and repairing it, a reindex under a new mapping, a full re-sync
// followed to parity, the sink's restart. Bad input exits 2 and the role
// without readmodel.manage is refused (exit 1); neither changes anything.
func TestCtlReadModel(t *testing.T) {
	ctx := context.Background()
	cfg := app.DefaultConfig()
	cfg.DataDir, cfg.Addr, cfg.ConnectAddr, cfg.AdminToken, cfg.Partitions = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "adm", 2
	a := &app.App{Cfg: cfg}
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ds, err := sim.Seed(ctx, a.Store, sim.SeedConfig{Partners: 1, Technicians: 2, Customers: 1, Seed: 7}, auth.HashToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store.PutToken(ctx, auth.HashToken("fin"), auth.KindAdmin, "fiona", smp.RoleFinance); err != nil {
		t.Fatal(err)
	}
	var id string
	for range 3 {
		req, _ := http.NewRequest("POST", a.HTTP.URL()+"/v1/orders",
			strings.NewReader(`{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"address":"12 Nguyễn Huệ","price_vnd":300000}`))
		req.Header.Set("Authorization", "Bearer "+ds.Customers[0].Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var o smp.Order
		json.NewDecoder(resp.Body).Decode(&o)
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("create order: %d", resp.StatusCode)
		}
		id = o.ID
	}
	ctlAs := func(token string, args ...string) (string, error) {
		t.Setenv("SMP_ADMIN_TOKEN", token)
		var out, errb bytes.Buffer
		err := run(ctx, append(append([]string{"ctl"}, args...), "--server", a.HTTP.URL()), &out, &errb)
		return out.String(), err
	}
	ctl := func(args ...string) (string, error) { return ctlAs("adm", args...) }
	alias := func() string {
		t.Helper()
		x, err := a.ReadIndex.Alias(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		return x
	}

	wait.Until(t, 20*time.Second, "compare "+id+" matching (the sink caught up)", func() bool {
		out, err := ctl("readmodel", "compare", "--order", id)
		return err == nil && strings.Contains(out, "match true")
	})
	for view, want := range map[string]string{"health": "green", "indices": "orders-v1", "allocation": "DISK.PERCENT", "lag": "es_sink_lag_seconds"} {
		if out, err := ctl("readmodel", view); err != nil || !strings.Contains(out, want) {
			t.Errorf("readmodel %s: %v\n%s", view, err, out)
		}
	}
	if out, err := ctl("readmodel", "indices", "--output", "json"); err != nil || !json.Valid([]byte(out)) || !strings.Contains(out, `"docs_count": 3`) {
		t.Errorf("indices as JSON: %v\n%s", err, out)
	}
	if _, err := ctl("readmodel", "compare"); exitCode(err) != 2 {
		t.Errorf("compare without --order: %v", err)
	}
	if _, err := ctl("readmodel", "compare", "--order", "ORD-NOPE"); exitCode(err) != 1 || !strings.Contains(err.Error(), "404") {
		t.Errorf("compare of an unknown order: %v", err)
	}

	// Drift behind the sink's back: an order's document altered, a
	// transition's deleted.
	var gone string
	a.ReadIndex.Scan(ctx, "order_transitions", func(d smp.Document) error { gone = d.ID; return io.EOF })
	doc, err := a.ReadIndex.Get(ctx, "orders", id)
	if err != nil {
		t.Fatal(err)
	}
	altered := bytes.Replace(doc.Source, []byte("12 Nguyễn Huệ"), []byte("wrong street"), 1)
	if _, err := a.ReadIndex.Bulk(ctx, []smp.IndexOp{{Index: "order_transitions", ID: gone, Delete: true}, {Index: "orders", ID: id, Source: altered}}); err != nil {
		t.Fatal(err)
	}
	out, err := ctl("readmodel", "compare", "--order", id)
	if exitCode(err) != 1 || !strings.Contains(out, "wrong street") || !strings.Contains(out, "match false") {
		t.Errorf("compare of the altered order: %v\n%s", err, out)
	}
	out, err = ctl("readmodel", "check")
	if exitCode(err) != 1 || !strings.Contains(out, gone) || !strings.Contains(out, "elasticsearch-sink RUNNING") || !strings.Contains(out, "dead letters on elasticsearch-sink.dlq: 0") {
		t.Errorf("check: %v\n%s", err, out)
	}
	if _, err := ctl("readmodel", "check", "--repair"); exitCode(err) != 2 {
		t.Errorf("a repair without a reason: %v", err)
	}
	if _, err := ctlAs("fin", "readmodel", "check", "--repair", "--reason", "INC-009 drill"); exitCode(err) != 1 || !strings.Contains(err.Error(), "403") {
		t.Errorf("finance repairing: %v", err)
	}
	if _, err := a.ReadIndex.Get(ctx, "order_transitions", gone); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("refused calls changed the index: %v", err)
	}
	out, err = ctl("readmodel", "check", "--repair", "--reason", "INC-009 drill")
	if err != nil || !strings.Contains(out, "drifted 2, repaired 2, drift after the repair 0") {
		t.Errorf("check --repair: %v\n%s", err, out)
	}
	if out, err := ctl("readmodel", "compare", "--order", id); err != nil || !strings.Contains(out, "match true") {
		t.Errorf("compare after the repair: %v\n%s", err, out)
	}

	// Reindex under a corrected mapping: bad files are refused before
	// anything is sent.
	dir := t.TempDir()
	v1, err := os.ReadFile("../../readmodel/mappings/orders-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, body []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v2 := write("orders-v2.json", bytes.Replace(v1, []byte(`"address": {"type": "text"}`), []byte(`"address": {"type": "text"}, "note": {"type": "keyword"}`), 1))
	for name, args := range map[string][]string{
		"no file":          {"--reason", "scenario 3"},
		"no reason":        {"--mapping", v2},
		"missing file":     {"--mapping", filepath.Join(dir, "orders-v3.json"), "--reason", "scenario 3"},
		"bad name":         {"--mapping", write("orders.json", v1), "--reason", "scenario 3"},
		"unknown table":    {"--mapping", write("customers-v2.json", v1), "--reason", "scenario 3"},
		"not JSON":         {"--mapping", write("orders-v4.json", []byte("{")), "--reason", "scenario 3"},
		"unsupported type": {"--mapping", write("orders-v5.json", bytes.Replace(v1, []byte(`"keyword"`), []byte(`"geo_point"`), 1)), "--reason", "scenario 3"},
	} {
		if _, err := ctl(append([]string{"readmodel", "reindex"}, args...)...); exitCode(err) != 2 {
			t.Errorf("reindex, %s: %v", name, err)
		}
	}
	if _, err := ctlAs("fin", "readmodel", "reindex", "--mapping", v2, "--reason", "scenario 3"); exitCode(err) != 1 || !strings.Contains(err.Error(), "403") {
		t.Errorf("finance reindexing: %v", err)
	}
	if got := alias(); got != "orders-v1" {
		t.Fatalf("refused reindexes moved the alias to %s", got)
	}
	out, err = ctl("readmodel", "reindex", "--mapping", v2, "--reason", "scenario 3")
	if err != nil || !strings.Contains(out, "3 documents copied from orders-v1 to orders-v2") {
		t.Fatalf("reindex: %v\n%s", err, out)
	}
	if got := alias(); got != "orders-v2" {
		t.Errorf("after the reindex the alias is on %s", got)
	}
	if _, err := ctl("readmodel", "reindex", "--mapping", v2, "--reason", "again"); exitCode(err) != 1 || !strings.Contains(err.Error(), "400") {
		t.Errorf("the same version again: %v", err)
	}

	// A full re-sync, followed until the read model matches again.
	if _, err := ctl("readmodel", "resync"); exitCode(err) != 2 {
		t.Errorf("resync without a reason: %v", err)
	}
	if _, err := ctlAs("fin", "readmodel", "resync", "--reason", "scenario 4"); exitCode(err) != 1 || !strings.Contains(err.Error(), "403") {
		t.Errorf("finance re-syncing: %v", err)
	}
	if got := alias(); got != "orders-v2" {
		t.Fatalf("a refused re-sync moved the alias to %s", got)
	}
	out, err = ctl("readmodel", "resync", "--reason", "scenario 4 drill", "--wait", "60s")
	if err != nil || !strings.Contains(out, "orders-v2;") || !strings.Contains(out, "re-sync done") {
		t.Fatalf("resync: %v\n%s", err, out)
	}
	if es, _ := a.Store.FindAudit(ctx, smp.AuditFilter{Action: "readmodel.resync"}); len(es) == 0 || es[0].Reason != "scenario 4 drill" {
		t.Errorf("the re-sync's audit: %+v", es)
	}

	// Scenario 2: the sink restarted through the Connect API.
	t.Setenv("SMP_ADMIN_TOKEN", "adm")
	var ob, eb bytes.Buffer
	if err := run(ctx, []string{"ctl", "readmodel", "restart", "--connect-server", a.ConnectAPI.URL()}, &ob, &eb); err != nil {
		t.Fatalf("restart: %v %s", err, eb.String())
	}
	wait.Until(t, 10*time.Second, "elasticsearch-sink RUNNING after the restart", func() bool {
		ts, err := a.Connect.TaskStatus("elasticsearch-sink", 0)
		return err == nil && ts.State == "RUNNING"
	})
}
