package sqldb

import (
	"context"
	"database/sql"
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
