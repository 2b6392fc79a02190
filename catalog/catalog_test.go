package catalog_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/catalog"
	"smp/sqlstore"
)

var (
	ctx   = context.Background()
	now   = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	olga  = smp.Principal{Name: "olga", Role: smp.RoleOps}
	fiona = smp.Principal{Name: "fiona", Role: smp.RoleFinance}
	sec   = smp.Principal{Name: "sam", Role: smp.RoleSecurity}
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantCode(t testing.TB, what string, err error, code string) {
	t.Helper()
	if got := smp.ErrorCode(err); got != code {
		t.Fatalf("%s: %v (code %q), want %q", what, err, got, code)
	}
}

func open(t *testing.T) (*catalog.Service, *sqlstore.DB) {
	t.Helper()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db"), Now: func() time.Time { return now }})
	must(t, err)
	t.Cleanup(func() { db.Close() })
	s, err := catalog.New(catalog.Config{Store: db, Now: func() time.Time { return now }})
	must(t, err)
	return s, db
}

func create(t *testing.T, s *catalog.Service, kind, body string) any {
	t.Helper()
	v, err := s.Create(ctx, olga, kind, json.RawMessage(body), "")
	if err != nil {
		t.Fatalf("create %s %s: %v", kind, body, err)
	}
	return v
}

// basics creates HCMC, aircon_repair, P001 and a technician.
func basics(t *testing.T, s *catalog.Service) {
	t.Helper()
	create(t, s, "cities", `{"code":"HCMC","name":"Hồ Chí Minh","lat":10.78,"lng":106.70}`)
	create(t, s, "services", `{"code":"aircon_repair","name":"Sửa máy lạnh","price_vnd":350000,"commission_pct":12.5}`)
	create(t, s, "partners", `{"name":"Điện lạnh Sài Gòn","country":"vn","contact":"+84901111111"}`)
}

func TestCreateEachKind(t *testing.T) {
	t.Parallel()
	s, db := open(t)
	basics(t, s)
	c, _ := db.FindCityByCode(ctx, "HCMC")
	if !c.Contains(10.78, 106.70) || c.Contains(10.78, 106.9) || c.WaveSize != 3 || c.Status != smp.StatusActive {
		t.Fatalf("city bounds or defaults: %+v", c)
	}
	sv, _ := db.FindServiceByCode(ctx, "aircon_repair")
	if sv.Skill != "aircon_repair" || sv.Commission != 1250 || sv.PriceVND != 350000 {
		t.Fatalf("service: %+v", sv)
	}
	p, _ := db.FindPartnerByID(ctx, "P001")
	if p == nil || p.Country != "VN" {
		t.Fatalf("partner: %+v", p)
	}
	tv := create(t, s, "technicians", `{"partner_id":"P001","name":"Lan","phone":"090 123 4567","city":"HCMC","skills":["aircon_repair"],"lat":10.79,"lng":106.71}`)
	tech := tv.(*smp.Technician)
	if tech.ID != "T0001" || tech.Phone != "+84901234567" || tech.Status != smp.StatusActive {
		t.Fatalf("technician: %+v", tech)
	}
	cv := create(t, s, "customers", `{"name":"Khách","phone":"+84987654321"}`)
	if cv.(*smp.Customer).ID != "C0001" {
		t.Fatalf("customer: %+v", cv)
	}
	audit, err := db.FindAudit(ctx, smp.AuditFilter{Limit: 10})
	must(t, err)
	if len(audit) != 5 {
		t.Fatalf("%d audit entries, want 5 (one per change): %+v", len(audit), audit)
	}
	a := audit[1] // newest first: customer, technician, ...
	if a.Action != "technician.create" || a.Target != "technician:T0001" || a.Actor != "olga" || a.Role != smp.RoleOps || a.Reason != "onboarding" || !strings.Contains(a.After, "+84901234567") {
		t.Fatalf("technician's audit entry: %+v", a)
	}
	out, err := db.FetchOutbox(ctx, 10)
	must(t, err)
	if len(out) != 1 || out[0].Event.Type != smp.EventPartnerCreated || out[0].Event.AggregateID != "P001" {
		t.Fatalf("outbox: %+v", out)
	}
}

// TestValidation: each bad input is EINVALID with a message naming the
// problem, and nothing is written.
func TestValidation(t *testing.T) {
	t.Parallel()
	s, db := open(t)
	basics(t, s)
	tech := func(over string) string {
		m := map[string]any{"partner_id": "P001", "name": "Lan", "phone": "+84901234567", "city": "HCMC", "skills": []string{"aircon_repair"}}
		must(t, json.Unmarshal([]byte(over), &m))
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, c := range []struct{ kind, body, want string }{
		{"cities", `{"code":"hcmc","name":"x","lat":10,"lng":106}`, "capital letters"},
		{"cities", `{"code":"HUE","name":"Huế"}`, "centre"},
		{"cities", `{"code":"HUE","name":"Huế","lat":16.46,"lng":107.59,"radius_km":-1}`, "radius_km"},
		{"cities", `{"code":"HUE","name":"Huế","lat":16.46,"lng":107.59,"colour":"red"}`, `unknown field "colour"`},
		{"services", `{"code":"plumbing","name":"Ống nước","price_vnd":0}`, "price_vnd"},
		{"services", `{"code":"plumbing","name":"Ống nước","price_vnd":200000,"commission_pct":12.345}`, "two decimals"},
		{"services", `{"code":"plumbing","name":"Ống nước","price_vnd":200000,"commission_pct":120}`, "between 0 and 100"},
		{"services", `{"code":"plumbing","name":"Ống nước","price_vnd":2.5}`, "price_vnd"},
		{"partners", `{"name":""}`, "name is required"},
		{"partners", `{"id":"X1","name":"x"}`, "P001"},
		{"partners", `{"name":"x","country":"Vietnam"}`, "ISO 3166"},
		{"technicians", tech(`{"phone":"+1 415 555 0100"}`), "E.164"},
		{"technicians", tech(`{"phone":""}`), "E.164"},
		{"technicians", tech(`{"city":"HN"}`), `unknown city "HN"`},
		{"technicians", tech(`{"partner_id":"P999"}`), `unknown partner "P999"`},
		{"technicians", tech(`{"skills":["welding"]}`), `unknown skill "welding"`},
		{"technicians", tech(`{"skills":[]}`), "skills are required"},
		{"technicians", tech(`{"lat":21.0,"lng":105.8}`), "outside HCMC"},
		{"technicians", tech(`{"status":"inactive"}`), "status"},
		{"technicians", tech(`{"active_order_id":"o1"}`), "cannot be set"},
		{"customers", `{"name":"x","phone":"12345"}`, "E.164"},
		{"customers", `{"name":"x"}`, "E.164"},
		{"nothings", `{}`, "unknown kind"},
	} {
		_, err := s.Create(ctx, olga, c.kind, json.RawMessage(c.body), "")
		if smp.ErrorCode(err) != smp.EINVALID || !strings.Contains(smp.ErrorMessage(err), c.want) {
			t.Errorf("create %s %s: %v; want EINVALID mentioning %q", c.kind, c.body, err, c.want)
		}
	}
	if ts, _ := db.FindTechnicians(ctx, smp.CatalogFilter{}); len(ts) != 0 {
		t.Fatalf("refused technicians were written: %+v", ts)
	}
	if audit, _ := db.FindAudit(ctx, smp.AuditFilter{Limit: 100}); len(audit) != 3 {
		t.Fatalf("%d audit entries, want the 3 of the basics", len(audit))
	}
	// A phone belongs to one technician.
	create(t, s, "technicians", tech(`{}`))
	_, err := s.Create(ctx, olga, "technicians", json.RawMessage(tech(`{"name":"Other","phone":"0901234567"}`)), "")
	wantCode(t, "second technician with the phone", err, smp.ECONFLICT)
}

func TestPermissions(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	basics(t, s)
	_, err := s.Create(ctx, fiona, "partners", json.RawMessage(`{"name":"x"}`), "")
	wantCode(t, "finance creates a partner", err, smp.EFORBIDDEN)
	if _, err := s.Get(ctx, fiona, "partners", "P001"); err != nil {
		t.Fatalf("finance reads a partner: %v", err)
	}
	if _, _, err := s.List(ctx, sec, "partners", smp.CatalogFilter{}); err != nil {
		t.Fatalf("security lists partners: %v", err)
	}
	_, _, err = s.List(ctx, fiona, "technicians", smp.CatalogFilter{})
	wantCode(t, "finance lists technicians", err, smp.EFORBIDDEN)
	_, _, err = s.Deactivate(ctx, sec, "cities", "HCMC", "security may not")
	wantCode(t, "security deactivates a city", err, smp.EFORBIDDEN)
	root := smp.Principal{Name: "root", Role: smp.RoleAdmin}
	create2, err := s.Create(ctx, root, "customers", json.RawMessage(`{"name":"x","phone":"0987000001"}`), "")
	if err != nil || create2 == nil {
		t.Fatalf("admin creates: %v", err)
	}
}

func TestUpdateAndDeactivate(t *testing.T) {
	t.Parallel()
	s, db := open(t)
	basics(t, s)
	create(t, s, "technicians", `{"partner_id":"P001","name":"Lan","phone":"+84901234567","city":"HCMC","skills":["aircon_repair"]}`)

	_, _, err := s.Update(ctx, olga, "technicians", "T0001", json.RawMessage(`{"name":"Lan Anh"}`), "")
	wantCode(t, "update without a reason", err, smp.EINVALID)
	v, changed, err := s.Update(ctx, olga, "technicians", "T0001", json.RawMessage(`{"name":"Lan Anh","phone":"0901234568"}`), "renamed at her request")
	must(t, err)
	if tv := v.(*smp.Technician); !changed || tv.Name != "Lan Anh" || tv.Phone != "+84901234568" || tv.City != "HCMC" {
		t.Fatalf("after update (changed %v): %+v", changed, tv)
	}
	_, changed, err = s.Update(ctx, olga, "technicians", "T0001", json.RawMessage(`{"name":"Lan Anh"}`), "same again")
	if err != nil || changed {
		t.Fatalf("an update changing nothing: changed %v, %v", changed, err)
	}
	_, _, err = s.Update(ctx, olga, "technicians", "T0001", json.RawMessage(`{"id":"T0002"}`), "rename the id")
	wantCode(t, "id change", err, smp.EINVALID)
	_, _, err = s.Update(ctx, olga, "technicians", "T0404", json.RawMessage(`{"name":"x"}`), "unknown")
	wantCode(t, "unknown technician", err, smp.ENOTFOUND)
	_, _, err = s.Update(ctx, olga, "services", "aircon_repair", json.RawMessage(`{"commission_pct":"15"}`), "new contract")
	must(t, err)
	if sv, _ := db.FindServiceByCode(ctx, "aircon_repair"); sv.Commission != 1500 || sv.PriceVND != 350000 {
		t.Fatalf("service after patch: %+v", sv)
	}

	v, changed, err = s.Deactivate(ctx, olga, "technicians", "T0001", "fraud investigation")
	must(t, err)
	if !changed || v.(*smp.Technician).Status != smp.StatusSuspended {
		t.Fatalf("deactivated technician: %+v", v)
	}
	if _, changed, _ = s.Deactivate(ctx, olga, "technicians", "T0001", "again"); changed {
		t.Fatal("deactivating twice changed something")
	}
	_, _, err = s.Deactivate(ctx, olga, "partners", "P001", "")
	wantCode(t, "deactivate without a reason", err, smp.EINVALID)
	_, _, err = s.Deactivate(ctx, olga, "partners", "P001", "contract ended")
	must(t, err)
	_, err = s.Create(ctx, olga, "technicians", json.RawMessage(`{"partner_id":"P001","name":"New","phone":"+84901234569","city":"HCMC","skills":["aircon_repair"]}`), "")
	if smp.ErrorCode(err) != smp.EINVALID || !strings.Contains(err.Error(), "inactive") {
		t.Fatalf("technician for an inactive partner: %v", err)
	}
	audit, _ := db.FindAudit(ctx, smp.AuditFilter{Target: "technician:T0001", Limit: 10})
	if len(audit) != 3 || audit[0].Action != "technician.deactivate" || audit[0].Reason != "fraud investigation" || !strings.Contains(audit[0].Before, `"status":"active"`) {
		t.Fatalf("technician's audit: %+v", audit)
	}
}

func TestListPaging(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	basics(t, s)
	for i := range 5 {
		create(t, s, "customers", `{"name":"c","phone":"+8498765432`+string(rune('0'+i))+`"}`)
	}
	var got []string
	after := ""
	for pages := 0; pages < 10; pages++ {
		items, next, err := s.List(ctx, olga, "customers", smp.CatalogFilter{After: after, Limit: 2})
		must(t, err)
		for _, it := range items {
			got = append(got, it.(*smp.Customer).ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if strings.Join(got, ",") != "C0001,C0002,C0003,C0004,C0005" {
		t.Fatalf("paged customers %v", got)
	}
	_, _, err := s.List(ctx, olga, "cities", smp.CatalogFilter{Status: "gone"})
	wantCode(t, "unknown status", err, smp.EINVALID)
	items, _, err := s.List(ctx, olga, "cities", smp.CatalogFilter{Status: smp.StatusActive})
	if err != nil || len(items) != 1 {
		t.Fatalf("active cities %v %v", items, err)
	}
}

// TestSuspendedHook: Config.Suspended is told of each technician a
// committed change suspends (deactivate, an update of the status, an
// import row), after the commit, and of nothing else: not a dry run, not
// an unchanged record, not another kind.
func TestSuspendedHook(t *testing.T) {
	t.Parallel()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db"), Now: func() time.Time { return now }})
	must(t, err)
	t.Cleanup(func() { db.Close() })
	var told []string
	s, err := catalog.New(catalog.Config{Store: db, Now: func() time.Time { return now }, Suspended: func(ctx context.Context, id string) {
		tech, err := db.FindTechnicianByID(ctx, id)
		if err != nil || tech.Status != smp.StatusSuspended {
			t.Errorf("told of %s before the suspension committed: %+v %v", id, tech, err)
		}
		told = append(told, id)
	}})
	must(t, err)
	basics(t, s)
	for _, phone := range []string{"+84901234561", "+84901234562", "+84901234563"} {
		create(t, s, "technicians", `{"partner_id":"P001","name":"Thợ","phone":"`+phone+`","city":"HCMC","skills":["aircon_repair"]}`)
	}
	_, _, err = s.Deactivate(ctx, olga, "technicians", "T0001", "fraud investigation")
	must(t, err)
	_, _, err = s.Deactivate(ctx, olga, "technicians", "T0001", "again")
	must(t, err)
	_, _, err = s.Update(ctx, olga, "technicians", "T0002", json.RawMessage(`{"status":"suspended"}`), "partner asked")
	must(t, err)
	_, _, err = s.Update(ctx, olga, "technicians", "T0003", json.RawMessage(`{"name":"Thợ ba"}`), "renamed")
	must(t, err)
	_, _, err = s.Deactivate(ctx, olga, "customers", "C0404", "unknown")
	wantCode(t, "unknown customer", err, smp.ENOTFOUND)
	b, err := catalog.ParseFile("technicians.yaml", []byte(`technicians:
- {partner_id: P001, name: Thợ, phone: "+84901234563", city: HCMC, skills: [aircon_repair], status: suspended}
`), "")
	must(t, err)
	if _, err := s.Import(ctx, olga, b, true, ""); err != nil {
		t.Fatal(err)
	}
	if len(told) != 2 {
		t.Fatalf("after a dry run: told of %v, want [T0001 T0002]", told)
	}
	rep, err := s.Import(ctx, olga, b, false, "")
	must(t, err)
	if rep.Updated != 1 || strings.Join(told, " ") != "T0001 T0002 T0003" {
		t.Fatalf("told of %v (import %+v), want [T0001 T0002 T0003]", told, rep)
	}
}
