package sqlstore_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"smp/internal/wait"
	"strings"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/sqlstore"
	"smp/sqlstore/sqlstoretest"

	_ "github.com/go-sql-driver/mysql"
)

// mariadb is a server this test started.
type mariadb struct {
	dir, sock string
	port      int
	cmd       *exec.Cmd
}

func (m *mariadb) dsn(db string) string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/%s", m.port, db)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startMariaDB(t *testing.T, name string, args ...string) *mariadb {
	t.Helper()
	base := t.TempDir()
	m := &mariadb{dir: filepath.Join(base, name), sock: filepath.Join(base, name+".sock"), port: freePort(t)}
	out, err := exec.Command("mariadb-install-db", "--no-defaults", "--user=root", "--datadir="+m.dir, "--auth-root-authentication-method=normal",
		"--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	all := append([]string{"--no-defaults", "--user=root", "--datadir=" + m.dir, fmt.Sprintf("--port=%d", m.port),
		"--bind-address=127.0.0.1", "--socket=" + m.sock, "--pid-file=" + filepath.Join(base, name+".pid"),
		"--skip-name-resolve", "--log-error=" + filepath.Join(base, name+".err")}, args...)
	m.cmd = exec.Command("mariadbd", all...)
	must(t, m.cmd.Start())
	exited := make(chan struct{})
	go func() { m.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		<-exited
	})
	db, err := sql.Open("mysql", m.dsn(""))
	must(t, err)
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for db.Ping() != nil {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(base, name+".err"))
			t.Fatalf("mariadbd %s exited:\n%s", name, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mariadbd %s did not start", name)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	return m
}

func execAll(t *testing.T, dsn string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("mysql", dsn)
	must(t, err)
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

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
	if os.Getenv(sqlstoretest.EnvDSN) == "" {
		t.Skipf("%s is not set: skipping the MariaDB replication test (.ci/run sets it)", sqlstoretest.EnvDSN)
	}
	for _, bin := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s not found: install the mariadb-server package (.ci/run does)", bin)
		}
	}
	t.Parallel()
	base := t.TempDir()
	primary := startMariaDB(t, "primary", "--server-id=1", "--log-bin="+filepath.Join(base, "binlog"), "--binlog-format=ROW")
	replica := startMariaDB(t, "replica", "--server-id=2", "--relay-log="+filepath.Join(base, "relay"), "--read-only=1")
	execAll(t, primary.dsn(""), "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'replpw'", "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
	execAll(t, replica.dsn(""), fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl', MASTER_PASSWORD='replpw', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", primary.port),
		"START REPLICA")
	execAll(t, primary.dsn(""), "CREATE DATABASE smp")

	ctx := context.Background()
	logs := &logBuffer{}
	db, err := sqlstore.Open(ctx, sqlstore.Config{MySQLDSN: primary.dsn("smp"), MySQLReadDSN: replica.dsn("smp"),
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

	execAll(t, replica.dsn(""), "STOP REPLICA SQL_THREAD")
	insert("during")
	took := waitTarget("primary", 10*time.Second)
	if !listed("during") {
		t.Fatal("with reads on the primary, a new order is not listed")
	}
	var n int
	rdb, _ := sql.Open("mysql", replica.dsn("smp"))
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

	execAll(t, replica.dsn(""), "START REPLICA SQL_THREAD")
	back := waitTarget("replica", 20*time.Second)
	if !listed("during") {
		t.Fatal("after catching up, the replica lacks the order")
	}
	t.Logf("reads moved to the primary %s after the SQL thread stopped, and back %s after it restarted", took.Round(10*time.Millisecond), back.Round(10*time.Millisecond))

	// A replica that stops answering: reads move too.
	replica.cmd.Process.Kill()
	waitTarget("primary", 10*time.Second)
}
