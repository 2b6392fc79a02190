package storetest

import (
	"fmt"
	"testing"
	"time"

	"smp"
)

var pruneTests = []Test{
	{"Prune/Outbox/PublishedOnly", testPruneOutbox},
	{"Prune/Processed/Bounded", testPruneBounded},
	{"Prune/ErrInvalid", testPruneInvalid},
}

// testPruneOutbox: only events published before the cut-off go; an
// unpublished one stays whatever its age.
func testPruneOutbox(t *testing.T, s Store) {
	inTx(t, s, func(tx smp.Tx) error {
		for i := range 3 {
			if err := tx.AddEvent(ctx, event(fmt.Sprint("e", i), "o1", T0)); err != nil {
				return err
			}
		}
		return nil
	})
	recs, err := s.FetchOutbox(ctx, 10)
	must(t, err)
	must(t, s.MarkOutboxPublished(ctx, []int64{recs[0].ID}, T0))
	must(t, s.MarkOutboxPublished(ctx, []int64{recs[1].ID}, T0.Add(time.Hour)))
	n, err := s.Prune(ctx, smp.PruneOutbox, T0.Add(time.Minute), 100)
	if err != nil || n != 1 {
		t.Fatalf("prune: %d %v, want 1 (the one published before the cut-off)", n, err)
	}
	if n, err := s.Prune(ctx, smp.PruneOutbox, T0.Add(48*time.Hour), 100); err != nil || n != 1 {
		t.Fatalf("prune later: %d %v, want 1 (the unpublished one stays)", n, err)
	}
	if n, _, err := s.OutboxBacklog(ctx); err != nil || n != 1 {
		t.Fatalf("backlog %d %v, want the unpublished event", n, err)
	}
}

// testPruneBounded: one call deletes at most limit rows.
func testPruneBounded(t *testing.T, s Store) {
	for i := range 5 {
		markProcessed(t, s, "order-svc", fmt.Sprint("e", i))
	}
	for _, want := range []int64{2, 2, 1, 0} {
		if n, err := s.Prune(ctx, smp.PruneProcessed, T0.Add(time.Second), 2); err != nil || n != want {
			t.Fatalf("prune: %d %v, want %d", n, err, want)
		}
	}
}

// testPruneInvalid: an unknown table (the bus log is not the store's) or
// a limit that is not positive is EINVALID.
func testPruneInvalid(t *testing.T, s Store) {
	_, err := s.Prune(ctx, "orders", T0, 10)
	wantCode(t, "orders", err, smp.EINVALID)
	_, err = s.Prune(ctx, smp.PruneBus, T0, 10)
	wantCode(t, "bus", err, smp.EINVALID)
	_, err = s.Prune(ctx, smp.PruneOutbox, T0, 0)
	wantCode(t, "limit 0", err, smp.EINVALID)
}
