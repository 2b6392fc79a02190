package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

func openTest(t testing.TB) *sql.DB {
	t.Helper()
	db, err := OpenSQLite(filepath.Join(t.TempDir(), "t.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func prepares(t *testing.T, db *sql.DB) int {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n := -1
	conn.Raw(func(dc any) error { n = dc.(*cachedConn).prepares; return nil })
	return n
}

// TestStatementCache: a query is prepared once per connection and reused;
// results stay right through errors, interleaved uses of one statement in
// a transaction, and more distinct queries than the cache holds.
func TestStatementCache(t *testing.T) {
	t.Parallel()
	db := openTest(t)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		if _, err := db.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprint("k", i), i); err != nil {
			t.Fatal(err)
		}
	}
	// A constraint error leaves the statement usable.
	if _, err := db.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "k1", 1); err == nil {
		t.Fatal("duplicate key accepted")
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "k100", 100); err != nil {
		t.Fatalf("after an error: %v", err)
	}
	for i := 0; i < 100; i++ {
		var v int
		if err := db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, fmt.Sprint("k", i)).Scan(&v); err != nil || v != i {
			t.Fatalf("k%d: %d %v", i, v, err)
		}
	}
	base := prepares(t, db)
	if base > 3 { // CREATE, INSERT, SELECT (and nothing per call)
		t.Fatalf("%d statements prepared for 3 distinct queries", base)
	}

	// The same query again while its rows are open, in one transaction.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	outer, err := tx.QueryContext(ctx, `SELECT k, v FROM kv WHERE v < ? ORDER BY v`, 5)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for outer.Next() {
		var k string
		var v int
		if err := outer.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT k, v FROM kv WHERE v < ? ORDER BY v)`, v).Scan(&n); err != nil || n != v {
			t.Fatalf("inner count for %d: %d %v", v, n, err)
		}
		inner, err := tx.QueryContext(ctx, `SELECT k, v FROM kv WHERE v < ? ORDER BY v`, v)
		if err != nil {
			t.Fatal(err)
		}
		m := 0
		for inner.Next() {
			m++
		}
		inner.Close()
		if m != v {
			t.Fatalf("nested use of a busy statement: %d rows, want %d", m, v)
		}
		seen++
	}
	if err := outer.Err(); err != nil || seen != 5 {
		t.Fatalf("outer rows: %d %v", seen, err)
	}
	outer.Close()
	must(t, tx.Commit())

	// More distinct queries than the cache holds still run.
	for i := 0; i < maxCached+20; i++ {
		var v int
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT v + %d FROM kv WHERE k = ?`, i), "k0").Scan(&v); err != nil || v != i {
			t.Fatalf("query %d: %d %v", i, v, err)
		}
	}
	if n := prepares(t, db); n != maxCached {
		t.Fatalf("%d statements cached, want the bound %d", n, maxCached)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkPointQuery: a primary-key lookup through the cache, beside the
// plain driver (which parses the query every time).
func BenchmarkPointQuery(b *testing.B) {
	for _, c := range []struct {
		name string
		open func(testing.TB) *sql.DB
	}{
		{"cached", openTest},
		{"plain", func(tb testing.TB) *sql.DB {
			dsn, _ := SQLiteDSN(filepath.Join(tb.TempDir(), "p.db"), true)
			db, err := sql.Open("sqlite", dsn)
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { db.Close() })
			db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)
			return db
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			db := c.open(b)
			db.Exec(`INSERT INTO kv (k, v) VALUES ('a', 1)`)
			var v int
			for b.Loop() {
				if err := db.QueryRow(`SELECT v FROM kv WHERE k = ? AND v >= 0 ORDER BY k LIMIT 1`, "a").Scan(&v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
