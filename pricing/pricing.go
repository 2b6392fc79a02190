// Package pricing shows prices and invoices to customers in their
// region's display currency (issue 21 item 7, runbook INC-012): the
// catalogue's prices are whole VND, tax included; they are converted with
// the master data's currency_rates and split with its tax_configs, and
// every answer says which rate date it used. Where the region's hot data
// is older than smp.HotDataMaxLag (the replication lag from the master
// region, the RegionReplicationLagHotData alert's threshold), it says so:
// "Prices use the exchange rate of <date>; newer rates may not have
// arrived".
package pricing

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"smp"
)

// Store is what pricing reads: master data, the replication paths into
// this region (their lag) and the catalogue's services.
type Store interface {
	smp.MasterDataStore
	FindReplicationPaths(ctx context.Context) ([]smp.ReplicationPath, error)
	FindServices(ctx context.Context) ([]*smp.Service, error)
	FindServiceByCode(ctx context.Context, code string) (*smp.Service, error)
}

// Config of the service.
type Config struct {
	// Region is this deployment's region, Owner the region that edits
	// master data (smp.DefaultRegion for both by default). In the owner
	// region master data is never behind.
	Region, Owner string
	// Currency is the display currency, ISO 4217 (VND by default: no
	// conversion).
	Currency string
	// TaxCountry and TaxCode name the tax_configs row whose rate_bp is the
	// tax included in prices (VN, VAT by default); no row, no tax shown.
	TaxCountry, TaxCode string
	// MaxLag is how far behind hot data may be before prices say which
	// rate date they use (smp.HotDataMaxLag).
	MaxLag time.Duration
	// Zone gives the date on which a rate applies (smp.VietnamTime).
	Zone *time.Location
	Now  func() time.Time
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if c.Region == "" {
		c.Region = smp.DefaultRegion
	}
	if c.Owner == "" {
		c.Owner = smp.DefaultRegion
	}
	if c.Currency == "" {
		c.Currency = VND
	}
	if c.TaxCountry == "" {
		c.TaxCountry = "VN"
	}
	if c.TaxCode == "" {
		c.TaxCode = "VAT"
	}
	if c.MaxLag <= 0 {
		c.MaxLag = smp.HotDataMaxLag
	}
	if c.Zone == nil {
		c.Zone = smp.VietnamTime
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if err := smp.ValidRegion(c.Region); err != nil {
		return err
	}
	if err := smp.ValidRegion(c.Owner); err != nil {
		return err
	}
	cur, _ := smp.FindMasterTable(smp.MasterCurrencies)
	if _, err := cur.SplitKey(c.Currency); err != nil {
		return smp.Errorf(smp.EINVALID, "display currency %q: an ISO 4217 code (VND, USD)", c.Currency)
	}
	tax, _ := smp.FindMasterTable(smp.MasterTaxConfigs)
	if _, err := tax.SplitKey(c.TaxCountry + smp.KeySeparator + c.TaxCode); err != nil {
		return smp.Errorf(smp.EINVALID, "tax %s/%s: a country (VN) and a tax code (VAT)", c.TaxCountry, c.TaxCode)
	}
	return nil
}

// VND is the base currency: catalogue prices and money are whole VND.
const VND = "VND"

// Service prices services and invoices orders.
type Service struct {
	cfg   Config
	store Store
}

// New returns the service; EINVALID for a bad configuration.
func New(cfg Config, store Store) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, store: store}, nil
}

// Currency is the display currency.
func (s *Service) Currency() string { return s.cfg.Currency }

// Freshness is how far behind this region's hot master data is.
type Freshness struct {
	// Path is the replication path from the master region
	// (<owner>-to-<region>); empty in the master region.
	Path string `json:"path,omitempty"`
	// LagSeconds is that path's lag (region_replication_lag_seconds).
	LagSeconds float64 `json:"lag_seconds"`
	// Stale: the lag is above MaxLag, or no path from the master region
	// was ever declared here (master data may never have arrived).
	Stale bool `json:"stale"`
}

