package catalog_test

import (
	"strings"
	"testing"

	"smp"
	"smp/catalog"
)

const mixedYAML = `
cities:
  - {code: HCMC, name: "Hồ Chí Minh", lat: 10.78, lng: 106.70}
services:
  - {code: aircon_repair, name: "Sửa máy lạnh", price_vnd: 350000, commission_pct: 15}
partners:
  - {name: "Điện lạnh Sài Gòn", contact: "+84901111111"}
technicians:
  - {partner_id: P001, name: Lan, phone: "0901234567", city: HCMC, skills: [aircon_repair]}
  - {partner_id: P001, name: Bad, phone: "12345", city: HCMC, skills: [aircon_repair]}
customers:
  - {name: "Khách", phone: "+84987654321"}
`

func results(rep *catalog.Report) string {
	var out []string
	for _, r := range rep.Rows {
		out = append(out, r.Kind+":"+r.Key+":"+r.Result)
	}
	return strings.Join(out, " ")
}

// TestImport: rows are created, then unchanged on a second run, updated
// when a field differs; a bad row is refused with its reason and the
// others go on; a dry run reports and keeps nothing.
func TestImport(t *testing.T) {
	t.Parallel()
	s, db := open(t)
	b, err := catalog.ParseFile("catalog.yaml", []byte(mixedYAML), "")
	must(t, err)

	dry, err := s.Import(ctx, olga, b, true, "")
	must(t, err)
	if !dry.DryRun || dry.Created != 5 || dry.Refused != 1 {
		t.Fatalf("dry run: %+v", dry)
	}
	if cs, _ := db.FindCities(ctx); len(cs) != 0 {
		t.Fatalf("the dry run kept cities: %+v", cs)
	}
	if a, _ := db.FindAudit(ctx, smp.AuditFilter{Limit: 10}); len(a) != 0 {
		t.Fatalf("the dry run kept audit entries: %+v", a)
	}

	rep, err := s.Import(ctx, olga, b, false, "go-live")
	must(t, err)
	want := "cities:HCMC:created services:aircon_repair:created partners:P001:created technicians:T0001:created technicians::refused customers:C0001:created"
	if got := results(rep); got != want || rep.Created != 5 || rep.Refused != 1 {
		t.Fatalf("import:\n got %s\nwant %s", got, want)
	}
	if r := rep.Rows[4]; r.Row != 2 || !strings.Contains(r.Reason, "E.164") {
		t.Fatalf("refused row: %+v", r)
	}
	if dry.Created != rep.Created || dry.Refused != rep.Refused {
		t.Fatalf("the dry run said %+v, the import did %+v", dry, rep)
	}
	if a, _ := db.FindAudit(ctx, smp.AuditFilter{Target: "technician:T0001", Limit: 10}); len(a) != 1 || a[0].Reason != "go-live" {
		t.Fatalf("technician's audit: %+v", a)
	}

	again, err := s.Import(ctx, olga, b, false, "")
	must(t, err)
	if again.Unchanged != 5 || again.Created != 0 || again.Updated != 0 {
		t.Fatalf("second import: %s", results(again))
	}

	csv := "name,phone,partner_id,city,skills\nLan Anh,+84 90 123 4567,P001,HCMC,aircon_repair\nMai,0907777777,P001,HCMC,aircon_repair|plumbing\n"
	b2, err := catalog.ParseFile("technicians-2026.csv", []byte(csv), "")
	must(t, err)
	rep, err = s.Import(ctx, olga, b2, false, "")
	must(t, err)
	if got := results(rep); got != "technicians:T0001:updated technicians::refused" || !strings.Contains(rep.Rows[1].Reason, `unknown skill "plumbing"`) {
		t.Fatalf("CSV import: %s %+v", got, rep.Rows)
	}
	if tech, _ := db.FindTechnicianByID(ctx, "T0001"); tech.Name != "Lan Anh" {
		t.Fatalf("T0001 after the CSV: %+v", tech)
	}
	if _, err := s.Import(ctx, fiona, b, false, ""); smp.ErrorCode(err) != smp.EFORBIDDEN {
		t.Fatalf("finance imports: %v", err)
	}
}

func TestParseFile(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, data, kind, want string }{
		{"x.csv", "code,name\nHN,Hà Nội\n", "", "one kind"},
		{"cities.csv", "code,name,lat\nHN,Hà Nội,abc\n", "", "not a number"},
		{"people.yaml", "- {name: x}\n", "", "needs its kind"},
		{"c.yaml", "towns: []\n", "", `unknown field "towns"`},
		{"c.txt", "", "", ".csv, .yaml"},
		{"c.csv", "a,b\n", "planets", "unknown kind"},
	} {
		_, err := catalog.ParseFile(c.name, []byte(c.data), c.kind)
		if smp.ErrorCode(err) != smp.EINVALID || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseFile(%s): %v; want EINVALID mentioning %q", c.name, err, c.want)
		}
	}
	b, err := catalog.ParseFile("list.yml", []byte("- {code: HN, name: Hà Nội}\n"), "cities")
	if err != nil || len(b.Cities) != 1 {
		t.Fatalf("a bare list with --kind: %v %+v", err, b)
	}
	b, err = catalog.ParseFile("cities.csv", []byte("code,name,lat,lng,radius_steps_km\nHN,Hà Nội,21.02,105.83,1|3\n"), "")
	if err != nil || string(b.Cities[0]) != `{"code":"HN","lat":21.02,"lng":105.83,"name":"Hà Nội","radius_steps_km":[1,3]}` {
		t.Fatalf("CSV row: %v %s", err, b.Cities)
	}
}
