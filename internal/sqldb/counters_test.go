package sqldb

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp/sqlstore/sqlstoretest"
)

func TestOpOf(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]Op{
		"SELECT 1":                             OpSelect,
		"  select * from t":                    OpSelect,
		"WITH x AS (SELECT 1) SELECT * FROM x": OpSelect,
		"(SELECT 1) UNION (SELECT 2)":          OpSelect,
		"-- why\nINSERT INTO t VALUES (1)":     OpInsert,
		"/* c */ insert or ignore into t":      OpInsert,
		"REPLACE INTO t VALUES (1)":            OpInsert,
		"UPDATE t SET v = 1":                   OpUpdate,
		"\tDELETE FROM t":                      OpDelete,
		"CREATE TABLE t (k INT)":               OpOther,
		"PRAGMA wal_checkpoint":                OpOther,
		"SAVEPOINT s1":                         OpOther,
		"":                                     OpOther,
		"/* unterminated":                      OpOther,
		"selected":                             OpOther,
	} {
		if got := OpOf(q); got != want {
			t.Errorf("OpOf(%q) = %s, want %s", q, got, want)
		}
	}
}

// countingWorkload runs a known mix on db (table kv exists) and returns
// what Counters must have counted for it.
func countingWorkload(t *testing.T, db *sql.DB) CounterSnapshot {
	t.Helper()
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, "a", 1) // autocommit: a write commit
	exec(`UPDATE kv SET v = ? WHERE k = ?`, 2, "a")     // another
	var v int
	if err := db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, "a").Scan(&v); err != nil || v != 2 {
		t.Fatalf("v = %d, %v", v, err)
	}
	// A writing transaction: one commit, one write commit, three statements.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "b", 1)
	tx.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, "b").Scan(&v)
	tx.ExecContext(ctx, `DELETE FROM kv WHERE k = ?`, "a")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// A read-only transaction: a commit, not a write commit.
	tx, _ = db.BeginTx(ctx, nil)
	tx.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, "b").Scan(&v)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	// A rolled-back write: neither.
	tx, _ = db.BeginTx(ctx, nil)
	tx.ExecContext(ctx, `UPDATE kv SET v = 9 WHERE k = ?`, "b")
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// A prepared statement run twice counts twice.
	st, err := db.PrepareContext(ctx, `SELECT v FROM kv WHERE k = ?`)
	if err != nil {
		t.Fatal(err)
	}
	st.QueryRowContext(ctx, "b").Scan(&v)
	st.QueryRowContext(ctx, "b").Scan(&v)
	st.Close()
	var want CounterSnapshot
	want.Statements[OpInsert] = 2
	want.Statements[OpUpdate] = 2
	want.Statements[OpDelete] = 1
	want.Statements[OpSelect] = 5
	want.Commits, want.WriteCommits, want.Rollbacks = 2, 3, 1
	return want
}

