package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/dispatchtest"
	"smp/sqlstore"
	"smp/sqlstore/sqlstoretest"
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

// TestStore is the storage conformance suite, run on every backend.
func TestStore(t *testing.T) {
	t.Parallel()
	tests := map[string]func(*testing.T, func(*testing.T) sqlstore.Config){
		"MigrationsIdempotent":         testMigrationsIdempotent,
		"TxCommitsOrNothing":           testTxCommitsOrNothing,
		"ClaimTechnician":              testClaimTechnician,
		"FlagsAndProcessed":            testFlagsAndProcessed,
		"FindDispatchableRespectsHold": testFindDispatchableRespectsHold,
		"TraceAndAudit":                testTraceAndAudit,
		"EventLog":                     testEventLog,
		"StatusAndStuckOrders":         testStatusAndStuckOrders,
		"OfferStatesBatched":           testOfferStatesBatched,
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

func testTxCommitsOrNothing(t *testing.T, open func(*testing.T) sqlstore.Config) {
	db := mustOpen(t, open(t))
	seed(t, db)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	boom := errors.New("boom")
	err := db.InTx(ctx, func(tx smp.Tx) error {
		if err := tx.InsertOrder(ctx, newOrder("o1", now)); err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, smp.Event{ID: "e1", Type: smp.EventOrderCreated, AggregateID: "o1", OccurredAt: now}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, err := db.FindOrderByID(ctx, "o1"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("rolled-back order visible: %v", err)
	}
	if n, _, _ := db.OutboxBacklog(ctx); n != 0 {
		t.Fatalf("rolled-back event in the outbox")
	}

	must(t, db.InTx(ctx, func(tx smp.Tx) error {
		if err := tx.InsertOrder(ctx, newOrder("o1", now)); err != nil {
			return err
		}
		return tx.AddEvent(ctx, smp.Event{ID: "e1", Type: smp.EventOrderCreated, AggregateID: "o1", OccurredAt: now})
	}))
	got, err := db.FindOrderByID(ctx, "o1")
	must(t, err)
	if got.PriceVND != 100000 || !got.CreatedAt.Equal(now) || got.Stage != smp.StageCreated {
		t.Fatalf("order = %+v", got)
	}
	err = db.InTx(ctx, func(tx smp.Tx) error { return tx.InsertOrder(ctx, newOrder("o1", now)) })
	if smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("duplicate insert = %v", err)
	}
	recs, err := db.FetchOutbox(ctx, 10)
	must(t, err)
	if len(recs) != 1 || recs[0].Event.ID != "e1" {
		t.Fatalf("outbox = %+v", recs)
	}
	must(t, db.MarkOutboxPublished(ctx, []int64{recs[0].ID}, now))
	if recs, _ := db.FetchOutbox(ctx, 10); len(recs) != 0 {
		t.Fatal("published event fetched again")
	}
}

func testClaimTechnician(t *testing.T, open func(*testing.T) sqlstore.Config) {
	db := mustOpen(t, open(t))
	seed(t, db)
	ctx := context.Background()
	claim := func(order string) error {
		return db.InTx(ctx, func(tx smp.Tx) error { return tx.ClaimTechnician(ctx, "T1", order) })
	}
	must(t, claim("o1"))
	if err := claim("o2"); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("second claim = %v, want ECONFLICT", err)
	}
	if err := db.InTx(ctx, func(tx smp.Tx) error { return tx.ClaimTechnician(ctx, "T9", "o1") }); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("unknown technician = %v", err)
	}
	// Releasing someone else's order does nothing; releasing theirs frees them.
	must(t, db.InTx(ctx, func(tx smp.Tx) error { return tx.ReleaseTechnician(ctx, "T1", "o2") }))
	if tech, _ := db.FindTechnicianByID(ctx, "T1"); tech.ActiveOrderID != "o1" || len(tech.Skills) != 2 {
		t.Fatalf("technician = %+v", tech)
	}
	must(t, db.InTx(ctx, func(tx smp.Tx) error { return tx.ReleaseTechnician(ctx, "T1", "o1") }))
	must(t, claim("o2"))
}

func testFlagsAndProcessed(t *testing.T, open func(*testing.T) sqlstore.Config) {
	db := mustOpen(t, open(t))
	ctx := context.Background()
	now := time.Now()
	flags, err := db.FindFlags(ctx)
	must(t, err)
	if !flags[smp.FlagEnableAutoDispatch] || flags[smp.FlagIntegrationBypassCircuit] {
		t.Fatalf("defaults = %v", flags)
	}
	var before bool
	must(t, db.InTx(ctx, func(tx smp.Tx) (err error) {
		before, err = tx.SetFlag(ctx, smp.FlagEnableAutoDispatch, false, "alice", now)
		return err
	}))
	if !before {
		t.Fatal("previous value should be the default, true")
	}
	if flags, _ := db.FindFlags(ctx); flags[smp.FlagEnableAutoDispatch] {
		t.Fatal("flag not persisted")
	}
	err = db.InTx(ctx, func(tx smp.Tx) error { _, err := tx.SetFlag(ctx, "NOPE", true, "alice", now); return err })
	if smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("unknown flag = %v", err)
	}
	for i, want := range []bool{true, false} {
		var first bool
		must(t, db.InTx(ctx, func(tx smp.Tx) (err error) {
			first, err = tx.MarkProcessed(ctx, "dispatch-engine", "e1", now)
			return err
		}))
		if first != want {
			t.Fatalf("MarkProcessed #%d = %v", i+1, first)
		}
	}
}

