package sqlstore

import (
	"strings"

	"smp/internal/sqldb"
)

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

// recordIdempotentSQL inserts an idempotency_keys row (values in column
// order), or overwrites the row of the same key if it was created before
// expiredBefore; it affects no row when the key is taken and live.
func recordIdempotentSQL(d Dialect, values []any, expiredBefore int64) (string, []any) {
	const cols = "customer_id, idem_key, request_hash, order_id, response, created_at"
	if d.Name == MySQL.Name {
		// Assignments run left to right: created_at is compared before it
		// is overwritten.
		var sets []string
		args := append([]any{}, values...)
		for _, c := range []string{"request_hash", "order_id", "response", "created_at"} {
			sets = append(sets, c+" = IF(created_at < ?, VALUES("+c+"), "+c+")")
			args = append(args, expiredBefore)
		}
		return "INSERT INTO idempotency_keys (" + cols + ") VALUES (" + placeholders(6) + ") ON DUPLICATE KEY UPDATE " + strings.Join(sets, ", "), args
	}
	return "INSERT INTO idempotency_keys (" + cols + ") VALUES (" + placeholders(6) + `) ON CONFLICT (customer_id, idem_key) DO UPDATE SET
		request_hash = excluded.request_hash, order_id = excluded.order_id, response = excluded.response, created_at = excluded.created_at
		WHERE idempotency_keys.created_at < ?`, append(append([]any{}, values...), expiredBefore)
}

// deleteBatchSQL deletes at most ? rows of table matching where (whose
// parameters come first). MySQL has DELETE … LIMIT; SQLite (built
// without SQLITE_ENABLE_UPDATE_DELETE_LIMIT) selects the rowids first.
func deleteBatchSQL(d Dialect, table, where string) string {
	if d.Name == MySQL.Name {
		return "DELETE FROM " + table + " WHERE " + where + " LIMIT ?"
	}
	return "DELETE FROM " + table + " WHERE rowid IN (SELECT rowid FROM " + table + " WHERE " + where + " LIMIT ?)"
}
