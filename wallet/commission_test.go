package wallet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"smp"
	"smp/bus"
	"smp/internal/wait"
	"smp/sqlbus"
	"smp/wallet"
)

// TestCommissionVND: price × basis points / 10,000, rounded down to the
// whole dong; nothing for a zero rate or price.
func TestCommissionVND(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		price int64
		rate  smp.BasisPoints
		want  int64
	}{{350_000, 1000, 35_000}, {350_001, 1250, 43_750}, {99, 1500, 14}, {1, 9999, 0}, {350_000, 0, 0}, {0, 1000, 0},
		{1_000_000_000_000, 10_000, 1_000_000_000_000}} {
		if got := wallet.CommissionVND(tc.price, tc.rate); got != tc.want {
			t.Errorf("CommissionVND(%d, %d) = %d, want %d", tc.price, tc.rate, got, tc.want)
		}
	}
}

// seedOrder writes a city, a service at 12.5 % commission, technician
// T1 of P001 and a completed order o1 of 350,001 VND done by T1.
func (f *fixture) seedOrder(t testing.TB) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.store.UpsertCity(ctx, &smp.City{Code: "HCMC", Name: "HCMC", MinLat: 10, MaxLat: 11, MinLng: 106, MaxLng: 107, RadiusStepsKm: []float64{2}, WaveSize: 3, MaxWaves: 2}))
	must(f.store.UpsertService(ctx, &smp.Service{Code: "plumbing", Name: "Plumbing", Skill: "plumbing", PriceVND: 350_000, Commission: 1250}))
	must(f.store.UpsertTechnician(ctx, &smp.Technician{ID: "T1", PartnerID: "P001", Name: "Thợ", City: "HCMC", Skills: []string{"plumbing"}}))
	must(f.store.UpsertCustomer(ctx, &smp.Customer{ID: "C1", Name: "Khách"}))
	must(f.store.InTx(ctx, func(tx smp.Tx) error {
		return tx.InsertOrder(ctx, &smp.Order{ID: "o1", CustomerID: "C1", City: "HCMC", Service: "plumbing", Lat: 10.5, Lng: 106.5, PriceVND: 350_001,
			Stage: smp.StageCompleted, PaymentStatus: smp.PaymentPending, TechnicianID: "T1", CreatedAt: t0, StageChangedAt: t0})
	}))
}

func completed(id string) smp.Message {
	data, _ := json.Marshal(smp.OrderEventData{OrderID: "o1", City: "HCMC", Service: "plumbing", From: smp.StageInProgress, To: smp.StageCompleted,
		TechnicianID: "T1", Actor: "technician:T1"})
	b, _ := json.Marshal(smp.Event{ID: id, Type: smp.EventOrderCompleted, SchemaVersion: 1, AggregateID: "o1", OccurredAt: t0, Data: data})
	return smp.Message{Topic: smp.TopicOrders, Key: "o1", Value: b}
}

// TestCommissionOnceOnOrderCompleted: the commission consumer on a real
// bus: order.completed delivered three times under one event id and once
// more under another (a replayed copy) debits the commission once, with
// its entry commission:o1 and its event; other events are skipped.
func TestCommissionOnceOnOrderCompleted(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seedOrder(t)
	f.post(t, topup("TXN1", "P001", 500_000))
	b, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(t.TempDir(), "events.db"), Partitions: 2, RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r, err := bus.NewRouter(b, bus.Config{RetryBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.AddIntake(r); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	created, _ := json.Marshal(smp.Event{ID: "e0", Type: smp.EventOrderCreated, SchemaVersion: 1, AggregateID: "o1", OccurredAt: t0, Data: []byte(`{}`)})
	if err := b.Publish(ctx, smp.Message{Topic: smp.TopicOrders, Key: "o1", Value: created}, completed("e1"), completed("e1"), completed("e1"), completed("e2")); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "both completed events processed", func() bool {
		a, _ := f.store.IsProcessed(ctx, wallet.ConsumerGroup, "e1")
		b, _ := f.store.IsProcessed(ctx, wallet.ConsumerGroup, "e2")
		return a && b
	})
	if w, _ := f.svc.FindWallet(ctx, "P001"); w.BalanceVND != 500_000-43_750 {
		t.Fatalf("balance %d, want %d", w.BalanceVND, 500_000-43_750)
	}
	es, _ := f.store.FindWalletEntries(ctx, smp.WalletEntryFilter{Type: smp.WalletCommission})
	if len(es) != 1 || es[0].ID != "commission:o1" || es[0].AmountVND != 43_750 || es[0].OrderID != "o1" {
		t.Fatalf("commission entries %+v", es)
	}
	n := 0
	for _, e := range f.outbox(t) {
		if e.Type == smp.EventWalletCommission {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d commission events, want 1", n)
	}
}

// TestOfferGate: a partner's technicians get no offer while its wallet is
// below its floor, and do again once a top-up lifts it.
func TestOfferGate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.seedOrder(t)
	if err := f.store.UpsertTechnician(ctx, &smp.Technician{ID: "T2", PartnerID: "P002", Name: "Thợ 2", City: "HCMC", Skills: []string{"plumbing"}}); err != nil {
		t.Fatal(err)
	}
	cands := []smp.Candidate{{TechnicianID: "T1", DistanceM: 100}, {TechnicianID: "T2", DistanceM: 200}}
	gate := func() string {
		got, err := f.svc.OfferGate(ctx, cands)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(got)
	}
	all := fmt.Sprint(cands)
	// A wallet below zero without a configured floor stops nothing.
	f.post(t, smp.Posting{ID: "commission:x", Type: smp.WalletCommission, PartnerID: "P002", AmountVND: -5_000, OrderID: "x", Actor: "system:wallet"})
	if w, _ := f.svc.FindWallet(ctx, "P002"); w.BalanceVND != -5_000 || w.FloorVND != nil || w.State != smp.WalletActive {
		t.Fatalf("P002 without a floor: %+v", w)
	}
	if got := gate(); got != all {
		t.Fatalf("no floors: %s", got)
	}
	if err := f.store.InTx(ctx, func(tx smp.Tx) error { _, err := tx.SetWalletFloor(ctx, "P001", 100_000, t0); return err }); err != nil {
		t.Fatal(err)
	}
	if got := gate(); got != fmt.Sprint(cands[1:]) {
		t.Fatalf("P001 below its floor: %s", got)
	}
	if w, _ := f.svc.FindWallet(ctx, "P001"); w.State != smp.WalletBelowFloor {
		t.Fatalf("state %s", w.State)
	}
	f.post(t, topup("TXN9", "P001", 100_000))
	if got := gate(); got != all {
		t.Fatalf("after the top-up: %s", got)
	}
}
