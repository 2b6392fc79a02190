package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/auth"
	"smp/internal/wait"
	"smp/sim"
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