// Freshness reads the lag of the path from the master region into this
// one, measured from its heartbeats as the alert's metric is.
func (s *Service) Freshness(ctx context.Context) (Freshness, error) {
	if s.cfg.Region == s.cfg.Owner {
		return Freshness{}, nil
	}
	f := Freshness{Path: smp.ReplicationPathName(s.cfg.Owner, s.cfg.Region), Stale: true}
	paths, err := s.store.FindReplicationPaths(ctx)
	if err != nil {
		return Freshness{}, err
	}
	for _, p := range paths {
		if p.Path == f.Path {
			lag := max(s.cfg.Now().Sub(p.HeartbeatAt), 0)
			f.LagSeconds = lag.Round(time.Millisecond).Seconds()
			f.Stale = lag > s.cfg.MaxLag
		}
	}
	return f, nil
}

// Rate is the currency_rates row a conversion used.
type Rate struct {
	From string `json:"from_currency"`
	To   string `json:"to_currency"`
	// Date is the rate's rate_date: the newest on or before the day priced.
	Date string `json:"rate_date"`
	// Rate is the decimal string as stored: one From in To.
	Rate    string    `json:"rate"`
	Version int64     `json:"version"`
	Updated time.Time `json:"updated_at"`
}

// Money is an amount in a currency's minor units (cents for USD, whole
// dong for VND), with its decimal form.
type Money struct {
	Currency   string `json:"currency"`
	Minor      int64  `json:"amount_minor"`
	MinorUnits int    `json:"minor_units"`
	// Amount is Minor as a decimal string ("12.35").
	Amount string `json:"amount"`
}

// Tax is the tax included in prices.
type Tax struct {
	Country string `json:"country"`
	Code    string `json:"tax_code"`
	Name    string `json:"name"`
	// RateBP is in basis points (1,000 = 10%).
	RateBP  int64 `json:"rate_bp"`
	Version int64 `json:"version"`
}

// Notice is what a customer reads about the rates used, in Vietnamese
// and English (as the runbook's customer messages).
type Notice struct {
	// Code is stale (hot data older than MaxLag) or no_rate (no rate for
	// the display currency here yet: amounts are shown in VND).
	Code string `json:"code"`
	Vi   string `json:"vi"`
	En   string `json:"en"`
}

// StaleNotice is the notice for prices converted at the rate of date while
// newer rates may not have arrived.
func StaleNotice(date string) *Notice {
	return &Notice{Code: "stale",
		Vi: fmt.Sprintf("Giá dùng tỷ giá ngày %s; tỷ giá mới hơn có thể chưa về", date),
		En: fmt.Sprintf("Prices use the exchange rate of %s; newer rates may not have arrived", date)}
}

// NoRateNotice is the notice for amounts shown in VND because no rate for
// currency has arrived.
func NoRateNotice(currency string) *Notice {
	return &Notice{Code: "no_rate",
		Vi: fmt.Sprintf("Giá hiển thị bằng VND: chưa có tỷ giá %s", currency),
		En: fmt.Sprintf("Prices are shown in VND: no %s exchange rate has arrived yet", currency)}
}

// staleTaxNotice is the stale notice where no conversion is made (the
// display currency is VND): the tax may be behind.
func staleTaxNotice() *Notice {
	return &Notice{Code: "stale",
		Vi: "Thuế có thể chưa theo cấu hình mới nhất; cấu hình mới hơn có thể chưa về",
		En: "Taxes may not follow the newest configuration; newer ones may not have arrived"}
}

// Terms are what one price or invoice is computed with: the rate (nil for
// VND, or when none has arrived), the tax, the freshness and the notice.
type Terms struct {
	Region   string  `json:"region"`
	Currency string  `json:"currency"`
	Rate     *Rate   `json:"rate,omitempty"`
	RateDate string  `json:"rate_date,omitempty"`
	Tax      *Tax    `json:"tax,omitempty"`
	Stale    bool    `json:"stale"`
	Notice   *Notice `json:"notice,omitempty"`
	// LagSeconds is the hot data's replication lag into this region.
	LagSeconds float64 `json:"replication_lag_seconds"`

	minorUnits int
}

