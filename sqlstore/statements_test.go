package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"smp"
	"smp/sqlstore"
)

// statements runs fn and returns the statements the store ran meanwhile
// (the census's texts, so a failure says which).
func statements(t *testing.T, db *sqlstore.DB, fn func()) (uint64, map[string]uint64) {
	t.Helper()
	db.SQLCounters().EnableCensus(0)
	before, texts := db.SQLCounts(), db.SQLCounters().Census()
	fn()
	diff := map[string]uint64{}
	for k, n := range db.SQLCounters().Census() {
		if d := n - texts[k]; d > 0 {
			diff[k] = d
		}
	}
	return db.SQLCounts().Sub(before).TotalStatements(), diff
}

// TestStatementsPerOperation counts the statements of the operations on
// an order's way (issue 22): each figure is what the operation needs,
// so waste that comes back fails here.
func TestStatementsPerOperation(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := mustOpen(t, b.cfg(t))
			ctx := context.Background()
			want := func(name string, n uint64, fn func()) {
				t.Helper()
				if got, texts := statements(t, db, fn); got != n {
					t.Errorf("%s: %d statements, want %d: %v", name, got, n, texts)
				}
			}

			// A customer's or technician's token is read once, then
			// answered from memory; a token stored again is read again.
			// Admin tokens (their role may change) are always read.
			must(t, db.PutToken(ctx, hashC, "customer", "C1", ""))
			must(t, db.PutToken(ctx, hashAdm, "admin", "alice", smp.RoleOps))
			want("three lookups of a customer token", 1, func() {
				for range 3 {
					if kind, owner, _, err := db.FindTokenOwner(ctx, hashC); err != nil || kind != "customer" || owner != "C1" {
						t.Fatalf("token: %s %s %v", kind, owner, err)
					}
				}
			})
			must(t, db.PutToken(ctx, hashC, "technician", "T9", ""))
			want("a lookup after PutToken", 1, func() {
				if kind, owner, _, err := db.FindTokenOwner(ctx, hashC); err != nil || kind != "technician" || owner != "T9" {
					t.Fatalf("token after PutToken: %s %s %v", kind, owner, err)
				}
			})
			want("two lookups of an admin token", 2, func() {
				for range 2 {
					db.FindTokenOwner(ctx, hashAdm)
				}
			})

			// An order created straight into dispatch: its two
			// transitions are one INSERT.
			want("an order and its two transitions", 2, func() {
				must(t, db.InTx(ctx, func(tx smp.Tx) error {
					now := time.Now()
					if err := tx.InsertOrder(ctx, newOrder("o1", now)); err != nil {
						return err
					}
					return tx.AddTransition(ctx, smp.Transition{OrderID: "o1", To: smp.StageCreated, At: now, Actor: "customer:C1", Reason: "order placed"},
						smp.Transition{OrderID: "o1", From: smp.StageCreated, To: smp.StageDispatching, At: now, Actor: "system:order-svc", Reason: "submitted to dispatch"})
				}))
			})
			hist, err := db.FindTransitions(ctx, "o1")
			must(t, err)
			if len(hist) != 2 || hist[0].To != smp.StageCreated || hist[1].To != smp.StageDispatching {
				t.Fatalf("history %+v", hist)
			}

			// A search's candidates: status and settings in one read.
			seed(t, db)
			must(t, db.UpsertTechnician(ctx, &smp.Technician{ID: "T2", PartnerID: "P1", Name: "T2", City: "HCMC", Skills: []string{"plumbing"}, Status: smp.StatusSuspended}))
			must(t, db.InTx(ctx, func(tx smp.Tx) error {
				_, err := tx.PutTechnicianSettings(ctx, &smp.TechnicianSettings{TechnicianID: "T2", WorkStart: "08:00", WorkEnd: "17:00", MaxRadiusKm: 3, WeeklyDaysOff: []string{"sun"}})
				return err
			}))
			want("a search's checks", 1, func() {
				status, settings, err := db.FindTechnicianChecks(ctx, "T1", "T2", "T-unknown")
				must(t, err)
				if len(status) != 2 || !status["T1"].Active() || status["T2"] != smp.StatusSuspended {
					t.Errorf("status %v", status)
				}
				if s := settings["T2"]; len(settings) != 1 || s == nil || s.TechnicianID != "T2" || s.WorkStart != "08:00" || s.MaxRadiusKm != 3 || len(s.WeeklyDaysOff) != 1 {
					t.Errorf("settings %+v", settings)
				}
			})

			// The trace (waves and offers) is one read.
			now := time.Now().UTC().Truncate(time.Microsecond)
			must(t, db.AddDispatchWave(ctx, smp.DispatchWave{OrderID: "o1", Round: 1, Wave: 1, RadiusM: 2000, StartedAt: now, Candidates: 3}))
			var offers []smp.OfferRecord
			for i := 1; i <= 3; i++ {
				offers = append(offers, smp.OfferRecord{InvitationID: fmt.Sprint("i", i), OrderID: "o1", TechnicianID: fmt.Sprint("T", i), Round: 1, Wave: 1, Rank: i,
					DistanceM: float64(100 * i), State: smp.InvitationSent, SentAt: now, ExpiresAt: now.Add(time.Minute)})
			}
			must(t, db.AddOffers(ctx, offers))
			_, err = db.FindDispatchTrace(ctx, "o1") // writes the pending wave and offers
			must(t, err)
			var tr *smp.DispatchTrace
			want("a trace read", 1, func() {
				tr, err = db.FindDispatchTrace(ctx, "o1")
				must(t, err)
			})
			if len(tr.Waves) != 1 || len(tr.Offers) != 3 || tr.Offers[2].InvitationID != "i3" || tr.Waves[0].Candidates != 3 {
				t.Fatalf("trace %+v", tr)
			}

			// A wave's offers delivered together are one UPDATE, each
			// with its own time (the trace's read is the other statement).
			// The batch is flushed 20 ms after its first write: a test
			// descheduled that long splits it, so it gets three tries.
			var got uint64
			var texts map[string]uint64
			for try := 0; try < 3 && got != 2; try++ {
				order := fmt.Sprint("d", try)
				var offers []smp.OfferRecord
				for i := 1; i <= 3; i++ {
					offers = append(offers, smp.OfferRecord{InvitationID: fmt.Sprint(order, "i", i), OrderID: order, TechnicianID: fmt.Sprint("T", i), Round: 1, Wave: 1, Rank: i,
						DistanceM: float64(100 * i), State: smp.InvitationSent, SentAt: now, ExpiresAt: now.Add(time.Minute)})
				}
				must(t, db.AddOffers(ctx, offers))
				_, err = db.FindDispatchTrace(ctx, order)
				must(t, err)
				got, texts = statements(t, db, func() {
					for i := 1; i <= 3; i++ {
						must(t, db.UpdateOffer(ctx, fmt.Sprint(order, "i", i), smp.InvitationDelivered, now.Add(time.Duration(i)*time.Second)))
					}
					tr, err = db.FindDispatchTrace(ctx, order)
					must(t, err)
				})
				for i, o := range tr.Offers {
					if o.State != smp.InvitationDelivered || o.DeliveredAt == nil || !o.DeliveredAt.Equal(now.Add(time.Duration(i+1)*time.Second)) {
						t.Errorf("offer %d after delivery: %+v", i+1, o)
					}
				}
			}
			if got != 2 {
				t.Errorf("three deliveries written, then the trace read: %d statements, want 2: %v", got, texts)
			}

			// An accept's trace state waits for the next batch: no
			// write transaction (and fsync) of its own.
			// (The batch's flush 20 ms later may fall in a descheduled
			// test's window: three tries.)
			got = 1
			for try := 0; try < 3 && got != 0; try++ {
				got, texts = statements(t, db, func() { // o1's offers i1, i2, i3
					must(t, db.UpdateOffer(ctx, fmt.Sprint("i", try+1), smp.InvitationAccepted, now.Add(time.Minute)))
				})
				tr, err = db.FindDispatchTrace(ctx, "o1")
				must(t, err)
				if o := tr.Offers[try]; o.State != smp.InvitationAccepted || o.RespondedAt == nil {
					t.Errorf("the accepted state was not written: %+v", o)
				}
			}
			if got != 0 {
				t.Errorf("an accepted offer's state: %d statements at once, want 0 (written with the next batch): %v", got, texts)
			}
		})
	}
}

const (
	hashC   = "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	hashAdm = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
)
