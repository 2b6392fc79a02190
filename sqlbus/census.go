package sqlbus

import "smp/internal/sqldb"

// SQLCounters are the counters of every statement the log runs
// (SQLCounts reads them); smp-bench --sql-census turns on their census of
// statements by text.
func (l *Bus) SQLCounters() *sqldb.Counters { return l.counters }