// Terms reads the rate for the display currency on day's date (in Zone),
// the tax and the freshness.
func (s *Service) Terms(ctx context.Context, day time.Time) (Terms, error) {
	t := Terms{Region: s.cfg.Region, Currency: s.cfg.Currency}
	fr, err := s.Freshness(ctx)
	if err != nil {
		return Terms{}, err
	}
	t.Stale, t.LagSeconds = fr.Stale, fr.LagSeconds
	if t.Tax, err = s.tax(ctx); err != nil {
		return Terms{}, err
	}
	if s.cfg.Currency != VND {
		date := day.In(s.cfg.Zone).Format(time.DateOnly)
		if t.Rate, err = s.rate(ctx, s.cfg.Currency, date); err != nil {
			return Terms{}, err
		}
		if t.minorUnits, err = s.minorUnits(ctx, s.cfg.Currency); err != nil {
			return Terms{}, err
		}
	}
	switch {
	case s.cfg.Currency != VND && t.Rate == nil:
		t.Currency, t.minorUnits, t.Notice = VND, 0, NoRateNotice(s.cfg.Currency)
	case t.Rate != nil:
		t.RateDate = t.Rate.Date
		if t.Stale {
			t.Notice = StaleNotice(t.Rate.Date)
		}
	case t.Stale:
		t.Notice = staleTaxNotice()
	}
	return t, nil
}

// rate returns the newest currency_rates row for cur against VND dated on
// or before date, in either direction (cur/VND: one cur in VND, preferred
// on the same date; VND/cur: one VND in cur); nil when there is none.
func (s *Service) rate(ctx context.Context, cur, date string) (*Rate, error) {
	var best *Rate
	for _, pair := range [][2]string{{cur, VND}, {VND, cur}} {
		r, err := s.newestRate(ctx, pair[0], pair[1], date)
		if err != nil {
			return nil, err
		}
		if r != nil && (best == nil || r.Date > best.Date) {
			best = r
		}
	}
	return best, nil
}

func (s *Service) newestRate(ctx context.Context, from, to, date string) (*Rate, error) {
	prefix := from + smp.KeySeparator + to + smp.KeySeparator
	after := prefix + "0001-01-01"
	var best *Rate
	for {
		recs, err := s.store.FindMasterRecords(ctx, smp.MasterDataFilter{Table: smp.MasterCurrencyRates, After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if !strings.HasPrefix(r.Key, prefix) {
				return best, nil
			}
			if d := r.Fields["rate_date"]; d <= date {
				best = &Rate{From: from, To: to, Date: d, Rate: r.Fields["rate"], Version: r.Version, Updated: r.UpdatedAt}
			}
		}
		if len(recs) < 1000 {
			return best, nil
		}
		after = recs[len(recs)-1].Key
	}
}

// minorUnits is the currencies row's minor_units for cur; 2 when that row
// has not arrived.
func (s *Service) minorUnits(ctx context.Context, cur string) (int, error) {
	r, err := s.store.FindMasterRecord(ctx, smp.MasterCurrencies, cur)
	switch {
	case smp.ErrorCode(err) == smp.ENOTFOUND:
		return 2, nil
	case err != nil:
		return 0, err
	}
	n, err := strconv.Atoi(r.Fields["minor_units"])
	if err != nil || n > 6 {
		return 0, smp.Errorf(smp.EINTERNAL, "currencies %s: minor_units %q", cur, r.Fields["minor_units"])
	}
	return n, nil
}

func (s *Service) tax(ctx context.Context) (*Tax, error) {
	r, err := s.store.FindMasterRecord(ctx, smp.MasterTaxConfigs, s.cfg.TaxCountry+smp.KeySeparator+s.cfg.TaxCode)
	switch {
	case smp.ErrorCode(err) == smp.ENOTFOUND:
		return nil, nil
	case err != nil:
		return nil, err
	}
	bp, err := strconv.ParseInt(r.Fields["rate_bp"], 10, 64)
	if err != nil {
		return nil, smp.Errorf(smp.EINTERNAL, "tax_configs %s: rate_bp %q", r.Key, r.Fields["rate_bp"])
	}
	return &Tax{Country: s.cfg.TaxCountry, Code: s.cfg.TaxCode, Name: r.Fields["name"], RateBP: bp, Version: r.Version}, nil
}

// Convert returns amountVND in the terms' currency: VND as it is, another
// currency at the terms' rate, rounded half up to the currency's minor
// unit (exact decimal arithmetic, never a float).
func (t Terms) Convert(amountVND int64) (Money, error) {
	if t.Rate == nil {
		return money(VND, amountVND, 0), nil
	}
	minor, err := Convert(amountVND, *t.Rate, t.minorUnits)
	if err != nil {
		return Money{}, err
	}
	return money(t.Currency, minor, t.minorUnits), nil
}

// TaxOf is the tax included in a tax-inclusive amount of VND:
// amount × rate_bp / (10,000 + rate_bp), rounded half up to the dong; 0
// without a tax.
func (t Terms) TaxOf(amountVND int64) int64 {
	if t.Tax == nil || t.Tax.RateBP == 0 {
		return 0
	}
	return divRound(new(big.Int).Mul(big.NewInt(amountVND), big.NewInt(t.Tax.RateBP)), big.NewInt(10000+t.Tax.RateBP))
}

// Convert converts whole VND into the minor units of the rate's other
// currency: with a rate X/VND (one X in VND), amount × 10^minorUnits /
// rate; with VND/X (one VND in X), amount × rate × 10^minorUnits; rounded
// half up (a half minor unit rounds away from zero). EINVALID for a rate
// that does not involve VND or is not a positive decimal.
func Convert(amountVND int64, r Rate, minorUnits int) (int64, error) {
	rate, ok := new(big.Rat).SetString(r.Rate)
	if !ok || rate.Sign() <= 0 {
		return 0, smp.Errorf(smp.EINVALID, "rate %q is not a positive decimal", r.Rate)
	}
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(minorUnits)), nil))
	v := new(big.Rat).Mul(new(big.Rat).SetInt64(amountVND), scale)
	switch {
	case r.To == VND && r.From != VND:
		v.Quo(v, rate)
	case r.From == VND && r.To != VND:
		v.Mul(v, rate)
	default:
		return 0, smp.Errorf(smp.EINVALID, "rate %s/%s does not convert from VND", r.From, r.To)
	}
	return divRound(v.Num(), v.Denom()), nil
}

