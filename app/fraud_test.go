package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
	"smp/wallet"
)

// TestFraudDetectorConsumes: top-up requests committed with their events
// reach the fraud-detector through the outbox and the bus; the sixth in
// ten minutes from one partner is flagged by the velocity rule, every
// evaluation is stored, and fraud_detection_signals_total counts the hit.
func TestFraudDetectorConsumes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := &App{Cfg: testConfig(t)}
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if err := a.Store.UpsertPartner(ctx, &smp.Partner{ID: "P001", Name: "A", Country: "VN"}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC()
	for i := range 6 {
		data, _ := json.Marshal(map[string]any{"topup_id": fmt.Sprint("tu_", i), "partner_id": "P001", "txn_ref": fmt.Sprint("W", i),
			"amount_vnd": 100_000, "client_ip": "198.51.100.1"})
		ev := smp.Event{ID: fmt.Sprint("topup-", i), Type: wallet.EventTopupRequested, SchemaVersion: 1, AggregateID: "P001",
			OccurredAt: t0.Add(time.Duration(i) * time.Second), Data: data}
		if err := a.Store.InTx(ctx, func(tx smp.Tx) error { return tx.AddEvent(ctx, ev) }); err != nil {
			t.Fatal(err)
		}
	}
	var ds []*smp.FraudDecision
	wait.Until(t, 20*time.Second, "six fraud decisions", func() bool {
		ds, _ = a.Store.FindFraudDecisions(ctx, smp.FraudDecisionFilter{})
		return len(ds) == 6
	})
	flagged, _ := a.Store.FindFraudDecisions(ctx, smp.FraudDecisionFilter{Flagged: true})
	if len(flagged) != 1 || flagged[0].TxnID != "W5" || !slices.Equal(flagged[0].Signals, []string{"velocity"}) || flagged[0].Outcome != smp.FraudSoftBlock {
		t.Fatalf("flagged %+v", flagged)
	}
	// The decision's soft_block commits with it, by the detector: a
	// reader that sees the decision sees the control (it read before the
	// enforcement's commit when that followed the decision's).
	c, err := a.Wallet.FindControl(ctx, "P001")
	if err != nil || c.State != smp.WalletSoftBlocked || c.Control == nil || c.Control.Actor != wallet.SystemFraudDetector.Name {
		t.Fatalf("P001's wallet control with the velocity decision: %+v, %v", c, err)
	}
	// The metrics follow the commit.
	wait.Until(t, 20*time.Second, `fraud_detection_signals_total{severity="medium",rule="velocity"} = 1`, func() bool {
		return counterValue(t, a, "fraud_detection_signals_total", map[string]string{"severity": "medium", "rule": "velocity"}) == 1
	})
}

func counterValue(t *testing.T, a *App, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := a.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}
