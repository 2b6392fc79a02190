package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/auth"
	"smp/httpapi"
	"smp/masterdata"
	"smp/ops"
	"smp/sqlstore"
)

// TestMasterDataEndpoints: master data edited through the admin API in the
// owner region: roles, the JSON error on bad input (nothing written),
// versions raised per row, each change with its audit entry and its event
// on masterdata.<table>; another region reads but refuses edits.
func TestMasterDataEndpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	open := func(region string) (*sqlstore.DB, func(token, method, path, body string, want int) map[string]any) {
		db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		for tok, p := range map[string]smp.Principal{"ops": {Name: "olga", Role: smp.RoleOps}, "fin": {Name: "fiona", Role: smp.RoleFinance},
			"sec": {Name: "sam", Role: smp.RoleSecurity}} {
			if err := db.PutToken(ctx, auth.HashToken(tok), auth.KindAdmin, p.Name, p.Role); err != nil {
				t.Fatal(err)
			}
		}
		md, err := masterdata.New(masterdata.Config{Region: region, Now: func() time.Time { return now }}, db)
		if err != nil {
			t.Fatal(err)
		}
		act, err := ops.New(ops.Config{Store: db, MasterData: md})
		if err != nil {
			t.Fatal(err)
		}
		srv, err := httpapi.New(httpapi.Config{AdminToken: "adm"}, httpapi.Deps{Store: db, Actions: act, MasterData: md})
		if err != nil {
			t.Fatal(err)
		}
		return db, func(token, method, path, body string, want int) map[string]any {
			t.Helper()
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			srv.Handler().ServeHTTP(w, req)
			var v map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s %s: not JSON: %s", method, path, w.Body.String())
			}
			if w.Code != want {
				t.Fatalf("%s %s %s: %d %v, want %d", method, path, body, w.Code, v, want)
			}
			return v
		}
	}
	db, call := open("global")
	const usd = `{"fields":{"from_currency":"USD","to_currency":"VND","rate_date":"2026-12-01","rate":"25410.5"},"reason":"daily rates"}`
	r := call("fin", "PUT", "/admin/masterdata/currency_rates", usd, 200)
	if r["key"] != "USD/VND/2026-12-01" || r["version"] != float64(1) || r["region"] != "global" {
		t.Fatalf("first put: %v", r)
	}
	// The same row again changes nothing; a new rate is version 2.
	call("fin", "PUT", "/admin/masterdata/currency_rates", usd, 200)
	r = call("ops", "PUT", "/admin/masterdata/currency_rates", strings.Replace(usd, "25410.5", "25411", 1), 200)
	if r["version"] != float64(2) {
		t.Fatalf("second put: %v", r)
	}
	call("ops", "PUT", "/admin/masterdata/i18n_translations", `{"fields":{"locale":"vi","msg_key":"order.created","text":"Đã tạo đơn"},"reason":"copy"}`, 200)

	// Bad input: 4xx with the JSON error, nothing written.
	for _, c := range []struct {
		token, path, body string
		code              int
		errCode           string
	}{
		{"sec", "/admin/masterdata/currency_rates", usd, 403, "forbidden"},
		{"fin", "/admin/masterdata/customers", `{"fields":{"id":"C1"},"reason":"nope"}`, 400, "invalid"},
		{"fin", "/admin/masterdata/currency_rates", strings.Replace(usd, "25410.5", "2.5e4", 1), 400, "invalid"},
		{"fin", "/admin/masterdata/currency_rates", strings.Replace(usd, `"rate":"25410.5"`, `"rate":"1","phone":"+84901234567"`, 1), 400, "invalid"},
		{"fin", "/admin/masterdata/currency_rates", strings.Replace(usd, "daily rates", "", 1), 400, "invalid"},
		{"fin", "/admin/masterdata/currency_rates", `{"fields":`, 400, "invalid"},
	} {
		v := call(c.token, "PUT", c.path, c.body, c.code)
		if e, _ := v["error"].(map[string]any); e["code"] != c.errCode || e["message"] == "" {
			t.Errorf("%s %s: %v, want error %s", c.path, c.body, v, c.errCode)
		}
	}
	got := call("sec", "GET", "/admin/masterdata/currency_rates/USD/VND/2026-12-01", "", 200)
	if got["version"] != float64(2) || got["fields"].(map[string]any)["rate"] != "25411" {
		t.Fatalf("GET record: %v", got)
	}
	call("sec", "GET", "/admin/masterdata/currency_rates/EUR/VND/2026-12-01", "", 404)
	call("sec", "GET", "/admin/masterdata/currency_rates?limit=0", "", 400)
	if l := call("sec", "GET", "/admin/masterdata/currency_rates", "", 200); len(l["records"].([]any)) != 1 {
		t.Fatalf("list: %v", l)
	}
	if m := call("sec", "GET", "/admin/masterdata", "", 200); m["region"] != "global" || m["master_region"] != "global" || len(m["tables"].([]any)) != 5 {
		t.Fatalf("tables: %v", m)
	}

	// Three changes, three audit entries and three events, in order.
	audit, err := db.FindAudit(ctx, smp.AuditFilter{Action: "masterdata.put"})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 3 {
		t.Fatalf("%d audit entries, want 3: %+v", len(audit), audit)
	}
	for _, a := range audit {
		if a.Target == "currency_rates:USD/VND/2026-12-01" && a.Before != "" && (!strings.Contains(a.Before, `"version":1`) || !strings.Contains(a.After, `"version":2`) || a.Actor != "olga") {
			t.Errorf("audit of the second change: %+v", a)
		}
	}
	events, err := db.FetchOutbox(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var topics []string
	for _, e := range events {
		topics = append(topics, e.Event.Topic())
		var d smp.MasterDataEvent
		if err := json.Unmarshal(e.Event.Data, &d); err != nil || d.Version < 1 || d.SchemaVersion != smp.MasterDataSchemaVersion || e.Event.AggregateID != d.Key {
			t.Errorf("event %+v: %+v %v", e.Event, d, err)
		}
	}
	if strings.Join(topics, " ") != "masterdata.currency_rates masterdata.currency_rates masterdata.i18n_translations" {
		t.Errorf("topics = %v", topics)
	}

	// Another region reads master data but does not edit it.
	_, china := open("china")
	v := china("fin", "PUT", "/admin/masterdata/currency_rates", usd, 403)
	if e, _ := v["error"].(map[string]any); !strings.Contains(e["message"].(string), "region global") {
		t.Errorf("edit in china: %v", v)
	}
	china("fin", "GET", "/admin/masterdata/currency_rates/USD/VND/2026-12-01", "", 404)
}