// divRound is num/den rounded half away from zero (den > 0).
func divRound(num, den *big.Int) int64 {
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2)).Cmp(den) >= 0 {
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q.Int64()
}

func money(cur string, minor int64, units int) Money {
	m := Money{Currency: cur, Minor: minor, MinorUnits: units}
	neg := minor < 0
	digits := strconv.FormatInt(minor, 10)
	if neg {
		digits = digits[1:]
	}
	if units > 0 {
		for len(digits) <= units {
			digits = "0" + digits
		}
		digits = digits[:len(digits)-units] + "." + digits[len(digits)-units:]
	}
	if neg {
		digits = "-" + digits
	}
	m.Amount = digits
	return m
}

// Price is one service's price as a customer sees it: tax included.
type Price struct {
	Service string `json:"service"`
	Name    string `json:"name"`
	// PriceVND is the catalogue's price, tax included; TaxVND the tax in it.
	PriceVND int64 `json:"price_vnd"`
	TaxVND   int64 `json:"tax_vnd"`
	// Price and Tax are the same in the display currency.
	Price Money `json:"price"`
	Tax   Money `json:"tax_amount"`
}

func (t Terms) price(svc *smp.Service) (Price, error) {
	p := Price{Service: svc.Code, Name: svc.Name, PriceVND: svc.PriceVND, TaxVND: t.TaxOf(svc.PriceVND)}
	var err error
	if p.Price, err = t.Convert(p.PriceVND); err != nil {
		return Price{}, err
	}
	if p.Tax, err = t.Convert(p.TaxVND); err != nil {
		return Price{}, err
	}
	return p, nil
}

// PriceList is the price screen: every active service at today's rate.
type PriceList struct {
	Terms
	Prices []Price `json:"prices"`
}

// Prices returns the price screen.
func (s *Service) Prices(ctx context.Context) (PriceList, error) {
	t, err := s.Terms(ctx, s.cfg.Now())
	if err != nil {
		return PriceList{}, err
	}
	svcs, err := s.store.FindServices(ctx)
	if err != nil {
		return PriceList{}, err
	}
	out := PriceList{Terms: t, Prices: []Price{}}
	for _, svc := range svcs {
		if !svc.Status.Active() {
			continue
		}
		p, err := t.price(svc)
		if err != nil {
			return PriceList{}, err
		}
		out.Prices = append(out.Prices, p)
	}
	return out, nil
}

