package fraud_test

import (
	"context"
	"encoding/json"
	"errors"
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
	"smp/sqlstore"
	"smp/wallet"
)

// TestDecisionsCommitWithOffset (issue 22, item 3): on the embedded log in
// the store's database, the detector's decisions commit with their
// records in the transaction of the batch's offset (bus.EffectTx): 15
// top-up requests in one batch cost one commit besides their publish's,
// not one each; each decision is stored and observed once, after it.
func TestDecisionsCommitWithOffset(t *testing.T) {
	t.Parallel()
	var observed, early atomic.Int64
	var rig *effectRig
	rig = newEffectRig(t, nil, func(d *smp.FraudDecision) {
		ds, err := rig.store.FindFraudDecisions(ctx, smp.FraudDecisionFilter{PartnerID: d.PartnerID})
		if err != nil || !slices.ContainsFunc(ds, func(s *smp.FraudDecision) bool { return s.ID == d.ID }) {
			early.Add(1)
		}
		observed.Add(1)
	})
	store := rig.store
	publish := func(n int) {
		t.Helper()
		var ps []string
		for i := range n {
			ps = append(ps, []string{"P001", "P002", "P003"}[(rig.seq+i+1)%3])
		}
		rig.publish(t, ps...)
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

// effectRig is a detector consuming payments.events from the embedded log
// in its store's database (one partition).
type effectRig struct {
	store *sqlstore.DB
	eb    *sqlbus.Bus
	seq   int
}

func newEffectRig(t *testing.T, enforcer fraud.Enforcer, observed func(*smp.FraudDecision)) *effectRig {
	t.Helper()
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
	det, err := fraud.New(store, fraud.Config{Windows: inmem.NewFraudWindows(), Enforcer: enforcer, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	det.Observed = observed
	r, err := bus.NewRouter(eb, bus.Config{Registerer: prometheus.NewRegistry(), RetryBackoff: 10 * time.Millisecond})
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
	return &effectRig{store: store, eb: eb}
}

// publish publishes a top-up request of 100,000 VND from 198.51.100.1
// for each partner, in one append.
func (r *effectRig) publish(t *testing.T, partners ...string) {
	t.Helper()
	var msgs []smp.Message
	for _, p := range partners {
		r.seq++
		data, _ := json.Marshal(map[string]any{"topup_id": fmt.Sprint("tu_", r.seq), "partner_id": p, "txn_ref": fmt.Sprint("W", r.seq),
			"amount_vnd": 100_000, "client_ip": "198.51.100.1"})
		v, _ := json.Marshal(smp.Event{ID: fmt.Sprint("topup-", r.seq), Type: wallet.EventTopupRequested, SchemaVersion: 1, AggregateID: p,
			OccurredAt: time.Now(), Data: data})
		msgs = append(msgs, smp.Message{Topic: smp.TopicPayments, Key: "one-partition", Value: v})
	}
	if err := r.eb.Publish(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
}

// failingEnforcer writes an audit entry in the decision's transaction at
// every call, then fails the first fail calls with err; refuse: it
// returns fraud.Refused(err) at once, writing nothing.
type failingEnforcer struct {
	fail   int
	err    error
	refuse bool
	calls  atomic.Int64
}

func (e *failingEnforcer) Enforce(ctx context.Context, tx smp.Tx, d *smp.FraudDecision) error {
	n := e.calls.Add(1)
	if e.refuse {
		return fraud.Refused(e.err)
	}
	if err := tx.AddAudit(ctx, smp.AuditEntry{At: time.Now().UTC(), Actor: "test-enforcer", Action: "test.enforce",
		Target: "partner:" + d.PartnerID, Reason: fmt.Sprint("call ", n)}); err != nil {
		return err
	}
	if n <= int64(e.fail) {
		return e.err
	}
	return nil
}

// TestEnforcementCommitsWithDecision: a flagged decision's enforcement is
// written in the decision's own transaction. One that fails after a write
// (a lost connection; an invalid value refused by the store) takes the
// decision with it, and the event is delivered again: the decision and
// its enforcement are then stored once, together (the failed attempt's
// writes are gone). Before, the enforcement ran after the decision's
// commit, and its failure was only logged: a decision stored and never
// enforced.
func TestEnforcementCommitsWithDecision(t *testing.T) {
	t.Parallel()
	for name, failure := range map[string]error{
		"lost connection":     errors.New("lost connection"),
		"invalid after write": smp.Errorf(smp.EINVALID, "add event: event_id is 90 characters long, at most 64"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			enf := &failingEnforcer{fail: 1, err: failure}
			var observed atomic.Int64
			rig := newEffectRig(t, enf, func(*smp.FraudDecision) { observed.Add(1) })
			rig.publish(t, "P001", "P001", "P001", "P001", "P001", "P001") // the sixth in ten minutes: velocity, soft_block
			wait.Until(t, 20*time.Second, "six decisions observed", func() bool { return observed.Load() == 6 })
			flagged, err := rig.store.FindFraudDecisions(ctx, smp.FraudDecisionFilter{Flagged: true})
			if err != nil || len(flagged) != 1 || flagged[0].Outcome != smp.FraudSoftBlock {
				t.Fatalf("flagged decisions %+v, %v; want the sixth, soft_block", flagged, err)
			}
			if n := enf.calls.Load(); n != 2 {
				t.Fatalf("the enforcer was called %d times, want 2 (a failure, then with the event delivered again)", n)
			}
			audit, err := rig.store.FindAudit(ctx, smp.AuditFilter{Action: "test.enforce"})
			if err != nil || len(audit) != 1 || audit[0].Reason != "call 2" {
				t.Fatalf("the enforcer's entries %+v, %v; want only the second call's", audit, err)
			}
			if ds, err := rig.store.FindFraudDecisions(ctx, smp.FraudDecisionFilter{}); err != nil || len(ds) != 6 {
				t.Fatalf("%d decisions stored (%v), want 6", len(ds), err)
			}
		})
	}
}

// TestEnforcementRefusedKeepsDecision: an enforcement refused before it
// writes (fraud.Refused: no such partner, a stronger control in force)
// leaves the decision stored, once, without it.
func TestEnforcementRefusedKeepsDecision(t *testing.T) {
	t.Parallel()
	enf := &failingEnforcer{refuse: true, err: smp.Errorf(smp.ENOTFOUND, "partner P002 not found")}
	var observed atomic.Int64
	rig := newEffectRig(t, enf, func(*smp.FraudDecision) { observed.Add(1) })
	rig.publish(t, "P002", "P002", "P002", "P002", "P002", "P002")
	wait.Until(t, 20*time.Second, "six decisions observed", func() bool { return observed.Load() == 6 })
	if n := enf.calls.Load(); n != 1 {
		t.Fatalf("the enforcer was called %d times, want 1", n)
	}
	if ds, err := rig.store.FindFraudDecisions(ctx, smp.FraudDecisionFilter{Flagged: true}); err != nil || len(ds) != 1 {
		t.Fatalf("flagged decisions %+v, %v; want the sixth", ds, err)
	}
}
