package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/auth"
	"smp/httpapi"
	"smp/orders"
	"smp/pricing"
	"smp/replication"
	"smp/sqlstore"
)

// TestPricesAndInvoices: in region china (master data from asia), the
// price screen, a quote and an order's invoice (the customer's, JSON and
// HTML, and the admin view) name the rate date; while the path's
// heartbeats are older than smp.HotDataMaxLag they carry the stale notice,
// which is gone once heartbeats and rates arrive again; another customer's
// order is not found, an unknown service is a JSON 404.
func TestPricesAndInvoices(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db"), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.UpsertCity(ctx, &smp.City{Code: "HCMC", Name: "Ho Chi Minh City", MinLat: 10, MaxLat: 11, MinLng: 106, MaxLng: 107}))
	must(db.UpsertService(ctx, &smp.Service{Code: "aircon", Name: "Air-con cleaning", PriceVND: 350_000}))
	must(db.UpsertCustomer(ctx, &smp.Customer{ID: "C1", Name: "An", Phone: "+84901234567"}))
	must(db.PutToken(ctx, auth.HashToken("cust1"), auth.KindCustomer, "C1", ""))
	must(db.PutToken(ctx, auth.HashToken("cust2"), auth.KindCustomer, "C2", ""))
	must(db.DeclareReplicationPath(ctx, smp.ReplicationPath{Path: "asia-to-china", Source: "asia", Target: "china", HeartbeatAt: clock()}))
	version := int64(0)
	arrive := func(table string, fields map[string]string) {
		t.Helper()
		mt, _ := smp.FindMasterTable(table)
		key, err := mt.Check(fields)
		must(err)
		version++
		_, err = replication.Apply(ctx, db, smp.MasterDataEvent{MasterRecord: smp.MasterRecord{Table: table, Key: key, Fields: fields,
			Version: version, Region: "asia", UpdatedAt: clock()}, SchemaVersion: smp.MasterDataSchemaVersion})
		must(err)
	}
	arrive(smp.MasterTaxConfigs, map[string]string{"country": "VN", "tax_code": "VAT", "rate_bp": "1000", "name": "VAT 10%"})
	arrive(smp.MasterCurrencyRates, map[string]string{"from_currency": "USD", "to_currency": "VND", "rate_date": "2026-12-02", "rate": "25400"})

	ord, err := orders.New(ctx, db, orders.Config{Now: clock})
	must(err)
	o, err := ord.CreateOrder(ctx, "C1", smp.NewOrder{City: "HCMC", Service: "aircon", Lat: 10.5, Lng: 106.5, PriceVND: 350_000})
	must(err)
	pr, err := pricing.New(pricing.Config{Region: "china", Owner: "asia", Currency: "USD", Now: clock}, db)
	must(err)
	srv, err := httpapi.New(httpapi.Config{AdminToken: "adm", Now: clock}, httpapi.Deps{Store: db, Orders: ord, PublicAPI: true, Pricing: pr})
	must(err)
	get := func(token, path string, want int, accept ...string) (map[string]any, string) {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		for _, a := range accept {
			req.Header.Set("Accept", a)
		}
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		if w.Code != want {
			t.Fatalf("GET %s: %d %s, want %d", path, w.Code, w.Body.String(), want)
		}
		var v map[string]any
		if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			must(json.Unmarshal(w.Body.Bytes(), &v))
		}
		return v, w.Body.String()
	}
	invoicePath := "/v1/orders/" + o.ID + "/invoice"
	check := func(name string, stale bool, date string) {
		t.Helper()
		prices, _ := get("", "/v1/prices", 200)
		quote, _ := get("", "/v1/prices/aircon", 200)
		inv, _ := get("cust1", invoicePath, 200)
		adm, _ := get("adm", "/admin/orders/"+o.ID+"/invoice", 200)
		for what, v := range map[string]map[string]any{"prices": prices, "quote": quote, "invoice": inv, "admin invoice": adm} {
			notice, _ := v["notice"].(map[string]any)
			if v["rate_date"] != date || v["stale"] != stale || (notice != nil) != stale {
				t.Errorf("%s: %s rate_date %v stale %v notice %v; want %s, %v", name, what, v["rate_date"], v["stale"], notice, date, stale)
			}
			if stale && notice["en"] != "Prices use the exchange rate of "+date+"; newer rates may not have arrived" {
				t.Errorf("%s: %s notice %v", name, what, notice)
			}
		}
		if p := quote["price"].(map[string]any); p["amount"] == "" || p["currency"] != "USD" {
			t.Errorf("%s: quote %v", name, quote)
		}
		if inv["total_vnd"] != float64(350_000) || inv["tax_vnd"] != float64(31_818) || inv["number"] != "INV-"+o.ID {
			t.Errorf("%s: invoice %v", name, inv)
		}
		_, page := get("cust1", invoicePath, 200, "text/html")
		if strings.Contains(page, "newer rates may not have arrived") != stale || !strings.Contains(page, "INV-"+o.ID) ||
			!strings.Contains(page, "ngày / of "+date) {
			t.Errorf("%s: the HTML invoice: %s", name, page)
		}
	}
	check("fresh", false, "2026-12-02")
	advance(smp.HotDataMaxLag + time.Second) // no heartbeat for 61 s
	check("heartbeats stopped", true, "2026-12-02")
	must(db.BeatReplicationPath(ctx, "asia-to-china", clock()))
	check("heartbeats again", false, "2026-12-02")

	if v, _ := get("cust2", invoicePath, 404); v["error"] == nil {
		t.Errorf("another customer's invoice: %v", v)
	}
	if v, _ := get("", "/v1/prices/nosuch", 404); v["error"] == nil {
		t.Errorf("unknown service: %v", v)
	}
}
