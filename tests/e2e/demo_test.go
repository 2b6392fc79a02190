package e2e

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"smp"
	"smp/sqlstore"
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
	for _, want := range []string{"/v1/technicians/ws", "/health", "/metrics", "Admin token    adm_", "stopping demo"} {
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
	counts, err := db.CountOrdersByStage(context.Background())
	must(t, err)
	if counts[smp.StageCompleted] < 5 {
		t.Fatalf("orders per stage after 30 s: %v", counts)
	}
	// Payments: customers paid through the simulated inside, whose signed
	// webhooks were applied.
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