func testFindDispatchableRespectsHold(t *testing.T, open func(*testing.T) sqlstore.Config) {
	db := mustOpen(t, open(t))
	seed(t, db)
	ctx := context.Background()
	now := time.Now().UTC()
	a, b, c := newOrder("a", now), newOrder("b", now), newOrder("c", now)
	a.Stage, b.Stage = smp.StageDispatching, smp.StageDispatching
	b.DispatchNotBefore = now.Add(time.Minute)
	must(t, db.InTx(ctx, func(tx smp.Tx) error {
		for _, o := range []*smp.Order{a, b, c} {
			if err := tx.InsertOrder(ctx, o); err != nil {
				return err
			}
		}
		return nil
	}))
	got, err := db.FindDispatchable(ctx, now, 10)
	must(t, err)
	if len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("dispatchable = %v", got)
	}
	if got, _ := db.FindDispatchable(ctx, now.Add(2*time.Minute), 10); len(got) != 2 {
		t.Fatalf("after the hold: %d", len(got))
	}
	stuck, err := db.CountInStageSince(ctx, smp.StageDispatching, now.Add(time.Second))
	must(t, err)
	if stuck != 2 {
		t.Fatalf("stuck = %d", stuck)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testTraceAndAudit(t *testing.T, open func(*testing.T) sqlstore.Config) {
	db := mustOpen(t, open(t))
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	must(t, db.AddDispatchWave(ctx, smp.DispatchWave{OrderID: "o1", Round: 1, Wave: 1, RadiusM: 2000, StartedAt: now, Candidates: 2}))
	must(t, db.AddOffers(ctx, []smp.OfferRecord{
		{InvitationID: "i1", OrderID: "o1", TechnicianID: "T1", Round: 1, Wave: 1, Rank: 1, DistanceM: 100, RankReason: "#1", State: smp.InvitationSent, SentAt: now, ExpiresAt: now.Add(time.Minute)},
		{InvitationID: "i2", OrderID: "o1", TechnicianID: "T2", Round: 1, Wave: 1, Rank: 2, DistanceM: 200, RankReason: "#2", State: smp.InvitationSent, SentAt: now, ExpiresAt: now.Add(time.Minute)},
	}))
	must(t, db.UpdateOffer(ctx, "i1", smp.InvitationDelivered, now.Add(time.Second)))
	must(t, db.UpdateOffer(ctx, "i1", smp.InvitationAccepted, now.Add(2*time.Second)))
	must(t, db.UpdateOffer(ctx, "i2", smp.InvitationDeclined, now.Add(3*time.Second)))
	tr, err := db.FindDispatchTrace(ctx, "o1")
	must(t, err)
	if len(tr.Waves) != 1 || len(tr.Offers) != 2 || tr.Offers[0].State != smp.InvitationAccepted || tr.Offers[0].DeliveredAt == nil ||
		!tr.Offers[0].DeliveredAt.Equal(now.Add(time.Second)) || tr.Offers[1].DeliveredAt != nil || tr.Offers[1].RespondedAt == nil {
		t.Fatalf("trace = %+v", tr)
	}
	if d, _ := db.DeclinedBy(ctx, "o1"); len(d) != 1 || d[0] != "T2" {
		t.Fatalf("declined by %v", d)
	}
	must(t, db.InTx(ctx, func(tx smp.Tx) error {
		return tx.AddAudit(ctx, smp.AuditEntry{At: now, Actor: "alice", Role: smp.RoleOps, Action: "order.03_assigned", Target: "order:o1", Before: "{}", After: "{}", Reason: "VIP"})
	}))
	a, err := db.FindAudit(ctx, smp.AuditFilter{Target: "order:o1"})
	must(t, err)
	if len(a) != 1 || a[0].Actor != "alice" || !a[0].At.Equal(now) || a[0].Role != smp.RoleOps {
		t.Fatalf("audit = %+v", a)
	}
}

// testEventLog: provider events are stored once per id, listed by status
// and type, due by next attempt, updated under a row lock, counted; overdue
// payments are counted on completed orders only.
func testEventLog(t *testing.T, open func(*testing.T) sqlstore.Config) {
	db := mustOpen(t, open(t))
	seed(t, db)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	ev := func(id, typ string, next time.Time) *smp.InboxEvent {
		return &smp.InboxEvent{EventID: id, Provider: "inside", EventType: typ, OrderID: "o1", AmountVND: 100000, OccurredAt: now,
			BodyHash: strings.Repeat("a", 64), Body: `{"event_id":"` + id + `"}`, Status: smp.InboxReceived, ReceivedAt: now, NextAttemptAt: next}
	}
	for _, e := range []*smp.InboxEvent{ev("e1", smp.InsidePaymentSucceeded, now), ev("e2", smp.InsidePaymentFailed, now.Add(time.Minute))} {
		if _, inserted, err := db.InsertInboxEvent(ctx, e); err != nil || !inserted {
			t.Fatalf("insert %s: %v %v", e.EventID, inserted, err)
		}
	}
	dup := ev("e1", smp.InsidePaymentSucceeded, now)
	dup.BodyHash = strings.Repeat("b", 64)
	existing, inserted, err := db.InsertInboxEvent(ctx, dup)
	if err != nil || inserted || existing.BodyHash != strings.Repeat("a", 64) {
		t.Fatalf("second insert of e1: %+v %v %v", existing, inserted, err)
	}
	due, err := db.DueInboxEvents(ctx, now, 10)
	must(t, err)
	if len(due) != 1 || due[0].EventID != "e1" || !due[0].OccurredAt.Equal(now) || due[0].AmountVND != 100000 {
		t.Fatalf("due = %+v", due)
	}
	must(t, db.InTx(ctx, func(tx smp.Tx) error {
		e, err := tx.InboxEventForUpdate(ctx, "e1")
		if err != nil {
			return err
		}
		e.Status, e.Attempts, e.LastError = smp.InboxDLQ, 5, "order not found: o1"
		return tx.UpdateInboxEvent(ctx, e)
	}))
	dlq, err := db.FindInboxEvents(ctx, smp.InboxFilter{Status: smp.InboxDLQ, EventType: smp.InsidePaymentSucceeded})
	must(t, err)
	if len(dlq) != 1 || dlq[0].Attempts != 5 || dlq[0].LastError != "order not found: o1" {
		t.Fatalf("dlq = %+v", dlq)
	}
	counts, err := db.CountInboxEvents(ctx)
	must(t, err)
	if counts[smp.InboxDLQ] != 1 || counts[smp.InboxReceived] != 1 {
		t.Fatalf("counts = %v", counts)
	}
	if _, err := db.FindInboxEvent(ctx, "nope"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("missing event: %v", err)
	}
	done, open2 := newOrder("done", now.Add(-time.Hour)), newOrder("open", now.Add(-time.Hour))
	done.Stage = smp.StageCompleted
	must(t, db.InTx(ctx, func(tx smp.Tx) error {
		if err := tx.InsertOrder(ctx, done); err != nil {
			return err
		}
		return tx.InsertOrder(ctx, open2)
	}))
	if n, err := db.CountPaymentOverdue(ctx, now.Add(-time.Minute)); err != nil || n != 1 {
		t.Fatalf("overdue = %d %v", n, err)
	}
}

func testStatusAndStuckOrders(t *testing.T, open func(*testing.T) sqlstore.Config) {
	db := mustOpen(t, open(t))
	seed(t, db)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)

	if got, err := db.FindComponentStatuses(ctx); err != nil || len(got) != 0 {
		t.Fatalf("fresh store: %v %v", got, err)
	}
	set := func(state smp.ComponentState, fail bool) (smp.ComponentStatus, error) {
		var before smp.ComponentStatus
		err := db.InTx(ctx, func(tx smp.Tx) error {
			var err error
			before, err = tx.SetComponentStatus(ctx, smp.ComponentStatus{Component: "dispatch", State: state, Message: "chậm", UpdatedBy: "ops1", UpdatedAt: now})
			if err == nil && fail {
				err = smp.Errorf(smp.EINVALID, "rolled back")
			}
			return err
		})
		return before, err
	}
	if before, err := set(smp.StateDegraded, false); err != nil || before.State != smp.StateOperational {
		t.Fatalf("first set: before %+v, %v", before, err)
	}
	if _, err := set(smp.StateOutage, true); err == nil {
		t.Fatal("the failing transaction committed")
	}
	if before, err := set(smp.StateOperational, false); err != nil || before.State != smp.StateDegraded || before.UpdatedBy != "ops1" {
		t.Fatalf("second set: before %+v, %v (the rolled back outage must not show)", before, err)
	}
	got, err := db.FindComponentStatuses(ctx)
	if err != nil || len(got) != 1 || got[0].State != smp.StateOperational || got[0].Message != "chậm" || !got[0].UpdatedAt.Equal(now) {
		t.Fatalf("statuses: %+v %v", got, err)
	}

	// ChangedBefore finds orders stuck in their stage.
	for i, age := range []time.Duration{10 * time.Minute, time.Second} {
		o := newOrder(fmt.Sprintf("s%d", i), now.Add(-age))
		if err := db.InTx(ctx, func(tx smp.Tx) error { return tx.InsertOrder(ctx, o) }); err != nil {
			t.Fatal(err)
		}
	}
	stuck, err := db.FindOrders(ctx, smp.OrderFilter{Stage: smp.StageCreated, ChangedBefore: now.Add(-time.Minute)})
	if err != nil || len(stuck) != 1 || stuck[0].ID != "s0" {
		t.Fatalf("stuck orders: %v %v", stuck, err)
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
