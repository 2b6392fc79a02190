package sqlstore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"smp"
	"smp/internal/sqldb"
	"smp/sqlstore"
)

// TestBorrowedTxEvents: InTx inside a borrower's transaction (sqlbus
// running a batch's deferred effects, sqldb.WithTx) commits with it, and
// the events it adds are announced (the relay's signal) only after that
// commit, through the borrower's hooks (smp.AfterCommit); a borrower that
// runs none gets an error instead, and its transaction rolls back.
func TestBorrowedTxEvents(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	ctx := context.Background()
	shared, err := db.Shared()
	if err != nil {
		t.Fatal(err)
	}
	addEvent := func(id string) func(smp.Tx) error {
		return func(tx smp.Tx) error {
			return tx.AddEvent(ctx, smp.Event{ID: id, Type: smp.EventOrderCreated, SchemaVersion: smp.EventSchemaVersion,
				AggregateID: "o1", OccurredAt: time.Now(), Data: []byte(`{}`)})
		}
	}
	signal := db.CommitSignal()
	// Without hooks: refused (the borrower rolls back on fn's error).
	err = shared.GC.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return db.InTx(sqldb.WithTx(ctx, shared.Write, tx), addEvent("no-hooks"))
	})
	if err == nil {
		t.Fatal("an event in a borrowed transaction without hooks: no error")
	}
	var run func() error
	err = shared.GC.Run(ctx, func(ctx context.Context, tx *sql.Tx) error {
		bctx, hooks := smp.WithCommitHooks(sqldb.WithTx(ctx, shared.Write, tx))
		run = hooks
		return db.InTx(bctx, addEvent("e1"))
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-signal:
		t.Fatal("the relay was signalled before the borrower ran its hooks")
	default:
	}
	run()
	select {
	case <-signal:
	case <-time.After(5 * time.Second):
		t.Fatal("the relay was never signalled")
	}
	recs, err := db.FetchOutbox(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Event.ID != "e1" {
		t.Fatalf("outbox after the borrower's commit: %+v, want e1 only", recs)
	}
}
