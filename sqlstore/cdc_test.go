package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"smp"
)

// TestChangeLog: on SQLite every change of an order lands in the change
// table in commit order, a rolled-back one does not, the snapshot holds
// the rows as the changes carry them, and retention removes old changes
// (ChangeLogBounds then reports them purged); MySQL has no change table
// (EUNAVAILABLE; its binlog) and pruning it is a no-op.
func TestChangeLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			db := mustOpen(t, b.cfg(t))
			if b.name == "MySQL" {
				if _, err := db.ReadChanges(ctx, 0, 10); smp.ErrorCode(err) != smp.EUNAVAILABLE {
					t.Fatalf("ReadChanges on MySQL: %v", err)
				}
				if n, err := db.Prune(ctx, smp.PruneCDCChanges, time.Now().Add(time.Hour), 10); n != 0 || err != nil {
					t.Fatalf("prune cdc_changes on MySQL: %d %v", n, err)
				}
				return
			}
			now := time.Now()
			o := newOrder("ORD-1", now)
			if err := db.InTx(ctx, func(tx smp.Tx) error { return tx.InsertOrder(ctx, o) }); err != nil {
				t.Fatal(err)
			}
			rollback := db.InTx(ctx, func(tx smp.Tx) error {
				if err := tx.InsertOrder(ctx, newOrder("ORD-2", now)); err != nil {
					return err
				}
				return smp.Errorf(smp.ECONFLICT, "rolled back")
			})
			if smp.ErrorCode(rollback) != smp.ECONFLICT {
				t.Fatal(rollback)
			}
			o.Stage = smp.StageDispatching
			if err := db.InTx(ctx, func(tx smp.Tx) error { return tx.UpdateOrder(ctx, o) }); err != nil {
				t.Fatal(err)
			}
			changes, err := db.ReadChanges(ctx, 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(changes) != 2 || changes[0].Op != "c" || changes[1].Op != "u" || changes[0].Seq != 1 || changes[1].Seq != 2 ||
				string(changes[0].Key) != `{"id":"ORD-1"}` || changes[0].Before != nil || changes[1].Table != "orders" {
				t.Fatalf("changes %+v", changes)
			}
			if got, _ := db.ReadChanges(ctx, 1, 10); len(got) != 1 || got[0].Seq != 2 {
				t.Fatalf("changes after 1: %+v", got)
			}
			var rows []string
			last, err := db.SnapshotTables(ctx, func(table string, key, row []byte) error {
				rows = append(rows, table+" "+string(row))
				return nil
			})
			if err != nil || last != 2 || len(rows) != 1 || rows[0] != "orders "+string(changes[1].After) {
				t.Fatalf("snapshot %v at %d (%v), want the update's after %s", rows, last, err, changes[1].After)
			}
			if purged, hi, err := db.ChangeLogBounds(ctx); purged != 0 || hi != 2 || err != nil {
				t.Fatalf("bounds %d %d %v", purged, hi, err)
			}
			n, err := db.Prune(ctx, smp.PruneCDCChanges, time.Now().Add(time.Hour), 1)
			if n != 1 || err != nil {
				t.Fatalf("prune: %d %v", n, err)
			}
			if purged, hi, _ := db.ChangeLogBounds(ctx); purged != 1 || hi != 2 {
				t.Fatalf("bounds after pruning one: %d %d", purged, hi)
			}
			db.Prune(ctx, smp.PruneCDCChanges, time.Now().Add(time.Hour), 10)
			if purged, hi, _ := db.ChangeLogBounds(ctx); purged != 2 || hi != 2 {
				t.Fatalf("bounds after pruning all: %d %d", purged, hi)
			}
		})
	}
}
