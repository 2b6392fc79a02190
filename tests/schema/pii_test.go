// Package schema holds the tests that read SMP's real, migrated database
// schemas (sqlstore's and sqlbus's, on SQLite and MySQL) and hold them to
// the policies declared in the root: every column classified pii or
// not_pii (smp.ColumnClass, pii.go).
package schema

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"smp"
	"smp/sqlbus"
	"smp/sqlstore"
	"smp/sqlstore/sqlstoretest"
)

// column is one column of one table, as the database reports it.
type column struct{ table, name string }

func (c column) String() string { return c.table + "." + c.name }

// sqliteColumns migrates sqlstore's and sqlbus's SQLite files (as serve
// does: smp.db and events.db) and lists their columns.
func sqliteColumns(t *testing.T) []column {
	t.Helper()
	dir := t.TempDir()
	store, bus := filepath.Join(dir, "smp.db"), filepath.Join(dir, "events.db")
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: store})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := sqlbus.Open(sqlbus.Config{Path: bus})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	var cols []column
	for _, path := range []string{store, bus} {
		conn, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		cols = append(cols, query(t, conn, `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`)...)
		conn.Close()
	}
	return enough(t, cols)
}

// mysqlColumns migrates both schemas into one fresh MySQL database (as
// serve does with --mysql-dsn) and lists its columns.
func mysqlColumns(t *testing.T) []column {
	t.Helper()
	dsn := sqlstoretest.MySQLDSN(t)
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{MySQLDSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := sqlbus.Open(sqlbus.Config{MySQLDSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	conn, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return enough(t, query(t, conn, `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE()`))
}

// enough fails a listing too short to be the migrated schemas.
func enough(t *testing.T, cols []column) []column {
	t.Helper()
	if len(cols) < 100 {
		t.Fatalf("found %d columns: the schemas did not migrate", len(cols))
	}
	return cols
}

func query(t *testing.T, conn *sql.DB, q string) []column {
	t.Helper()
	rows, err := conn.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.table, &c.name); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return cols
}

// unclassified names the columns smp.ColumnClass does not classify.
func unclassified(cols []column, class func(table, column string) (smp.DataClass, bool)) []string {
	var missing []string
	for _, c := range cols {
		if _, ok := class(c.table, c.name); !ok {
			missing = append(missing, c.String())
		}
	}
	slices.Sort(missing)
	return slices.Compact(missing)
}

func checkClassified(t *testing.T, dialect string, cols []column) {
	t.Helper()
	if missing := unclassified(cols, smp.ColumnClass); len(missing) > 0 {
		t.Errorf("%s: %d columns have no PII classification; add each to columnClasses in pii.go as smp.PII or smp.NotPII "+
			"(PII when it can hold anything about a person: names, phones, addresses, positions, free text, payloads):\n%s",
			dialect, len(missing), strings.Join(missing, "\n"))
	}
}

// TestEveryColumnClassified: a table or column a migration adds fails
// here, on either dialect, until pii.go classifies it.
func TestEveryColumnClassified(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		checkClassified(t, "SQLite", sqliteColumns(t))
	})
	t.Run("MySQL", func(t *testing.T) {
		t.Parallel()
		checkClassified(t, "MySQL", mysqlColumns(t))
	})
}

// TestNoStaleClassification: a classified column that no longer exists
// (renamed, dropped) is an error too, so the list stays the schema's.
// Checked against SQLite, which every run has; both dialects carry the
// same tables and columns (TestDialectsAgree).
func TestNoStaleClassification(t *testing.T) {
	t.Parallel()
	have := map[string]bool{}
	for _, c := range sqliteColumns(t) {
		have[c.String()] = true
	}
	var stale []string
	for table, cols := range smp.ClassifiedColumns() {
		if mysqlOnly[table] {
			continue
		}
		for name := range cols {
			if c := (column{table, name}); !have[c.String()] {
				stale = append(stale, c.String())
			}
		}
	}
	slices.Sort(stale)
	if len(stale) > 0 {
		t.Errorf("classified in pii.go but in no table: remove them:\n%s", strings.Join(stale, "\n"))
	}
}

// mysqlOnly are the tables only one dialect has: the MySQL replica's lag
// heartbeat (sqlstore/replica.go).
var mysqlOnly = map[string]bool{"replication_heartbeat": true}

// sqliteOnly are the tables only the embedded default has: change data
// capture's change table, filled by triggers (MySQL has its binlog).
var sqliteOnly = map[string]bool{"cdc_changes": true}

// TestDialectsAgree: SQLite and MySQL have the same tables and columns
// (but mysqlOnly and sqliteOnly), so one classification covers both.
func TestDialectsAgree(t *testing.T) {
	t.Parallel()
	set := func(cols []column) map[string]bool {
		m := map[string]bool{}
		for _, c := range cols {
			m[c.String()] = true
		}
		return m
	}
	lite, my := set(sqliteColumns(t)), set(mysqlColumns(t))
	var diff []string
	for c := range lite {
		if !my[c] && !sqliteOnly[strings.Split(c, ".")[0]] {
			diff = append(diff, "only in SQLite: "+c)
		}
	}
	for c := range my {
		if !lite[c] && !mysqlOnly[strings.Split(c, ".")[0]] {
			diff = append(diff, "only in MySQL: "+c)
		}
	}
	slices.Sort(diff)
	if len(diff) > 0 {
		t.Errorf("the dialects' schemas differ:\n%s", strings.Join(diff, "\n"))
	}
}

// TestUnclassifiedFound: the check itself names a column missing from the
// classification (a new column in a new table, and one in a known table).
func TestUnclassifiedFound(t *testing.T) {
	t.Parallel()
	cols := []column{{"orders", "id"}, {"orders", "new_note"}, {"new_table", "id"}}
	got := unclassified(cols, smp.ColumnClass)
	want := []string{"new_table.id", "orders.new_note"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("unclassified = %v, want %v", got, want)
	}
}
