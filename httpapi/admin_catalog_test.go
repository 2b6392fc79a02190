package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"smp"
	"smp/auth"
	"smp/catalog"
	"smp/httpapi"
	"smp/sqlstore"
)

// TestCatalogEndpoints: the endpoints, spelled as it spells them,
// with their roles, 400s in the error shape, paging, patches,
// deactivation and the import.
func TestCatalogEndpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for tok, p := range map[string]smp.Principal{"ops": {Name: "olga", Role: smp.RoleOps}, "fin": {Name: "fiona", Role: smp.RoleFinance}} {
		if err := db.PutToken(ctx, auth.HashToken(tok), auth.KindAdmin, p.Name, p.Role); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := catalog.New(catalog.Config{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{AdminToken: "adm"}, httpapi.Deps{Store: db, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	call := func(token, method, path, body string) (int, map[string]any) {
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
		return w.Code, v
	}
	expect := func(wantCode int, token, method, path, body string) map[string]any {
		t.Helper()
		code, v := call(token, method, path, body)
		if code != wantCode {
			t.Fatalf("%s %s %s: %d %v, want %d", method, path, body, code, v, wantCode)
		}
		return v
	}

	expect(201, "ops", "POST", "/admin/cities", `{"code":"HCMC","name":"Hồ Chí Minh","lat":10.78,"lng":106.70}`)
	expect(201, "ops", "POST", "/admin/services", `{"code":"aircon_repair","name":"Sửa máy lạnh","skill":"aircon_repair","price_vnd":350000,"commission_pct":15}`)
	p := expect(201, "ops", "POST", "/admin/partners", `{"name":"Điện lạnh Sài Gòn","country":"VN"}`)
	if p["id"] != "P001" {
		t.Fatalf("partner: %v", p)
	}
	tech := expect(201, "adm", "POST", "/admin/technicians", `{"partner_id":"P001","name":"Lan","phone":"+84901234567","city":"HCMC","skills":["aircon_repair"]}`)
	if tech["id"] != "T0001" || tech["status"] != "active" {
		t.Fatalf("technician: %v", tech)
	}
	expect(201, "ops", "POST", "/admin/customers", `{"name":"Khách","phone":"+84987654321"}`)

	v := expect(400, "ops", "POST", "/admin/technicians", `{"partner_id":"P001","name":"X","phone":"+1 555","city":"HCMC","skills":["aircon_repair"]}`)
	if e, _ := v["error"].(map[string]any); e["code"] != "invalid" || !strings.Contains(e["message"].(string), "E.164") {
		t.Fatalf("bad phone: %v", v)
	}
	expect(400, "ops", "POST", "/admin/customers", `[1,2]`)
	expect(409, "ops", "POST", "/admin/customers", `{"name":"Again","phone":"0987654321"}`)
	expect(403, "fin", "POST", "/admin/partners", `{"name":"x"}`)
	expect(200, "fin", "GET", "/admin/partners/P001", ``)
	expect(403, "fin", "GET", "/admin/technicians", ``)
	expect(401, "nobody", "GET", "/admin/cities", ``)
	expect(404, "ops", "GET", "/admin/technicians/T0404", ``)

	list := expect(200, "ops", "GET", "/admin/technicians?city=HCMC&skill=aircon_repair&limit=1", ``)
	if items := list["technicians"].([]any); len(items) != 1 || list["next"] != "T0001" {
		t.Fatalf("list: %v", list)
	}
	expect(400, "ops", "GET", "/admin/technicians?limit=0", ``)

	expect(400, "ops", "PATCH", "/admin/technicians/T0001", `{"name":"Lan Anh"}`) // no reason
	up := expect(200, "ops", "PATCH", "/admin/technicians/T0001", `{"name":"Lan Anh","reason":"her request"}`)
	if up["name"] != "Lan Anh" || up["phone"] != "+84901234567" {
		t.Fatalf("patched: %v", up)
	}
	off := expect(200, "ops", "POST", "/admin/technicians/T0001/deactivate", `{"reason":"left the partner"}`)
	if off["status"] != "suspended" {
		t.Fatalf("deactivated: %v", off)
	}
	audit, _ := db.FindAudit(ctx, smp.AuditFilter{Target: "technician:T0001"})
	if len(audit) != 3 || audit[0].Actor != "olga" || audit[0].Reason != "left the partner" || audit[2].Actor != "admin" {
		t.Fatalf("audit: %+v", audit)
	}

	rep := expect(200, "ops", "POST", "/admin/import", `{"data":{"customers":[{"name":"Khách","phone":"+84987654321"},{"name":"Mới","phone":"0911111111"},{"name":"Sai","phone":"1"}]},"dry_run":true}`)
	if rep["created"] != 1.0 || rep["unchanged"] != 1.0 || rep["refused"] != 1.0 || rep["dry_run"] != true {
		t.Fatalf("import dry run: %v", rep)
	}
	if cs, _ := db.FindCustomers(ctx, smp.CatalogFilter{}); len(cs) != 1 {
		t.Fatalf("the dry run kept customers: %v", cs)
	}
	expect(403, "fin", "POST", "/admin/import", `{"data":{}}`)
}
