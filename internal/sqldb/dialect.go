package sqldb

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect holds every difference between the SQL databases SMP runs on.
type Dialect struct {
	Name string
	// ForUpdate is appended to a SELECT that locks its rows for the tx.
	ForUpdate string
	// InsertIgnore starts an INSERT that skips rows violating a unique key.
	InsertIgnore string
	// Upsert renders "insert or update" of cols keyed by key.
	Upsert func(table string, key []string, cols []string) string
}

// SQLite is the embedded default (modernc.org/sqlite, pure Go).
var SQLite = Dialect{
	Name:         "sqlite",
	ForUpdate:    "",
	InsertIgnore: "INSERT OR IGNORE",
	Upsert: func(table string, key, cols []string) string {
		var sets []string
		for _, c := range cols {
			if !contains(key, c) {
				sets = append(sets, fmt.Sprintf("%s=excluded.%s", c, c))
			}
		}
		return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %s",
			table, strings.Join(cols, ","), Placeholders(len(cols)), strings.Join(key, ","), strings.Join(sets, ","))
	},
}

// MySQL is the production database (MySQL 8, MariaDB 10.11), with a
// primary for writes and an optional replica for reads.
var MySQL = Dialect{
	Name:         "mysql",
	ForUpdate:    " FOR UPDATE",
	InsertIgnore: "INSERT IGNORE",
	Upsert: func(table string, key, cols []string) string {
		var sets []string
		for _, c := range cols {
			if !contains(key, c) {
				sets = append(sets, fmt.Sprintf("%s=VALUES(%s)", c, c))
			}
		}
		return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON DUPLICATE KEY UPDATE %s",
			table, strings.Join(cols, ","), Placeholders(len(cols)), strings.Join(sets, ","))
	},
}

// Placeholders returns n "?" separated by commas.
func Placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// IsUniqueViolation reports whether err is a unique/primary key violation.
func IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == ErDupEntry
}

// IsConstraintViolation reports a write refused for a constraint: a
// unique or primary key, a foreign key, a CHECK or NOT NULL.
func IsConstraintViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
	}
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case ErDupEntry, 1048, 1216, 1217, 1451, 1452, 3819: // dup, NOT NULL, foreign keys, CHECK
		return true
	}
	return false
}

// MySQL error numbers SMP reacts to.
const (
	ErDupEntry        = 1062 // ER_DUP_ENTRY
	ErLockDeadlock    = 1213 // ER_LOCK_DEADLOCK
	ErLockWaitTimeout = 1205 // ER_LOCK_WAIT_TIMEOUT
)

// IsRetryable reports a transaction the database aborted that is safe to
// run again (MySQL deadlock or lock wait timeout).
func IsRetryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == ErLockDeadlock || me.Number == ErLockWaitTimeout)
}
