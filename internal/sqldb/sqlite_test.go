package sqldb

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
)

// TestSQLiteReadersStayOpen: the read pool keeps all SQLiteReaders
// connections between uses. With database/sql's default of 2 idle, a
// burst of 4 readers closed 2 connections after use and opened them again
// at the next burst (each open a new SQLite connection: pragmas, prepared
// statements again).
func TestSQLiteReadersStayOpen(t *testing.T) {
	ctx := context.Background()
	write, read, err := OpenSQLitePools(filepath.Join(t.TempDir(), "t.db"), false)
	if err != nil {
		t.Fatal(err)
	}
	defer write.Close()
	defer read.Close()
	burst := func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		var held sync.WaitGroup
		held.Add(SQLiteReaders)
		for range SQLiteReaders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, err := read.Conn(ctx) // each holds one connection until all do
				if err != nil {
					t.Error(err)
					held.Done()
					return
				}
				defer conn.Close()
				held.Done()
				<-start
				var one int
				if err := conn.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
					t.Error(err)
				}
			}()
		}
		held.Wait()
		close(start)
		wg.Wait()
	}
	burst()
	burst()
	st := read.Stats()
	if st.MaxIdleClosed != 0 || st.OpenConnections != SQLiteReaders {
		t.Fatalf("after two bursts of %d readers: %d connections closed as surplus idle, %d open; want 0 closed, %d open",
			SQLiteReaders, st.MaxIdleClosed, st.OpenConnections, SQLiteReaders)
	}
}
