package sqlstoretest

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// MariaDB is a server a test started with mariadbd on a spare port.
type MariaDB struct {
	Dir, Sock string
	Port      int
	cmd       *exec.Cmd
}

// DSN of database db on the server ("" for none).
func (m *MariaDB) DSN(db string) string {
	return fmt.Sprintf("root@tcp(127.0.0.1:%d)/%s", m.Port, db)
}

func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartMariaDB starts a private server (stopped at cleanup) with extra
// mariadbd arguments.
func StartMariaDB(tb testing.TB, name string, args ...string) *MariaDB {
	tb.Helper()
	for _, bin := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Fatalf("%s not found: install the mariadb-server package (.ci/run does)", bin)
		}
	}
	base := tb.TempDir()
	m := &MariaDB{Dir: filepath.Join(base, name), Sock: filepath.Join(base, name+".sock"), Port: freePort(tb)}
	// A temporary directory of its own: servers bootstrapping at once in the
	// shared /tmp collided on their temporary tables' file names.
	tmp := filepath.Join(base, name+".tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		tb.Fatal(err)
	}
	out, err := exec.Command("mariadb-install-db", "--no-defaults", "--user=root", "--datadir="+m.Dir, "--tmpdir="+tmp,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		tb.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	all := append([]string{"--no-defaults", "--user=root", "--datadir=" + m.Dir, "--tmpdir=" + tmp, fmt.Sprintf("--port=%d", m.Port),
		"--bind-address=127.0.0.1", "--socket=" + m.Sock, "--pid-file=" + filepath.Join(base, name+".pid"),
		"--skip-name-resolve", "--log-error=" + filepath.Join(base, name+".err")}, args...)
	m.cmd = exec.Command("mariadbd", all...)
	if err := m.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { m.cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		m.cmd.Process.Kill()
		<-exited
	})
	db, err := sql.Open("mysql", m.DSN(""))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for db.Ping() != nil {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(base, name+".err"))
			tb.Fatalf("mariadbd %s exited:\n%s", name, log)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mariadbd %s did not start", name)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	return m
}

// ExecAll runs statements on dsn, failing the test on the first error.
func ExecAll(tb testing.TB, dsn string, stmts ...string) {
	tb.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
}

// StartReplicaPair starts a primary and a replica in binlog replication,
// with database db created on the primary (and so on the replica).
func StartReplicaPair(tb testing.TB, db string) (primary, replica *MariaDB) {
	tb.Helper()
	base := tb.TempDir()
	primary = StartMariaDB(tb, "primary", "--server-id=1", "--log-bin="+filepath.Join(base, "binlog"), "--binlog-format=ROW")
	replica = StartMariaDB(tb, "replica", "--server-id=2", "--relay-log="+filepath.Join(base, "relay"), "--read-only=1")
	ExecAll(tb, primary.DSN(""), "CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'replpw'", "GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
	ExecAll(tb, replica.DSN(""), fmt.Sprintf("CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%d, MASTER_USER='repl', MASTER_PASSWORD='replpw', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1", primary.Port),
		"START REPLICA")
	ExecAll(tb, primary.DSN(""), "CREATE DATABASE "+db)
	return primary, replica
}

// Kill stops the server at once (a crashed host).
func (m *MariaDB) Kill() { m.cmd.Process.Kill() }
