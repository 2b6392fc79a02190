package pricing

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/replication"
	"smp/sqlstore"
)

// clock is a test's settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// region is a target region's database where master data arrives as the
// replication agent applies it (replication.Apply) and the path's
// heartbeats raise its heartbeat_at (BeatReplicationPath), as the agent's
// apply does.
type region struct {
	t     *testing.T
	db    *sqlstore.DB
	clock *clock
	v     map[string]int64
}

func newRegion(t *testing.T) *region {
	t.Helper()
	c := &clock{now: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)}
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db"), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := db.UpsertService(ctx, &smp.Service{Code: "aircon", Name: "Air-con cleaning", PriceVND: 350_000}); err != nil {
		t.Fatal(err)
	}
	if err := db.DeclareReplicationPath(ctx, smp.ReplicationPath{Path: "asia-to-china", Source: "asia", Target: "china", HeartbeatAt: c.Now()}); err != nil {
		t.Fatal(err)
	}
	return &region{t: t, db: db, clock: c, v: map[string]int64{}}
}

// arrive applies a row as replicated from asia, at the next version.
func (r *region) arrive(table string, fields map[string]string) {
	r.t.Helper()
	mt, err := smp.FindMasterTable(table)
	if err != nil {
		r.t.Fatal(err)
	}
	key, err := mt.Check(fields)
	if err != nil {
		r.t.Fatal(err)
	}
	r.v[table+key]++
	ev := smp.MasterDataEvent{MasterRecord: smp.MasterRecord{Table: table, Key: key, Fields: fields, Version: r.v[table+key], Region: "asia",
		UpdatedAt: r.clock.Now()}, SchemaVersion: smp.MasterDataSchemaVersion}
	if applied, err := replication.Apply(context.Background(), r.db, ev); err != nil || !applied {
		r.t.Fatalf("apply %s %s: %v, %v", table, key, applied, err)
	}
}

