package storetest

import (
	"strings"
	"testing"
	"time"

	"smp"
)

var reconTests = []Test{
	{"ReconRuns/OK", testReconRuns},
	{"ReconRuns/ErrNotFound", testReconRunNotFound},
	{"ReconRuns/ErrConflict", testReconRunConflict},
	{"ReconRuns/ErrInvalid", testReconRunInvalid},
	{"ReconRuns/Rollback", testReconRunRollback},
}

func reconRun(id, day, status string, started time.Time) *smp.ReconRun {
	exp := int64(50_000)
	return &smp.ReconRun{ID: id, Day: day, Trigger: smp.ReconTriggerCron, Actor: "cron", Status: status, Verdict: smp.ReconMismatch,
		Partners: 2, Mismatches: 1, MaxDiffPct: "2.5000", MaxDiffVND: 12_500, StartedAt: started, FinishedAt: started.Add(time.Second),
		Rows: []smp.ReconRow{
			{PartnerID: "P002", SMPBalanceVND: 500_000, GatewayBalanceVND: 500_000, DiffPct: "0.0000", LastTxnID: "vnpay:R2", Verdict: smp.ReconOK},
			{PartnerID: "P001", SMPBalanceVND: 512_500, GatewayBalanceVND: 500_000, DiffVND: 12_500, DiffPct: "2.5000", LastTxnID: "vnpay:R1",
				Verdict: smp.ReconMismatch, Note: "1 transaction differs", Detail: smp.ReconDetail{
					Pairs: []smp.ReconPair{{TxnRef: "R1", Kind: smp.ReconAmountDiffers,
						SMP:     &smp.ReconEntry{ID: "vnpay:R1", Seq: 7, Type: "topup", AmountVND: 512_500, CreatedAt: started.Add(-time.Hour)},
						Gateway: &smp.ReconGatewayRecord{TxnRef: "R1", Currency: "VND", Amount: "500000", AmountVND: 500_000, PayDate: started.Add(-time.Hour)}}},
					Adjustments: []smp.ReconAdjustment{{ID: "adj-1", AmountVND: 50_000, Reason: "compensation", Actor: "fin", ExpectedDiffVND: &exp, Matched: true}},
				}},
		}}
}

// testReconRuns: a run is kept with its rows (by partner, detail
// included); the list is newest first, without rows, filtered by day and
// status.
func testReconRuns(t *testing.T, s Store) {
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	must(t, s.InTx(ctx, func(tx smp.Tx) error {
		return tx.InsertReconRun(ctx, reconRun("run-1", "2026-11-30", smp.ReconCompleted, t0))
	}))
	must(t, s.InTx(ctx, func(tx smp.Tx) error {
		return tx.InsertReconRun(ctx, reconRun("run-2", "2026-11-30", smp.ReconRunInconclusive, t0.Add(time.Hour)))
	}))
	must(t, s.InTx(ctx, func(tx smp.Tx) error {
		return tx.InsertReconRun(ctx, reconRun("run-3", "2026-12-01", smp.ReconCompleted, t0.Add(24*time.Hour)))
	}))
	r, err := s.FindReconRun(ctx, "run-1")
	must(t, err)
	if r.Day != "2026-11-30" || r.Status != smp.ReconCompleted || r.MaxDiffPct != "2.5000" || r.MaxDiffVND != 12_500 || !r.StartedAt.Equal(t0) ||
		!r.FinishedAt.Equal(t0.Add(time.Second)) || len(r.Rows) != 2 {
		t.Fatalf("run %+v", r)
	}
	w := r.Rows[0]
	if w.PartnerID != "P001" || w.DiffVND != 12_500 || w.DiffPct != "2.5000" || w.LastTxnID != "vnpay:R1" || len(w.Detail.Pairs) != 1 ||
		w.Detail.Pairs[0].SMP.AmountVND != 512_500 || w.Detail.Pairs[0].Gateway.AmountVND != 500_000 || len(w.Detail.Adjustments) != 1 ||
		*w.Detail.Adjustments[0].ExpectedDiffVND != 50_000 || !w.Detail.Pairs[0].SMP.CreatedAt.Equal(t0.Add(-time.Hour)) {
		t.Fatalf("row %+v", w)
	}
	all, err := s.FindReconRuns(ctx, smp.ReconRunFilter{})
	must(t, err)
	if len(all) != 3 || all[0].ID != "run-3" || all[2].ID != "run-1" || all[0].Rows != nil {
		t.Fatalf("runs %+v", all)
	}
	day, _ := s.FindReconRuns(ctx, smp.ReconRunFilter{Day: "2026-11-30"})
	done, _ := s.FindReconRuns(ctx, smp.ReconRunFilter{Day: "2026-11-30", Status: smp.ReconCompleted, Limit: 1})
	if len(day) != 2 || len(done) != 1 || done[0].ID != "run-1" {
		t.Fatalf("by day %v, completed %v", day, done)
	}
	if _, err := s.FindReconRuns(ctx, smp.ReconRunFilter{Limit: 1001}); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("limit 1001: %v", err)
	}
}

func testReconRunNotFound(t *testing.T, s Store) {
	if _, err := s.FindReconRun(ctx, "nope"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("unknown run: %v", err)
	}
}

func testReconRunConflict(t *testing.T, s Store) {
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	must(t, s.InTx(ctx, func(tx smp.Tx) error {
		return tx.InsertReconRun(ctx, reconRun("run-1", "2026-11-30", smp.ReconCompleted, t0))
	}))
	err := s.InTx(ctx, func(tx smp.Tx) error {
		return tx.InsertReconRun(ctx, reconRun("run-1", "2026-11-29", smp.ReconCompleted, t0))
	})
	if smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("same id again: %v", err)
	}
}

// testReconRunInvalid: a run without its day, or with a value longer
// than its column, is EINVALID and nothing is kept.
func testReconRunInvalid(t *testing.T, s Store) {
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	noDay := reconRun("run-a", "", smp.ReconCompleted, t0)
	longNote := reconRun("run-b", "2026-11-30", smp.ReconCompleted, t0)
	longNote.Rows[1].Note = strings.Repeat("n", 1001)
	twice := reconRun("run-c", "2026-11-30", smp.ReconCompleted, t0)
	twice.Rows[0].PartnerID = "P001"
	for _, r := range []*smp.ReconRun{noDay, longNote, twice} {
		if err := s.InTx(ctx, func(tx smp.Tx) error { return tx.InsertReconRun(ctx, r) }); smp.ErrorCode(err) != smp.EINVALID {
			t.Fatalf("run %s: %v, want EINVALID", r.ID, err)
		}
	}
	if all, _ := s.FindReconRuns(ctx, smp.ReconRunFilter{}); len(all) != 0 {
		t.Fatalf("refused runs kept: %v", all)
	}
}

func testReconRunRollback(t *testing.T, s Store) {
	t0 := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	err := s.InTx(ctx, func(tx smp.Tx) error {
		must(t, tx.InsertReconRun(ctx, reconRun("run-1", "2026-11-30", smp.ReconCompleted, t0)))
		return smp.Errorf(smp.EINTERNAL, "boom")
	})
	if smp.ErrorCode(err) != smp.EINTERNAL {
		t.Fatalf("InTx: %v", err)
	}
	if _, err := s.FindReconRun(ctx, "run-1"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("rolled-back run: %v", err)
	}
}
