package storetest

import (
	"reflect"
	"testing"
	"time"

	"smp"
)

var fraudTests = []Test{
	{"Fraud/InsertAndFind", testFraudInsertFind},
	{"Fraud/ErrConflict", testFraudConflict},
	{"Fraud/ErrInvalid", testFraudInvalid},
	{"Fraud/Rollback", testFraudRollback},
}

func decision(id, partner string, at time.Time, signals ...string) *smp.FraudDecision {
	d := &smp.FraudDecision{ID: id, EventID: "ev-" + id, EventType: "payment.wallet_topup_requested", PartnerID: partner, TxnID: "W" + id,
		AmountVND: 60_000_000, Score: 0, Outcome: smp.FraudAllow, Signals: []string{},
		Rules: []smp.FraudRuleResult{{Rule: "velocity", Result: smp.RuleMiss, Severity: smp.SeverityMedium, Outcome: smp.FraudReview,
			Score: 30, When: "PartnerTopups(duration(\"10m\")) > 5", Values: map[string]any{"PartnerTopups(10m0s)": float64(1)}}},
		Evidence:     smp.FraudEvidence{TxnIDs: []string{"W" + id}, IPs: []string{"203.0.113.7"}, UserAgent: "Mozilla/5.0", DeviceID: "dev-1"},
		RulesVersion: "abc", OccurredAt: at, CreatedAt: at}
	if len(signals) > 0 {
		d.Signals, d.Score, d.Outcome, d.Severity = signals, 60, smp.FraudFreeze, smp.SeverityHigh
		d.Rules[0].Result = smp.RuleHit
	}
	return d
}

func testFraudInsertFind(t *testing.T, s Store) {
	seed(t, s)
	a := decision("d1", "P1", T0)
	b := decision("d2", "P1", T0.Add(time.Minute), "ip_many_partners", "velocity")
	c := decision("d3", "P2", T0.Add(2*time.Minute), "velocity")
	inTx(t, s, func(tx smp.Tx) error {
		for _, d := range []*smp.FraudDecision{a, b, c} {
			if err := tx.InsertFraudDecision(ctx, d); err != nil {
				return err
			}
		}
		return nil
	})
	all, err := s.FindFraudDecisions(ctx, smp.FraudDecisionFilter{})
	must(t, err)
	if len(all) != 3 || all[0].ID != "d3" || all[2].ID != "d1" {
		t.Fatalf("all decisions, newest first: %+v", all)
	}
	if !reflect.DeepEqual(all[1], b) {
		t.Fatalf("read back\n%+v\nwant\n%+v", all[1], b)
	}
	flagged, err := s.FindFraudDecisions(ctx, smp.FraudDecisionFilter{PartnerID: "P1", Flagged: true})
	must(t, err)
	if len(flagged) != 1 || flagged[0].ID != "d2" {
		t.Fatalf("flagged of P1: %+v", flagged)
	}
	win, err := s.FindFraudDecisions(ctx, smp.FraudDecisionFilter{From: T0.Add(time.Minute), To: T0.Add(2 * time.Minute)})
	must(t, err)
	if len(win) != 1 || win[0].ID != "d2" {
		t.Fatalf("[T0+1m, T0+2m): %+v", win)
	}
}

func testFraudConflict(t *testing.T, s Store) {
	inTx(t, s, func(tx smp.Tx) error { return tx.InsertFraudDecision(ctx, decision("d1", "P1", T0)) })
	err := s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertFraudDecision(ctx, decision("d1", "P1", T0)) })
	wantCode(t, "same id again", err, smp.ECONFLICT)
}

func testFraudInvalid(t *testing.T, s Store) {
	for name, mut := range map[string]func(*smp.FraudDecision){
		"no id":        func(d *smp.FraudDecision) { d.ID = "" },
		"no partner":   func(d *smp.FraudDecision) { d.PartnerID = "" },
		"outcome":      func(d *smp.FraudDecision) { d.Outcome = "shrug" },
		"severity":     func(d *smp.FraudDecision) { d.Severity = "dire" },
		"txn too long": func(d *smp.FraudDecision) { d.TxnID = string(make([]byte, 101)) },
	} {
		d := decision("d1", "P1", T0)
		mut(d)
		err := s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertFraudDecision(ctx, d) })
		wantCode(t, name, err, smp.EINVALID)
	}
	got, err := s.FindFraudDecisions(ctx, smp.FraudDecisionFilter{})
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("refused decisions were stored: %+v", got)
	}
}

func testFraudRollback(t *testing.T, s Store) {
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if err := tx.InsertFraudDecision(ctx, decision("d1", "P1", T0)); err != nil {
			return err
		}
		return smp.Errorf(smp.EINVALID, "later step failed")
	})
	wantCode(t, "failed tx", err, smp.EINVALID)
	got, err := s.FindFraudDecisions(ctx, smp.FraudDecisionFilter{})
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("rolled back decision kept: %+v", got)
	}
}
