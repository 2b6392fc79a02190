package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"smp/internal/wait"

	"smp"
	"smp/sqlstore"
	"smp/sqlstore/sqlstoretest"

	_ "github.com/go-sql-driver/mysql"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestReplicaLagMovesReads: two real MariaDB servers in binlog
// replication. Stopping the replica's SQL thread moves lag-tolerant reads
// to the primary within 10 s; restarting it moves them back.
func TestReplicaLagMovesReads(t *testing.T) {
	sqlstoretest.SkipUnlessMySQL(t)
	t.Parallel()
	primary, replica := sqlstoretest.StartReplicaPair(t, "smp")

	ctx := context.Background()
	logs := &logBuffer{}
	db, err := sqlstore.Open(ctx, sqlstore.Config{MySQLDSN: primary.DSN("smp"), MySQLReadDSN: replica.DSN("smp"),
		ReplicaLagThreshold: 2 * time.Second, LagInterval: 200 * time.Millisecond, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	must(t, err)
	defer db.Close()
	seed(t, db)
	waitTarget := func(want string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for db.ReadTarget() != want {
			if time.Since(start) > within {
				lag, reachable, _ := db.ReplicaLag()
				t.Fatalf("reads still on %s after %s (lag %s, reachable %v); want %s", db.ReadTarget(), within, lag, reachable, want)
			}
			time.Sleep(50 * time.Millisecond) // polling with a deadline
		}
		return time.Since(start)
	}
	waitTarget("replica", 20*time.Second)

	insert := func(id string) {
		must(t, db.InTx(ctx, func(tx smp.Tx) error { return tx.InsertOrder(ctx, newOrder(id, time.Now())) }))
	}
	listed := func(id string) bool {
		os, err := db.FindOrders(ctx, smp.OrderFilter{Limit: 100})
		must(t, err)
		for _, o := range os {
			if o.ID == id {
				return true
			}
		}
		return false
	}
	insert("before")
	wait.Until(t, 10*time.Second, "the replica to have the first order", func() bool { return listed("before") })

	sqlstoretest.ExecAll(t, replica.DSN(""), "STOP REPLICA SQL_THREAD")
	insert("during")
	took := waitTarget("primary", 10*time.Second)
	if !listed("during") {
		t.Fatal("with reads on the primary, a new order is not listed")
	}
	var n int
	rdb, _ := sql.Open("mysql", replica.DSN("smp"))
	defer rdb.Close()
	must(t, rdb.QueryRow("SELECT COUNT(*) FROM orders WHERE id = 'during'").Scan(&n))
	if n != 0 {
		t.Fatal("the replica has the order although its SQL thread is stopped: the test shows nothing")
	}
	lag, _, _ := db.ReplicaLag()
	if lag <= 2*time.Second {
		t.Fatalf("lag = %s after the switch", lag)
	}
	if !strings.Contains(logs.String(), "reads moved to the primary") {
		t.Fatalf("no log line for the switch:\n%s", logs.String())
	}

	sqlstoretest.ExecAll(t, replica.DSN(""), "START REPLICA SQL_THREAD")
	back := waitTarget("replica", 20*time.Second)
	if !listed("during") {
		t.Fatal("after catching up, the replica lacks the order")
	}
	t.Logf("reads moved to the primary %s after the SQL thread stopped, and back %s after it restarted", took.Round(10*time.Millisecond), back.Round(10*time.Millisecond))

	// A replica that stops answering: reads move too.
	replica.Kill()
	waitTarget("primary", 10*time.Second)
}