// TestCountersSQLite: statements by kind, commits and write commits (the
// fsyncs of SQLite in WAL with synchronous=FULL) are counted as they run,
// and exported as Prometheus metrics.
func TestCountersSQLite(t *testing.T) {
	t.Parallel()
	c := NewCounters("store")
	db, err := OpenSQLite(filepath.Join(t.TempDir(), "t.db"), true, WithCounters(c))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	before := c.Snapshot()
	if before.Statements[OpOther] != 1 || before.WriteCommits != 1 {
		t.Fatalf("CREATE TABLE counted as %+v", before)
	}
	want := countingWorkload(t, db)
	if got := c.Snapshot().Sub(before); got != want {
		t.Fatalf("counted %+v, want %+v", got, want)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP smp_sql_rollbacks_total Transactions rolled back, by database.
# TYPE smp_sql_rollbacks_total counter
smp_sql_rollbacks_total{db="store"} 1
# HELP smp_sql_commits_total Transactions committed (read-only ones included), by database.
# TYPE smp_sql_commits_total counter
smp_sql_commits_total{db="store"} 2
`), "smp_sql_rollbacks_total", "smp_sql_commits_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(writeOnly{c}); n != 4 { // CREATE TABLE and the workload's 3
		t.Fatalf("smp_sql_write_commits_total = %v, want 4", n)
	}
	if n, err := testutil.GatherAndCount(reg, "smp_sql_statements_total"); err != nil || n != int(numOps) {
		t.Fatalf("smp_sql_statements_total series: %d, %v", n, err)
	}
}

// TestCountersMySQL: the same on MySQL, through the wrapped go-sql-driver
// connector (interpolated parameters).
func TestCountersMySQL(t *testing.T) {
	t.Parallel()
	dsn := sqlstoretest.MySQLDSN(t)
	c := NewCounters("store")
	db, err := OpenMySQL(dsn, true, Pool{MaxOpen: 1, MaxIdle: 1}, WithCounters(c))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE kv (k VARCHAR(8) PRIMARY KEY, v INT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	before := c.Snapshot()
	want := countingWorkload(t, db)
	if got := c.Snapshot().Sub(before); got != want {
		t.Fatalf("counted %+v, want %+v", got, want)
	}
}

// TestUncountedUnwrapped: without WithCounters the connections are the
// driver's own (no wrapper, no cost).
func TestUncountedUnwrapped(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Raw(func(dc any) error {
		if _, ok := dc.(*countingConn); ok {
			t.Error("an uncounted database wraps its connections")
		}
		return nil
	})
	var nilCounters *Counters
	if s := nilCounters.Snapshot(); s.TotalStatements() != 0 {
		t.Fatal(s)
	}
}

// writeOnly collects only smp_sql_write_commits_total.
type writeOnly struct{ c *Counters }

func (w writeOnly) Describe(ch chan<- *prometheus.Desc) { ch <- w.c.writeDesc }
func (w writeOnly) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(w.c.writeDesc, prometheus.CounterValue, float64(w.c.Snapshot().WriteCommits))
}

// TestCensus: with the census on, statements are counted by normalized
// text (whitespace, IN lists and multi-row VALUES of any length as one
// text), texts past the cap under "other"; off, there is no census and
// nothing is kept.
func TestCensus(t *testing.T) {
	t.Parallel()
	c := NewCounters("store")
	db, err := OpenSQLite(filepath.Join(t.TempDir(), "t.db"), true, WithCounters(c))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)
	if got := c.Census(); got != nil {
		t.Fatalf("census off: %v", got)
	}
	if c.census.Load() != nil {
		t.Fatal("a census is kept while off")
	}
	c.EnableCensus(6)
	exec("INSERT INTO kv (k, v)\n\t\tVALUES (?, ?)", "a", 1)
	exec(`INSERT INTO kv (k, v) VALUES (?,  ?)`, "b", 2)
	exec(`INSERT INTO kv (k, v) VALUES (?, ?), (?, ?), (?, ?)`, "c", 3, "d", 4, "e", 5)
	exec(`INSERT INTO kv (k, v) VALUES (?, ?), (?, ?)`, "f", 6, "g", 7)
	for _, in := range [][]any{{"a"}, {"a", "b"}, {"a", "b", "c"}} {
		q := `SELECT v FROM kv WHERE k IN (?` + strings.Repeat(`, ?`, len(in)-1) + `)`
		rows, err := db.Query(q, in...)
		if err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	exec(`DELETE FROM kv WHERE k = ?`, "a")
	exec(`UPDATE kv SET v = 0`)
	c.EnableCensus(100) // still the same census, the same cap
	want := map[string]uint64{
		"INSERT INTO kv (k, v) VALUES (?, …)":    2, // two raw texts, one normalized
		"INSERT INTO kv (k, v) VALUES (?, …), …": 2, // three rows and two
		"SELECT v FROM kv WHERE k IN (?)":        1,
		"SELECT v FROM kv WHERE k IN (?, …)":     1,
		CensusOther:                              3, // raw texts 7, 8, 9 (IN of three, DELETE, UPDATE): past the cap of 6
	}
	if got := c.Census(); !maps.Equal(got, want) {
		t.Errorf("census\n got %v\nwant %v", got, want)
	}
	if s := c.Snapshot(); s.TotalStatements() != 10 { // CREATE TABLE and the 9
		t.Errorf("statements %d, want 10", s.TotalStatements())
	}
}
