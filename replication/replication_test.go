package replication

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp"
	"smp/masterdata"
	"smp/sqlstore"
)

func openStore(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// published puts a row in the owner region through masterdata.Service and
// returns its event as the outbox relay puts it on masterdata.<table>.
func published(t *testing.T, db *sqlstore.DB, table string, fields map[string]string) []byte {
	t.Helper()
	ctx := context.Background()
	md, err := masterdata.New(masterdata.Config{Now: func() time.Time { return time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC) }}, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := md.Put(ctx, smp.Principal{Name: "fiona", Role: smp.RoleFinance}, table, fields, "daily rates"); err != nil {
		t.Fatal(err)
	}
	recs, err := db.FetchOutbox(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	v, err := json.Marshal(recs[len(recs)-1].Event)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNames(t *testing.T) {
	t.Parallel()
	if got := RemoteTopic("china", "masterdata.currency_rates"); got != "china.masterdata.currency_rates" {
		t.Errorf("RemoteTopic = %q", got)
	}
	for topic, want := range map[string]string{"masterdata.currency_rates": "currency_rates", "china.masterdata.currency_rates": "",
		"orders.events": "", "masterdata.": "", "masterdata.a.b": ""} {
		if got, ok := SourceTable(topic); got != want || ok != (want != "") {
			t.Errorf("SourceTable(%q) = %q, %v", topic, got, ok)
		}
	}
}

// TestGuardAndApply: a record from the owner region passes the guard on
// its remote topic and is applied once on the target; what is not
// allowlisted non-PII master data is refused, counted by reason, and
// nothing is written on the target.
func TestGuardAndApply(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	source, target := openStore(t), openStore(t)
	reg := prometheus.NewRegistry()
	g, err := NewGuard(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rate := map[string]string{"from_currency": "USD", "to_currency": "VND", "rate_date": "2026-12-01", "rate": "25410.5"}
	value := published(t, source, smp.MasterCurrencyRates, rate)
	topic := RemoteTopic("global", "masterdata.currency_rates")
	ev, err := g.Check(topic, value)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} { // delivered twice: applied once
		applied, err := Apply(ctx, target, ev)
		if err != nil || applied != want {
			t.Fatalf("apply %d: %v, %v; want %v", i, applied, err, want)
		}
	}
	got, err := target.FindMasterRecord(ctx, smp.MasterCurrencyRates, "USD/VND/2026-12-01")
	if err != nil || got.Version != 1 || got.Region != "global" || got.Fields["rate"] != "25410.5" {
		t.Fatalf("on the target: %+v, %v", got, err)
	}

	// A PII column added to a master-data table (classified pii), and one
	// added without a classification.
	gPII, _ := NewGuard(nil, nil)
	gPII.classify = func(table, column string) (smp.DataClass, bool) {
		if table == smp.MasterCountries && column == "contact_phone" {
			return smp.PII, true
		}
		return smp.ColumnClass(table, column)
	}
	country := func(extra string) []byte {
		return []byte(`{"event_id":"e1","event_type":"masterdata.countries.changed","schema_version":1,"aggregate_id":"VN","data":` +
			`{"table":"countries","key":"VN","fields":{"code":"VN","name":"Việt Nam"` + extra + `},"version":2,"region":"china","schema_version":1}}`)
	}
	_, err = gPII.Check("china.masterdata.countries", country(`,"contact_phone":"+84901234567"`))
	if RefusalReason(err) != ReasonPII {
		t.Fatalf("a PII column: %v", err)
	}
	if strings.Contains(err.Error(), "+84901234567") {
		t.Errorf("the refusal carries the value: %v", err)
	}
	if _, err := g.Check("masterdata.countries", country(`,"contact_phone":"+84901234567"`)); RefusalReason(err) != ReasonUnclassified {
		t.Errorf("an unclassified column: %v", err)
	}
	if _, err := g.Check("masterdata.countries", country("")); err != nil {
		t.Errorf("the clean record: %v", err)
	}
	refused := map[string]struct {
		topic, value, reason string
	}{
		"PII record on a master-data topic": {"global.masterdata.countries",
			`{"event_type":"masterdata.countries.changed","data":{"table":"countries","key":"VN","fields":{"code":"VN","name":"x"},"version":1,"region":"china","customer_phone":"+84901234567"}}`, ReasonUnclassified},
		"an order on a master-data topic": {"masterdata.countries",
			`{"event_type":"order.created","data":{"order_id":"O1","address":"12 Lê Lợi"}}`, ReasonTable},
		"customers are not master data": {"china.masterdata.customers",
			`{"event_type":"masterdata.customers.changed","data":{"table":"customers","key":"C0001","fields":{"phone":"+84901234567"},"version":1}}`, ReasonTable},
		"not a master-data topic":   {"orders.events", string(value), ReasonTable},
		"another table's record":    {"masterdata.countries", string(value), ReasonTable},
		"not JSON":                  {topic, `{`, ReasonMalformed},
		"a float rate":              {topic, strings.Replace(string(value), `25410.5`, `2.5e4`, 1), ReasonMalformed},
		"a newer schema":            {topic, strings.Replace(string(value), `"schema_version":1}`, `"schema_version":2}`, 1), ReasonSchema},
		"version 0":                 {topic, strings.Replace(string(value), `"version":1`, `"version":0`, 1), ReasonMalformed},
		"a field of another kind":   {topic, strings.Replace(string(value), `"rate_date":"2026-12-01"`, `"rate_date":"yesterday"`, 1), ReasonMalformed},
		"a key that is not its own": {topic, strings.Replace(string(value), `"key":"USD/VND/2026-12-01"`, `"key":"EUR/VND/2026-12-01"`, 1), ReasonMalformed},
	}
	for name, c := range refused {
		if _, err := g.Check(c.topic, []byte(c.value)); RefusalReason(err) != c.reason {
			t.Errorf("%s: %v, want %s", name, err, c.reason)
		}
	}
	counts := map[string]float64{}
	for _, c := range refused {
		counts[c.reason]++
	}
	counts[ReasonUnclassified]++ // the unclassified column above
	for reason, want := range counts {
		if got := testutil.ToFloat64(g.refused.WithLabelValues(reason)); got != want {
			t.Errorf("smp_replication_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "smp_replication_refused_total"); err != nil || n != 5 {
		t.Errorf("registered series: %d, %v", n, err)
	}
	// Nothing refused reached the target: one row, the one applied.
	for _, mt := range smp.MasterTables {
		rows, err := target.FindMasterRecords(ctx, smp.MasterDataFilter{Table: mt.Name})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 1, false: 0}[mt.Name == smp.MasterCurrencyRates]; len(rows) != want {
			t.Errorf("%s on the target: %d rows, want %d", mt.Name, len(rows), want)
		}
	}
}