func (r *region) beat() {
	r.t.Helper()
	if err := r.db.BeatReplicationPath(context.Background(), "asia-to-china", r.clock.Now()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *region) service(t *testing.T, currency string) *Service {
	t.Helper()
	s, err := New(Config{Region: "china", Owner: "asia", Currency: currency, Now: r.clock.Now}, r.db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rate(from, to, date, v string) map[string]string {
	return map[string]string{"from_currency": from, "to_currency": to, "rate_date": date, "rate": v}
}

// TestStaleRateNotice: fresh rates, no notice; the heartbeats stop (the
// clock moves past HotDataMaxLag) and prices, quotes and invoices say which
// rate date they use; rates and heartbeats arrive again and the notice is
// gone, with the new rate's date.
func TestStaleRateNotice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRegion(t)
	r.arrive(smp.MasterCurrencies, map[string]string{"code": "USD", "name": "US dollar", "minor_units": "2"})
	r.arrive(smp.MasterTaxConfigs, map[string]string{"country": "VN", "tax_code": "VAT", "rate_bp": "1000", "name": "VAT 10%"})
	r.arrive(smp.MasterCurrencyRates, rate("USD", "VND", "2026-12-02", "25400"))
	s := r.service(t, "USD")
	order := &smp.Order{ID: "O1", CustomerID: "C1", Service: "aircon", PriceVND: 350_000, CreatedAt: r.clock.Now()}

	check := func(name string, wantStale bool, wantDate string, wantMinor int64) {
		t.Helper()
		q, err := s.Quote(ctx, "aircon")
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.Prices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := s.Invoice(ctx, order)
		if err != nil {
			t.Fatal(err)
		}
		for what, tm := range map[string]Terms{"quote": q.Terms, "prices": list.Terms, "invoice": inv.Terms} {
			if tm.Stale != wantStale || tm.RateDate != wantDate {
				t.Errorf("%s: %s stale %v, rate date %q; want %v, %q (lag %.0fs)", name, what, tm.Stale, tm.RateDate, wantStale, wantDate, tm.LagSeconds)
			}
			switch {
			case wantStale && (tm.Notice == nil || tm.Notice.Code != "stale" || !strings.Contains(tm.Notice.En, "exchange rate of "+wantDate) ||
				!strings.Contains(tm.Notice.Vi, "tỷ giá ngày "+wantDate)):
				t.Errorf("%s: %s notice %+v, want the stale notice naming %s", name, what, tm.Notice, wantDate)
			case !wantStale && tm.Notice != nil:
				t.Errorf("%s: %s notice %+v, want none", name, what, tm.Notice)
			}
		}
		if q.Price.Price.Minor != wantMinor || inv.Total.Minor != wantMinor {
			t.Errorf("%s: quote %+v, invoice total %+v; want %d cents", name, q.Price.Price, inv.Total, wantMinor)
		}
	}
	// 350,000 / 25,400 = 13.7795... USD: 1378 cents.
	check("fresh", false, "2026-12-02", 1378)

	// The heartbeats stop: at 60 s the lag is at the threshold, not above.
	r.clock.Add(smp.HotDataMaxLag)
	check("at the threshold", false, "2026-12-02", 1378)
	r.clock.Add(time.Second)
	check("heartbeats stopped", true, "2026-12-02", 1378)

	// The next day's rate arrives, and heartbeats again.
	r.clock.Add(24 * time.Hour)
	r.arrive(smp.MasterCurrencyRates, rate("USD", "VND", "2026-12-03", "25000"))
	yesterday := *order
	order.CreatedAt = r.clock.Now()
	check("rate arrived, heartbeats still stopped", true, "2026-12-03", 1400)
	r.beat()
	check("caught up", false, "2026-12-03", 1400)
	// An order placed on 2026-12-02 keeps that day's rate on its invoice.
	inv, err := s.Invoice(ctx, &yesterday)
	if err != nil {
		t.Fatal(err)
	}
	if inv.RateDate != "2026-12-02" || inv.Stale || inv.Notice != nil || inv.Total.Minor != 1378 {
		t.Errorf("invoice of an order of 2026-12-02 after the catch-up: rate date %q, stale %v, notice %+v, total %+v", inv.RateDate, inv.Stale, inv.Notice, inv.Total)
	}
}

// TestInvoice checks an invoice's lines, tax and totals: the tax is in
// the price (10% of 350,000 included is 31,818.18, 31,818 VND), the
// display amounts add up.
func TestInvoice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRegion(t)
	r.arrive(smp.MasterTaxConfigs, map[string]string{"country": "VN", "tax_code": "VAT", "rate_bp": "1000", "name": "VAT 10%"})
	r.arrive(smp.MasterCurrencyRates, rate("VND", "USD", "2026-12-01", "0.00003937"))
	order := &smp.Order{ID: "O1", CustomerID: "C1", Service: "aircon", PriceVND: 350_000, CreatedAt: r.clock.Now(),
		Stage: smp.StageCompleted, PaymentStatus: smp.PaymentPaid}

	inv, err := r.service(t, "USD").Invoice(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Number != "INV-O1" || len(inv.Lines) != 1 || inv.Lines[0].Description != "Air-con cleaning" || inv.Lines[0].AmountVND != 350_000 {
		t.Errorf("invoice %+v", inv)
	}
	if inv.TotalVND != 350_000 || inv.TaxVND != 31_818 || inv.NetVND != 318_182 {
		t.Errorf("VND: total %d tax %d net %d", inv.TotalVND, inv.TaxVND, inv.NetVND)
	}
	// VND/USD 0.00003937 (no currencies row: 2 minor units):
	// 350,000 × 0.00003937 = 13.7795 → 13.78; 31,818 × 0.00003937 = 1.2527 → 1.25.
	if inv.Total.Amount != "13.78" || inv.Tax.Amount != "1.25" || inv.Net.Amount != "12.53" || inv.Currency != "USD" {
		t.Errorf("USD: total %+v tax %+v net %+v", inv.Total, inv.Tax, inv.Net)
	}
	if inv.Rate == nil || inv.RateDate != "2026-12-01" || inv.Tax == (Money{}) {
		t.Errorf("rate %+v date %q", inv.Rate, inv.RateDate)
	}

	// No rate for the display currency: VND, said so.
	inv, err = r.service(t, "CNY").Invoice(ctx, order)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Currency != VND || inv.Total.Amount != "350000" || inv.Notice == nil || inv.Notice.Code != "no_rate" {
		t.Errorf("no CNY rate: currency %s total %+v notice %+v", inv.Currency, inv.Total, inv.Notice)
	}
}

func TestConvert(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		amount int64
		r      Rate
		units  int
		want   int64
	}{
		{350_000, Rate{From: "USD", To: "VND", Rate: "25400"}, 2, 1378},    // 1377.95 → 1378
		{12_700, Rate{From: "USD", To: "VND", Rate: "25400"}, 2, 50},       // exactly 0.5 USD
		{127, Rate{From: "USD", To: "VND", Rate: "25400"}, 2, 1},           // 0.5 cent: half up
		{126, Rate{From: "USD", To: "VND", Rate: "25400"}, 2, 0},           // 0.496 cent
		{350_000, Rate{From: "JPY", To: "VND", Rate: "167.5"}, 0, 2090},    // 2089.55 → 2090
		{350_000, Rate{From: "VND", To: "CNY", Rate: "0.000285"}, 2, 9975}, // 99.75
		{1, Rate{From: "VND", To: "USD", Rate: "0.00003937"}, 2, 0},        // 0.003937 cent
		{999_999_999, Rate{From: "USD", To: "VND", Rate: "3"}, 2, 33333333300},
	} {
		got, err := Convert(c.amount, c.r, c.units)
		if err != nil || got != c.want {
			t.Errorf("Convert(%d, %s/%s %s, %d) = %d, %v; want %d", c.amount, c.r.From, c.r.To, c.r.Rate, c.units, got, err, c.want)
		}
	}
	if _, err := Convert(1, Rate{From: "USD", To: "EUR", Rate: "0.9"}, 2); smp.ErrorCode(err) != smp.EINVALID {
		t.Errorf("USD/EUR: %v, want EINVALID", err)
	}
}

// TestFreshness: the master region is never behind; a region with no path
// from the master region is (nothing may ever have arrived).
func TestFreshness(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newRegion(t)
	for _, c := range []struct {
		region, owner string
		stale         bool
	}{{"asia", "asia", false}, {"china", "asia", false}, {"us", "asia", true}, {"china", "global", true}} {
		s, err := New(Config{Region: c.region, Owner: c.owner, Now: r.clock.Now}, r.db)
		if err != nil {
			t.Fatal(err)
		}
		f, err := s.Freshness(ctx)
		if err != nil || f.Stale != c.stale {
			t.Errorf("%s (owner %s): %+v, %v; want stale %v", c.region, c.owner, f, err, c.stale)
		}
	}
	if _, err := New(Config{Currency: "usd"}, r.db); smp.ErrorCode(err) != smp.EINVALID {
		t.Errorf("currency usd: %v, want EINVALID", err)
	}
}
