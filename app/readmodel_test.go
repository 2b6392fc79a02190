package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/auth"
	"smp/internal/envtest"
	"smp/internal/wait"
	"smp/sim"
	"smp/sqlstore/sqlstoretest"
)

// TestReadModelAPI: orders created through /v1 reach the read model
// (source connector → change topics → elasticsearch-sink → bleve), and the
// admin API searches them (by phone only for people.view), shows the
// runbook's views, compares an order with the database, and runs the
// drift check with its repair, audited.
func TestReadModelAPI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.AdminToken, cfg.ConnectAddr = "adm", "127.0.0.1:0"
	db, err := OpenStore(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := sim.Seed(ctx, db, sim.SeedConfig{Partners: 1, Technicians: 2, Customers: 1, Seed: 7}, auth.HashToken)
	if err == nil {
		err = db.PutToken(ctx, auth.HashToken("fin"), auth.KindAdmin, "fiona", smp.RoleFinance)
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	a := &App{Cfg: cfg}
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	call := func(method, path, token, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, a.HTTP.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
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
	wait.Until(t, 15*time.Second, "3 orders searchable", func() bool {
		st, body := call("GET", "/admin/orders/search?q="+url.QueryEscape("Nguyễn Huệ"), "adm", "")
		return st == 200 && strings.Contains(body, `"total": 3`)
	})
	phone := url.QueryEscape(ds.Customers[0].Phone)
	if st, body := call("GET", "/admin/orders/search?q="+phone, "adm", ""); st != 200 || !strings.Contains(body, `"total": 3`) {
		t.Errorf("search by the customer's phone: %d %s", st, body)
	}
	if st, body := call("GET", "/admin/orders/search?q="+phone, "fin", ""); st != 403 || !strings.Contains(body, `"code"`) {
		t.Errorf("finance searching by phone: %d %s, want 403 (people.view)", st, body)
	}
	if st, body := call("GET", "/admin/orders/search?stage=nope", "adm", ""); st != 400 || !strings.Contains(body, `"error"`) {
		t.Errorf("a bad stage: %d %s", st, body)
	}
	for _, view := range []string{"health", "indices", "allocation", "lag"} {
		if st, body := call("GET", "/admin/readmodel/"+view, "fin", ""); st != 200 {
			t.Errorf("%s: %d %s", view, st, body)
		}
	}
	wait.Until(t, 15*time.Second, "compare "+id+" matching (the sink caught up)", func() bool {
		st, body := call("GET", "/admin/readmodel/compare?order="+id, "adm", "")
		return st == 200 && strings.Contains(body, `"match": true`)
	})
	// Drift behind the sink's back (a transition: orders still move while
	// dispatch retries, and a change would index them again), then the
	// check repairs it.
	var gone string
	a.ReadIndex.Scan(ctx, "order_transitions", func(d smp.Document) error { gone = d.ID; return io.EOF })
	if _, err := a.ReadIndex.Bulk(ctx, []smp.IndexOp{{Index: "order_transitions", ID: gone, Delete: true}}); err != nil {
		t.Fatal(err)
	}
	if st, body := call("POST", "/admin/readmodel/check", "fin", `{"repair":true,"reason":"x"}`); st != 403 {
		t.Errorf("finance repairing: %d %s, want 403", st, body)
	}
	if st, body := call("POST", "/admin/readmodel/check", "adm", `{"repair":true}`); st != 400 {
		t.Errorf("a repair without a reason: %d %s, want 400", st, body)
	}
	st, body := call("POST", "/admin/readmodel/check", "adm", `{"repair":true,"reason":"INC-009 drift"}`)
	var rep struct {
		Repaired int `json:"repaired"`
		After    struct {
			Drifted bool `json:"drifted"`
		} `json:"after"`
		Tables []struct {
			Missing []string `json:"missing"`
		} `json:"tables"`
	}
	json.Unmarshal([]byte(body), &rep)
	if st != 200 || rep.Repaired < 1 || rep.After.Drifted || len(rep.Tables) != 2 || len(rep.Tables[1].Missing) != 1 || rep.Tables[1].Missing[0] != gone {
		t.Errorf("check with repair: %d %s", st, body)
	}
	if st, body := call("GET", "/admin/audit?action=readmodel.repair", "adm", ""); st != 200 || !strings.Contains(body, "INC-009 drift") || !strings.Contains(body, `\"phase\":\"done\"`) {
		t.Errorf("the repair's audit: %d %s", st, body)
	}
}

// TestReadModelDriftOnMySQL: on a MySQL store (a MariaDB with its binlog,
// read by smp-mysql-connector) the drift check reads the tables from the
// database in one consistent read at a binlog position: documents deleted,
// altered and added behind the sink's back are found (missing, mismatched,
// extra), repaired from the database, and the check after finds no drift;
// compare answers from the database too.
func TestReadModelDriftOnMySQL(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("mariadbd"); err != nil {
		envtest.Skip(t, "MariaDB binlog (change data capture)", "mariadbd is not on PATH: install mariadb-server")
	}
	ctx := context.Background()
	m := sqlstoretest.StartMariaDB(t, "rm", "--server-id=1", "--log-bin="+filepath.Join(t.TempDir(), "binlog"), "--binlog-format=ROW")
	sqlstoretest.ExecAll(t, m.DSN(""), "CREATE DATABASE smp_order")
	cfg := testConfig(t)
	cfg.AdminToken, cfg.ConnectAddr, cfg.MySQLDSN = "adm", "127.0.0.1:0", m.DSN("smp_order")
	a := &App{Cfg: cfg}
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ds, err := sim.Seed(ctx, a.Store, sim.SeedConfig{Partners: 1, Technicians: 2, Customers: 1, Seed: 7}, auth.HashToken)
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, a.HTTP.URL()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer adm")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
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
	wait.Until(t, 30*time.Second, "compare "+id+" matching (binlog → sink caught up)", func() bool {
		st, body := call("GET", "/admin/readmodel/compare?order="+id, "")
		return st == 200 && strings.Contains(body, `"match": true`)
	})
	type report struct {
		Repaired int `json:"repaired"`
		Tables   []struct {
			Table          string   `json:"table"`
			Rows           int64    `json:"rows"`
			Documents      int64    `json:"documents"`
			Missing        []string `json:"missing"`
			Extra          []string `json:"extra"`
			Mismatched     []string `json:"mismatched"`
			WatermarkDB    int64    `json:"watermark_db"`
			WatermarkIndex int64    `json:"watermark_index"`
		} `json:"tables"`
		Connectors map[string]string `json:"connectors"`
		After      *report           `json:"after"`
	}
	check := func(body string) report {
		t.Helper()
		st, out := call("POST", "/admin/readmodel/check", body)
		var r report
		if err := json.Unmarshal([]byte(out), &r); st != 200 || err != nil {
			t.Fatalf("check %s: %d %s", body, st, out)
		}
		return r
	}
	wait.Until(t, 30*time.Second, "a clean check (every row indexed)", func() bool {
		r := check(`{}`)
		return len(r.Tables) == 2 && r.Tables[0].Rows == 3 && len(r.Tables[0].Missing)+len(r.Tables[1].Missing) == 0
	})
	// Drift behind the sink's back: a transition's document deleted, an
	// order's altered, a document no row has.
	var gone string
	a.ReadIndex.Scan(ctx, "order_transitions", func(d smp.Document) error { gone = d.ID; return io.EOF })
	doc, err := a.ReadIndex.Get(ctx, "orders", id)
	if err != nil {
		t.Fatal(err)
	}
	altered := strings.Replace(string(doc.Source), "12 Nguyễn Huệ", "wrong street", 1)
	if _, err := a.ReadIndex.Bulk(ctx, []smp.IndexOp{{Index: "order_transitions", ID: gone, Delete: true},
		{Index: "orders", ID: id, Source: json.RawMessage(altered)},
		{Index: "orders", ID: "ORD-GHOST", Source: json.RawMessage(`{"id":"ORD-GHOST","stage":"01_created"}`)}}); err != nil {
		t.Fatal(err)
	}
	if st, body := call("GET", "/admin/readmodel/compare?order="+id, ""); st != 200 || !strings.Contains(body, `"match": false`) || !strings.Contains(body, "wrong street") {
		t.Errorf("compare of the altered order: %d %s", st, body)
	}
	r := check(`{"repair":true,"reason":"INC-009 drill on MySQL"}`)
	o, tr := r.Tables[0], r.Tables[1]
	if o.Table != "orders" || o.Rows != 3 || o.Documents != 4 || len(o.Extra) != 1 || o.Extra[0] != "ORD-GHOST" || len(o.Mismatched) != 1 || o.Mismatched[0] != id ||
		len(tr.Missing) != 1 || tr.Missing[0] != gone || o.WatermarkDB == 0 || r.Connectors["smp-mysql-connector"] != "RUNNING" {
		t.Errorf("what the check found: %+v", r)
	}
	if r.Repaired != 3 || r.After == nil || len(r.After.Tables) != 2 {
		t.Fatalf("the repair: %+v", r)
	}
	for _, x := range r.After.Tables {
		if len(x.Missing)+len(x.Extra)+len(x.Mismatched) != 0 || x.Rows != x.Documents || x.WatermarkDB != x.WatermarkIndex {
			t.Errorf("after the repair %s: %+v", x.Table, x)
		}
	}
	if st, body := call("GET", "/admin/readmodel/compare?order="+id, ""); st != 200 || !strings.Contains(body, `"match": true`) {
		t.Errorf("compare after the repair: %d %s", st, body)
	}
}
