package sqlstore

import "smp/internal/sqldb"

// SQLCounters are the counters of every statement the store runs
// (SQLCounts reads them); smp-bench --sql-census turns on their census of
// statements by text.
func (db *DB) SQLCounters() *sqldb.Counters { return db.counters }
