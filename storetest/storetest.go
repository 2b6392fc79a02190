// Package storetest is the conformance suite of SMP's system of record:
// every implementation of the store interfaces of package smp runs Run,
// which holds it to the contract and error codes their doc comments state
// (in the manner of bustest and River's riverdrivertest). sqlstore runs it
// on SQLite and on MySQL, so both backends are shown to agree, limits
// included.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"smp"
)

// Store is every store interface of package smp: what a backend of the
// system of record implements.
type Store interface {
	smp.Transactor
	smp.OrderStore
	smp.CatalogStore
	smp.CatalogWriter
	smp.TokenStore
	smp.FlagStore
	smp.AuditStore
	smp.DispatchTraceStore
	smp.ProcessedStore
	smp.InboxStore
	smp.OutboxStore
	smp.AlertStore
	smp.StatusStore
	smp.IdempotencyStore
	smp.PruneStore
	smp.HeartbeatStore
	smp.WalletStore
	smp.SessionStore
	smp.TechnicianSettingsStore
	smp.ConnectOffsetStore
	smp.ConnectConfigStore
	smp.MasterDataStore
	smp.ReplicationStore
	smp.FraudStore
	smp.ReconStore
	smp.EnforcementStore
}

// Test is one case of the suite, given a fresh, empty store.
type Test struct {
	Name string
	Fn   func(t *testing.T, s Store)
}

// Tests lists the suite's cases, grouped by interface ("Orders/…").
func Tests() []Test {
	var all []Test
	for _, group := range [][]Test{txTests, orderTests, catalogTests, tokenTests, flagTests, auditTests,
		onboardingTests, traceTests, processedTests, inboxTests, outboxTests, alertTests, statusTests, idempotencyTests, pruneTests, heartbeatTests,
		sessionTests, settingsTests, limitTests, concurrentTests, walletTests, connectTests, connectConfigTests, masterDataTests, replicationTests, fraudTests, reconTests, enforcementTests} {
		all = append(all, group...)
	}
	return all
}

// Run runs every case in parallel, each on a store of its own: open must
// return a fresh, empty store (migrated, nothing seeded) and close it at
// the test's cleanup.
func Run(t *testing.T, open func(t *testing.T) Store) {
	t.Helper()
	for _, tc := range Tests() {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			tc.Fn(t, open(t))
		})
	}
}

// T0 is the suite's clock: microsecond precision, as every backend keeps.
var T0 = time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)

var ctx = context.Background()

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantCode fails unless err carries code ("" for no error).
func wantCode(t testing.TB, what string, err error, code string) {
	t.Helper()
	if got := smp.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

// inTx runs fn in a transaction that must commit.
func inTx(t testing.TB, s Store, fn func(tx smp.Tx) error) {
	t.Helper()
	must(t, s.InTx(ctx, fn))
}

// seed writes a city (HCMC), a service (plumbing), a partner (P1), two
// technicians (T1, T2) and a customer (C1).
func seed(t testing.TB, s Store) {
	t.Helper()
	must(t, s.UpsertCity(ctx, &smp.City{Code: "HCMC", Name: "Hồ Chí Minh", MinLat: 10, MaxLat: 11, MinLng: 106, MaxLng: 107,
		RadiusStepsKm: []float64{2, 5.5}, WaveSize: 3, MaxWaves: 4}))
	must(t, s.UpsertService(ctx, &smp.Service{Code: "plumbing", Name: "Plumbing"}))
	must(t, s.UpsertPartner(ctx, &smp.Partner{ID: "P1", Name: "Partner 1"}))
	for _, id := range []string{"T1", "T2"} {
		must(t, s.UpsertTechnician(ctx, &smp.Technician{ID: id, PartnerID: "P1", Name: "Thợ " + id, City: "HCMC", Skills: []string{"plumbing", "electrical"}}))
	}
	must(t, s.UpsertCustomer(ctx, &smp.Customer{ID: "C1", Name: "Khách"}))
}

// order returns a 01_created order created at at.
func order(id string, at time.Time) *smp.Order {
	return &smp.Order{ID: id, CustomerID: "C1", City: "HCMC", Service: "plumbing", Lat: 10.5, Lng: 106.5, Address: "12 Lê Lợi",
		PriceVND: 350_000, Stage: smp.StageCreated, PaymentStatus: smp.PaymentPending, CreatedAt: at, StageChangedAt: at}
}

func insertOrders(t testing.TB, s Store, os ...*smp.Order) {
	t.Helper()
	inTx(t, s, func(tx smp.Tx) error {
		for _, o := range os {
			if err := tx.InsertOrder(ctx, o); err != nil {
				return err
			}
		}
		return nil
	})
}

func event(id, aggregate string, at time.Time) smp.Event {
	return smp.Event{ID: id, Type: smp.EventOrderCreated, SchemaVersion: smp.EventSchemaVersion, AggregateID: aggregate, OccurredAt: at,
		Data: []byte(`{"order_id":"` + aggregate + `"}`)}
}

func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, id(x))
	}
	return out
}

func orderIDs(os []*smp.Order) []string { return ids(os, func(o *smp.Order) string { return o.ID }) }

func sameStrings(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

var errBoom = errors.New("boom")
