package sqldb

import (
	"context"
	"database/sql"
)

// Shared is one SQLite database's handles as its owner (sqlstore) lends
// them to another package that keeps its tables in the same file
// (sqlbus, on the embedded default): the one-connection write pool, the
// read pool, the group committer that owns the writer (nil when group
// commit is off) and the counters both pools count into. The borrower
// closes none of them: the owner does, after the borrower is closed.
// There is still exactly one SQLite writer.
type Shared struct {
	Write, Read *sql.DB
	GC          *GroupCommitter
	Counters    *Counters
}

type txKey struct{}

type ctxTx struct {
	tx    *sql.Tx
	owner *sql.DB
}

// WithTx returns ctx carrying tx, a transaction on owner's writer that a
// borrower of a Shared database runs (a GroupCommitter caller's): the
// owner's own transactions started with this ctx (TxFrom) run inside it
// instead of beginning one, which would wait for the writer it holds.
func WithTx(ctx context.Context, owner *sql.DB, tx *sql.Tx) context.Context {
	return context.WithValue(ctx, txKey{}, ctxTx{tx: tx, owner: owner})
}

// TxFrom returns the transaction ctx carries (WithTx) when it is on
// owner's writer.
func TxFrom(ctx context.Context, owner *sql.DB) (*sql.Tx, bool) {
	t, ok := ctx.Value(txKey{}).(ctxTx)
	if !ok || t.owner != owner {
		return nil, false
	}
	return t.tx, true
}
