// Package sqlstoretest gives tests a fresh MySQL database on the server
// named by SMP_TEST_MYSQL_DSN.
package sqlstoretest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"testing"

	"github.com/go-sql-driver/mysql"

	"smp/internal/envtest"
)

// EnvDSN names the variable holding the test server's DSN, for example
// root@tcp(127.0.0.1:3306)/ .
const EnvDSN = "SMP_TEST_MYSQL_DSN"

// MySQLDSN creates an empty database for the test and returns its DSN; it
// is dropped at cleanup. The server is SMP_TEST_MYSQL_DSN's, or MariaDB at
// 127.0.0.1:3306 when it is unset (internal/envtest); the test is skipped,
// visibly, when there is none.
func MySQLDSN(tb testing.TB) string {
	tb.Helper()
	return CreateDatabase(tb, Server(tb))
}

// Server is the test server's DSN (no database), skipping tb when there is
// none.
func Server(tb testing.TB) string {
	tb.Helper()
	base, why := envtest.MySQLDSN()
	if base == "" {
		envtest.Skip(tb, "MySQL", why)
	}
	return base
}

// SkipUnlessMySQL skips the test, visibly, when there is no test server.
func SkipUnlessMySQL(tb testing.TB) {
	tb.Helper()
	Server(tb)
}

// CreateDatabase creates an empty database on the server of base and
// returns a DSN for it; it is dropped at cleanup.
func CreateDatabase(tb testing.TB, base string) string {
	tb.Helper()
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		tb.Fatalf("%s: %v", EnvDSN, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "smp_test_" + hex.EncodeToString(b)
	cfg.DBName = ""
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		admin.Close()
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		admin.Exec("DROP DATABASE " + name)
		admin.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}
