package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
	"smp/sqlstore"
	"smp/sqlstore/sqlstoretest"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoCompletesOrdersWithin30s runs `smp demo` for 30 s: orders must
// visibly reach 05_completed, and the output gives the URLs and an admin
// token. Not parallel: it runs before the heavy process-level tests.
func TestDemoCompletesOrdersWithin30s(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 30 s")
	}
	dir := t.TempDir()
	var out, errb syncBuffer
	err := run(context.Background(), []string{"demo", "--addr", "127.0.0.1:0", "--data-dir", dir, "--duration", "30s", "--technicians", "120"}, &out, &errb)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, errb.String())
	}
	text := out.String()
	for _, want := range []string{"/v1/technicians/ws", "/health", "/metrics", "Admin token    adm_", "stopping demo", "/connectors/smp-mysql-connector/status"} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`05=[1-9]`).MatchString(text) {
		t.Errorf("no completed order in the demo's progress lines:\n%s", text)
	}
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(dir, "smp.db")})
	must(t, err)
	defer db.Close()
	// Change data capture ran beside it: the demo's orders reached
	// smp.cdc.smp_order.orders as Debezium envelopes (issue 19).
	events, err := sql.Open("sqlite", filepath.Join(dir, "smp.db")) // the embedded log's tables are in smp.db
	must(t, err)
	defer events.Close()
	var creates int
	must(t, events.QueryRow(`SELECT COUNT(*) FROM bus_messages WHERE topic = 'smp.cdc.smp_order.orders' AND CAST(msg_value AS TEXT) LIKE '%"op":"c"%'`).Scan(&creates))
	if creates < 5 {
		t.Errorf("%d order creations on smp.cdc.smp_order.orders after the demo", creates)
	}
	counts, err := db.CountOrdersByStage(context.Background())
	must(t, err)
	if counts[smp.StageCompleted] < 5 {
		t.Fatalf("orders per stage after 30 s: %v", counts)
	}
	// Payments: customers paid through the simulated inside, whose signed
	// webhooks were applied.
	// Partners topped up through the simulated VNPay (IPNs applied), and
	// the wallet-commission consumer debited completed orders.
	if !regexp.MustCompile(`wallets topups=[1-9]\d* commissions=[1-9]`).MatchString(text) {
		t.Errorf("no wallet top-up or commission in the demo's progress lines:\n%s", text)
	}
	if !regexp.MustCompile(`payments processed=[1-9]`).MatchString(text) {
		t.Errorf("no payment processed in the demo's progress lines:\n%s", text)
	}
	paid, err := db.FindOrders(context.Background(), smp.OrderFilter{Stage: smp.StageCompleted, Limit: 1000})
	must(t, err)
	n := 0
	for _, o := range paid {
		if o.PaymentStatus == smp.PaymentPaid {
			n++
		}
	}
	if n == 0 {
		t.Errorf("no completed order was paid")
	}
	if strings.Contains(errb.String(), "level=ERROR") {
		t.Errorf("the demo logged errors:\n%s", errb.String())
	}
	t.Logf("after 30 s: %v; %d completed orders paid through inside's webhooks", counts, n)
}

// TestDemoOnMySQLAndRedis (15.8 and the demo's next steps): the demo on
// MySQL and Redis names those backends, creates no ./smp-data, prints how
// to export the admin token and the webhook secret in use with three
// commands to try, and the signed test webhook it prints is accepted.
// Not parallel: it changes the working directory.
func TestDemoOnMySQLAndRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 15 s")
	}
	dsn := sqlstoretest.MySQLDSN(t)
	raddr := redisAddr(t)
	t.Chdir(t.TempDir())
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"demo", "--addr", "127.0.0.1:0", "--duration", "15s", "--technicians", "40", "--customers", "5",
			"--mysql-dsn", dsn, "--redis-addr", raddr, "--redis-prefix", randomPrefix(), "--mysql-max-conns", "8"}, &out, &errb)
	}()
	var steps string
	wait.Until(t, 60*time.Second, "the demo's next steps", func() bool {
		text := out.String()
		i := strings.Index(text, "  export SMP_SERVER=")
		j := strings.Index(text, "# a signed test webhook")
		if i < 0 || j < i {
			return false
		}
		steps = text[i:j]
		return true
	})
	// The printed steps, run as printed: exports, then the signed webhook.
	var script []string
	for _, l := range strings.Split(steps, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "export ") || strings.HasPrefix(l, "body=") || strings.HasPrefix(l, "curl ") {
			script = append(script, strings.SplitN(l, "   #", 2)[0])
		}
	}
	res, err := exec.Command("bash", "-c", strings.Join(script, "\n")).CombinedOutput()
	if err != nil || !regexp.MustCompile(`"status":\s*"test"`).Match(res) {
		t.Errorf("the printed signed webhook:\n%s\n→ %v %s", strings.Join(script, "\n"), err, res)
	}
	if err := <-done; err != nil {
		t.Fatalf("demo: %v\n%s", err, errb.String())
	}
	text := out.String()
	banner, _, _ := strings.Cut(text, "\n")
	if !strings.Contains(banner, "MySQL at 127.0.0.1") || !strings.Contains(banner, "Redis at "+raddr) || strings.Contains(banner, "embedded") {
		t.Errorf("banner %q does not name MySQL and Redis", banner)
	}
	for _, want := range []string{"SMP_ADMIN_TOKEN=adm_", "SMP_INSIDE_WEBHOOK_SECRET=whsec_", "smp ctl stats", "smp runbook check --all", "first offer p50="} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q:\n%s", want, text)
		}
	}
	if _, err := os.Stat("smp-data"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the demo on MySQL created ./smp-data (%v)", err)
	}
}