// Quote is one service's price at today's rate (what an order of it
// costs). ENOTFOUND for an unknown service; EINVALID for one not offered.
type Quote struct {
	Terms
	Price
}

// Quote prices the service with code.
func (s *Service) Quote(ctx context.Context, code string) (Quote, error) {
	svc, err := s.store.FindServiceByCode(ctx, code)
	if err != nil {
		return Quote{}, err
	}
	if !svc.Status.Active() {
		return Quote{}, smp.Errorf(smp.EINVALID, "service %s is not offered now", code)
	}
	t, err := s.Terms(ctx, s.cfg.Now())
	if err != nil {
		return Quote{}, err
	}
	p, err := t.price(svc)
	if err != nil {
		return Quote{}, err
	}
	return Quote{Terms: t, Price: p}, nil
}

// Line is one invoice line.
type Line struct {
	Description  string `json:"description"`
	Service      string `json:"service"`
	Quantity     int64  `json:"quantity"`
	UnitPriceVND int64  `json:"unit_price_vnd"`
	AmountVND    int64  `json:"amount_vnd"`
	Amount       Money  `json:"amount"`
}

// Invoice is an order's invoice: its lines, tax and totals in VND and in
// the display currency, at the rate of the order's date.
type Invoice struct {
	Terms
	Number        string            `json:"number"`
	OrderID       string            `json:"order_id"`
	CustomerID    string            `json:"customer_id"`
	OrderedAt     time.Time         `json:"ordered_at"`
	IssuedAt      time.Time         `json:"issued_at"`
	Stage         smp.Stage         `json:"stage"`
	PaymentStatus smp.PaymentStatus `json:"payment_status"`
	Lines         []Line            `json:"lines"`
	// TotalVND is what the customer pays (the order's price, tax
	// included); TaxVND the tax in it; NetVND the rest.
	NetVND   int64 `json:"net_vnd"`
	TaxVND   int64 `json:"tax_vnd"`
	TotalVND int64 `json:"total_vnd"`
	// Net, Tax and Total in the display currency: Total and Tax each
	// converted, Net their difference, so that they add up.
	Net   Money `json:"net"`
	Tax   Money `json:"tax_amount"`
	Total Money `json:"total"`
}

// Invoice returns o's invoice, converted at the newest rate dated on or
// before the order's day. Its service's name from the catalogue (its code
// if the service is gone).
func (s *Service) Invoice(ctx context.Context, o *smp.Order) (Invoice, error) {
	t, err := s.Terms(ctx, o.CreatedAt)
	if err != nil {
		return Invoice{}, err
	}
	desc := o.Service
	if svc, err := s.store.FindServiceByCode(ctx, o.Service); err == nil {
		desc = svc.Name
	} else if smp.ErrorCode(err) != smp.ENOTFOUND {
		return Invoice{}, err
	}
	inv := Invoice{Terms: t, Number: "INV-" + o.ID, OrderID: o.ID, CustomerID: o.CustomerID, OrderedAt: o.CreatedAt,
		IssuedAt: s.cfg.Now().UTC(), Stage: o.Stage, PaymentStatus: o.PaymentStatus,
		TotalVND: o.PriceVND, TaxVND: t.TaxOf(o.PriceVND)}
	inv.NetVND = inv.TotalVND - inv.TaxVND
	if inv.Total, err = t.Convert(inv.TotalVND); err != nil {
		return Invoice{}, err
	}
	if inv.Tax, err = t.Convert(inv.TaxVND); err != nil {
		return Invoice{}, err
	}
	inv.Net = money(inv.Total.Currency, inv.Total.Minor-inv.Tax.Minor, inv.Total.MinorUnits)
	inv.Lines = []Line{{Description: desc, Service: o.Service, Quantity: 1, UnitPriceVND: o.PriceVND, AmountVND: o.PriceVND, Amount: inv.Total}}
	return inv, nil
}
