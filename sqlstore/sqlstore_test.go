package sqlstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"smp"
	"smp/dispatchtest"
	"smp/sqlstore"
	"smp/sqlstore/sqlstoretest"
	"smp/storetest"
)

// backend opens a store; reopen=true opens the same database again.
type backend struct {
	name string
	cfg  func(t *testing.T) sqlstore.Config
}

// backends: SQLite always, MySQL when SMP_TEST_MYSQL_DSN is set.
var backends = []backend{
	{"SQLite", func(t *testing.T) sqlstore.Config { return sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")} }},
	{"MySQL", func(t *testing.T) sqlstore.Config { return sqlstore.Config{MySQLDSN: sqlstoretest.MySQLDSN(t)} }},
}

func mustOpen(tb testing.TB, cfg sqlstore.Config) *sqlstore.DB {
	tb.Helper()
	db, err := sqlstore.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// TestConformance runs the store conformance suite (smp/storetest) on
// every backend: SQLite always, MySQL when SMP_TEST_MYSQL_DSN is set.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			if b.name == "MySQL" {
				sqlstoretest.SkipUnlessMySQL(t)
			}
			storetest.Run(t, func(t *testing.T) storetest.Store { return mustOpen(t, b.cfg(t)) })
		})
	}
}

// TestStore runs what is particular to sqlstore on every backend.
func TestStore(t *testing.T) {
	t.Parallel()
	tests := map[string]func(*testing.T, func(*testing.T) sqlstore.Config){
		"MigrationsIdempotent": testMigrationsIdempotent,
		"OfferStatesBatched":   testOfferStatesBatched,
		"WalletAppendOnly":     testWalletAppendOnly,
		"Leases": func(t *testing.T, open func(*testing.T) sqlstore.Config) {
			db := mustOpen(t, open(t))
			dispatchtest.RunLocker(t, func(*testing.T) smp.Locker { return db })
		},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for name, fn := range tests {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					fn(t, b.cfg)
				})
			}
		})
	}
}

func seed(t *testing.T, db *sqlstore.DB) {
	t.Helper()
	ctx := context.Background()
	for _, err := range []error{
		db.UpsertCity(ctx, &smp.City{Code: "HCMC", Name: "HCMC", MinLat: 10, MaxLat: 11, MinLng: 106, MaxLng: 107, RadiusStepsKm: []float64{2, 5}, WaveSize: 3, MaxWaves: 4}),
		db.UpsertService(ctx, &smp.Service{Code: "plumbing", Name: "Plumbing"}),
		db.UpsertPartner(ctx, &smp.Partner{ID: "P1", Name: "P1"}),
		db.UpsertTechnician(ctx, &smp.Technician{ID: "T1", PartnerID: "P1", Name: "T", City: "HCMC", Skills: []string{"plumbing", "electrical"}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func newOrder(id string, now time.Time) *smp.Order {
	return &smp.Order{ID: id, CustomerID: "C1", City: "HCMC", Service: "plumbing", Lat: 10.5, Lng: 106.5, PriceVND: 100000,
		Stage: smp.StageCreated, PaymentStatus: smp.PaymentPending, CreatedAt: now, StageChangedAt: now}
}

func testMigrationsIdempotent(t *testing.T, open func(*testing.T) sqlstore.Config) {
	cfg := open(t)
	db := mustOpen(t, cfg)
	v1, err := db.SchemaVersion(context.Background())
	if err != nil || v1 == "" {
		t.Fatalf("version %q: %v", v1, err)
	}
	db.Close()
	db.Close() // twice is fine
	db2 := mustOpen(t, cfg)
	if v2, _ := db2.SchemaVersion(context.Background()); v2 != v1 {
		t.Fatalf("version after reopen %q, want %q", v2, v1)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testOfferStatesBatched: delivered, withdrawn and expired are written in
// batches, but a trace read, a later accept or decline, and Close all see
// them, in order; withdrawn or expired never overwrite an answer.
func testOfferStatesBatched(t *testing.T, open func(*testing.T) sqlstore.Config) {
	cfg := open(t)
	db, err := sqlstore.Open(context.Background(), cfg)
	must(t, err)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var offers []smp.OfferRecord
	for i := 1; i <= 4; i++ {
		offers = append(offers, smp.OfferRecord{InvitationID: fmt.Sprint("i", i), OrderID: "o1", TechnicianID: fmt.Sprint("T", i), Round: 1, Wave: 1, Rank: i,
			DistanceM: float64(100 * i), State: smp.InvitationSent, SentAt: now, ExpiresAt: now.Add(time.Minute)})
	}
	must(t, db.AddOffers(ctx, offers))
	must(t, db.UpdateOffer(ctx, "i1", smp.InvitationDelivered, now.Add(time.Second)))
	must(t, db.UpdateOffer(ctx, "i2", smp.InvitationDelivered, now.Add(time.Second)))
	must(t, db.UpdateOffer(ctx, "i2", smp.InvitationDeclined, now.Add(2*time.Second)))  // after its delivery
	must(t, db.UpdateOffer(ctx, "i2", smp.InvitationWithdrawn, now.Add(3*time.Second))) // must not hide the decline
	must(t, db.UpdateOffer(ctx, "i3", smp.InvitationExpired, now.Add(3*time.Second)))
	tr, err := db.FindDispatchTrace(ctx, "o1")
	must(t, err)
	state := map[string]smp.InvitationState{}
	for _, o := range tr.Offers {
		state[o.InvitationID] = o.State
	}
	if state["i1"] != smp.InvitationDelivered || state["i2"] != smp.InvitationDeclined || state["i3"] != smp.InvitationExpired || state["i4"] != smp.InvitationSent {
		t.Fatalf("states %v", state)
	}
	if tr.Offers[1].DeliveredAt == nil {
		t.Fatalf("i2's delivery was lost behind its decline: %+v", tr.Offers[1])
	}
	// Pending at Close: written before the store closes.
	must(t, db.UpdateOffer(ctx, "i4", smp.InvitationWithdrawn, now.Add(4*time.Second)))
	must(t, db.Close())
	db = mustOpen(t, cfg)
	tr, err = db.FindDispatchTrace(ctx, "o1")
	must(t, err)
	if tr.Offers[3].State != smp.InvitationWithdrawn {
		t.Fatalf("an update pending at Close was lost: %+v", tr.Offers[3])
	}
}
