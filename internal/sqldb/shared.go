package sqldb

import "database/sql"

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
