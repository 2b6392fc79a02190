// Package sim simulates SMP's outside world: the seeded demo dataset,
// technicians' phones (real WebSocket clients) and customers (real HTTP
// clients). The demo and the end-to-end tests drive the platform with it.
package sim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"

	"smp"
)

// Cities SMP serves in the demo, with bounds and dispatch settings.
func Cities() []*smp.City {
	steps := []float64{2, 5, 10, 20}
	return []*smp.City{
		{Code: "HCMC", Name: "Hồ Chí Minh", MinLat: 10.70, MaxLat: 10.88, MinLng: 106.60, MaxLng: 106.80, RadiusStepsKm: steps, WaveSize: 3, MaxWaves: 4},
		{Code: "HN", Name: "Hà Nội", MinLat: 20.95, MaxLat: 21.08, MinLng: 105.75, MaxLng: 105.90, RadiusStepsKm: steps, WaveSize: 3, MaxWaves: 4},
		{Code: "DN", Name: "Đà Nẵng", MinLat: 15.98, MaxLat: 16.10, MinLng: 108.15, MaxLng: 108.26, RadiusStepsKm: steps, WaveSize: 3, MaxWaves: 4},
	}
}

// Services offered in the demo.
func Services() []*smp.Service {
	return []*smp.Service{
		{Code: "aircon_repair", Name: "Sửa máy lạnh"},
		{Code: "plumbing", Name: "Sửa ống nước"},
		{Code: "electrical", Name: "Sửa điện"},
		{Code: "appliance_repair", Name: "Sửa đồ gia dụng"},
	}
}

// SeededTechnician is a technician with their token and home position.
type SeededTechnician struct {
	smp.Technician
	Token    string
	Lat, Lng float64
}

// SeededCustomer is a customer with their token.
type SeededCustomer struct {
	smp.Customer
	Token string
}

// Dataset is what Seed wrote.
type Dataset struct {
	Cities      []*smp.City
	Services    []*smp.Service
	Technicians []SeededTechnician
	Customers   []SeededCustomer
}

// SeedConfig sizes the dataset.
type SeedConfig struct {
	Partners    int // default 20
	Technicians int // default 200
	Customers   int // default 50
	// Seed makes names, skills and positions repeatable; tokens are always random.
	Seed uint64
}

// NewToken returns a random bearer token.
func NewToken(prefix string) string {
	b := make([]byte, 20)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

var lastNames = []string{"Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ"}
var firstNames = []string{"An", "Bình", "Cường", "Dũng", "Hải", "Hùng", "Khoa", "Long", "Minh", "Nam", "Phúc", "Quân", "Sơn", "Tài", "Thắng", "Tuấn", "Việt"}

// SeedStore is what Seed writes: the catalogue, people and tokens.
type SeedStore interface {
	smp.CatalogWriter
	smp.TokenStore
}

// Seed writes a dataset of the demo's shape straight into the store
// (idempotently for the catalogue and people, unaudited: fixtures for
// tests and smp-bench, any size) and issues fresh tokens, which it
// returns. hashToken is how the API stores tokens. The demo itself loads
// the seed file through the import (LoadDemo).
func Seed(ctx context.Context, store SeedStore, cfg SeedConfig, hashToken func(string) string) (*Dataset, error) {
	if cfg.Partners <= 0 {
		cfg.Partners = 20
	}
	if cfg.Technicians <= 0 {
		cfg.Technicians = 200
	}
	if cfg.Customers <= 0 {
		cfg.Customers = 50
	}
	rng := mrand.New(mrand.NewPCG(cfg.Seed, 0x5eed))
	ds := &Dataset{Cities: Cities(), Services: Services()}
	for _, c := range ds.Cities {
		if err := store.UpsertCity(ctx, c); err != nil {
			return nil, err
		}
	}
	for _, s := range ds.Services {
		if err := store.UpsertService(ctx, s); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= cfg.Partners; i++ {
		if err := store.UpsertPartner(ctx, &smp.Partner{ID: fmt.Sprintf("P%03d", i), Name: fmt.Sprintf("Đối tác %d", i)}); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= cfg.Technicians; i++ {
		t := SeededTechnician{Technician: newTechnician(rng, i, cfg.Partners, ds.Cities, ds.Services)}
		t.Lat, t.Lng = t.Technician.Lat, t.Technician.Lng
		if err := store.UpsertTechnician(ctx, &t.Technician); err != nil {
			return nil, err
		}
		t.Token = NewToken("tech_")
		if err := store.PutToken(ctx, hashToken(t.Token), "technician", t.ID, ""); err != nil {
			return nil, err
		}
		ds.Technicians = append(ds.Technicians, t)
	}
	for i := 1; i <= cfg.Customers; i++ {
		c := SeededCustomer{Customer: smp.Customer{ID: fmt.Sprintf("C%04d", i), Name: personName(rng), Phone: customerPhone(i)}}
		if err := store.UpsertCustomer(ctx, &c.Customer); err != nil {
			return nil, err
		}
		c.Token = NewToken("cust_")
		if err := store.PutToken(ctx, hashToken(c.Token), "customer", c.ID, ""); err != nil {
			return nil, err
		}
		ds.Customers = append(ds.Customers, c)
	}
	return ds, nil
}
