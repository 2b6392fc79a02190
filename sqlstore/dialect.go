package sqlstore

import "smp/internal/sqldb"

// Dialect holds every difference between the SQL databases SMP runs on
// (defined once in internal/sqldb, shared with sqlbus).
type Dialect = sqldb.Dialect

// The dialects sqlstore runs on.
var (
	SQLite = sqldb.SQLite
	MySQL  = sqldb.MySQL
)

func placeholders(n int) string { return sqldb.Placeholders(n) }

// isUniqueViolation reports whether err is a unique/primary key violation.
func isUniqueViolation(err error) bool { return sqldb.IsUniqueViolation(err) }

// isRetryable reports a transaction the database aborted that is safe to
// run again (MySQL deadlock or lock wait timeout).
func isRetryable(err error) bool { return sqldb.IsRetryable(err) }
