//go:build slow

package e2e

import (
	"strings"
	"testing"
	"time"

	"smp/internal/wait"
	"smp/sqlstore/sqlstoretest"
)

// TestRunbookCheckReplicaLag: INC-003 on real MariaDB replication: the
// replica's SQL thread stops, lag passes 30 s, and the check says so and
// that reads already moved to the primary.
func TestRunbookCheckReplicaLag(t *testing.T) {
	sqlstoretest.MySQLDSN(t) // CI gate: this test starts its own two servers
	t.Parallel()
	primary, replica := sqlstoretest.StartReplicaPair(t, "smp")
	a := startApp(t, func(c *Config) { c.MySQLDSN, c.MySQLReadDSN = primary.DSN("smp"), replica.DSN("smp") })
	if out, err := runbookCheck(a.url, "INC-003"); err != nil || !strings.Contains(out, "INC-003 MySQL replica lag > 30s: healthy") {
		t.Fatalf("INC-003 before: %v\n%s", err, out)
	}
	sqlstoretest.ExecAll(t, replica.DSN(""), "STOP REPLICA SQL_THREAD")
	expectHolds(t, a.url, "INC-003", "reads on primary = 1", "Option A is automatic")
	sqlstoretest.ExecAll(t, replica.DSN(""), "START REPLICA SQL_THREAD")
	wait.Until(t, 30*time.Second, "INC-003 healthy again", func() bool {
		_, err := runbookCheck(a.url, "INC-003")
		return err == nil
	})
}
