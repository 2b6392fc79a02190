package fraud_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/bus"
	"smp/fraud"
	"smp/inmem"
	"smp/internal/wait"
	"smp/sqlbus"
	"smp/wallet"
)

// TestDecisionsCommitWithOffset (issue 22, item 3): on the embedded log in
// the store's database, the detector's decisions commit with their
// records in the transaction of the batch's offset (bus.EffectTx): 15
// top-up requests in one batch cost one commit besides their publish's,
// not one each; each decision is stored and observed once, after it.
func TestDecisionsCommitWithOffset(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	shared, err := store.Shared()
	if err != nil {
		t.Fatal(err)
	}
	eb, err := sqlbus.Open(sqlbus.Config{Shared: &shared, Partitions: 1, LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eb.Close() })
	det, err := fraud.New(store, fraud.Config{Windows: inmem.NewFraudWindows(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	var observed atomic.Int64
	var early atomic.Int64
	det.Observed = func(d *smp.FraudDecision) {
		ds, err := store.FindFraudDecisions(ctx, smp.FraudDecisionFilter{PartnerID: d.PartnerID})
		if err != nil || !slices.ContainsFunc(ds, func(s *smp.FraudDecision) bool { return s.ID == d.ID }) {
			early.Add(1)
		}
		observed.Add(1)
	}
	r, err := bus.NewRouter(eb, bus.Config{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := det.AddIntake(r); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Stop(ctx) })
	seq := 0
	publish := func(n int) {
		t.Helper()
		var msgs []smp.Message
		for range n {
			seq++
			p := []string{"P001", "P002", "P003"}[seq%3]
			data, _ := json.Marshal(map[string]any{"topup_id": fmt.Sprint("tu_", seq), "partner_id": p, "txn_ref": fmt.Sprint("W", seq),
				"amount_vnd": 100_000, "client_ip": "198.51.100.1"})
			v, _ := json.Marshal(smp.Event{ID: fmt.Sprint("topup-", seq), Type: wallet.EventTopupRequested, SchemaVersion: 1, AggregateID: p,
				OccurredAt: time.Now(), Data: data})
			msgs = append(msgs, smp.Message{Topic: smp.TopicPayments, Key: "one-partition", Value: v})
		}
		if err := eb.Publish(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	publish(1) // the member holds the partition and is idle after it
	wait.Until(t, 10*time.Second, "a first decision", func() bool { return observed.Load() == 1 })
	before := store.SQLCounts()
	publish(15) // at most 5 per partner: no rule fires, nothing is enforced
	wait.Until(t, 10*time.Second, "15 more decisions", func() bool { return observed.Load() == 16 })
	if got := store.SQLCounts().Sub(before).WriteCommits; got > 2 {
		t.Errorf("15 top-up requests and their decisions cost %d write commits, want at most 2 (the publish, the batch with its offset)", got)
	}
	if ds, err := store.FindFraudDecisions(ctx, smp.FraudDecisionFilter{}); err != nil || len(ds) != 16 {
		t.Errorf("%d decisions stored (%v), want 16", len(ds), err)
	}
	if n := early.Load(); n > 0 {
		t.Errorf("%d decisions observed before their commit", n)
	}
}
