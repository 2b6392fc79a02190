package fraud_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"smp/fraud"
	"smp/internal/envtest"
	"smp/redisstore"
)

// openRedis is a client on a fresh key prefix, or on prefix when given
// (another process on the same keys).
func openRedis(t *testing.T, prefix string) *redisstore.Store {
	t.Helper()
	addr, why := envtest.RedisAddr()
	if addr == "" {
		envtest.Skip(t, "Redis", why)
	}
	if prefix == "" {
		b := make([]byte, 4)
		rand.Read(b)
		prefix = "tfraud" + hex.EncodeToString(b) + ":"
	}
	s, err := redisstore.Open(ctx, redisstore.Config{Addr: addr, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		iter := s.Client().Scan(ctx, 0, prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			s.Client().Unlink(ctx, iter.Val())
		}
		s.Close()
	})
	return s
}

// TestWindowsAcrossProcessesAndRestart: two detectors sharing Redis (two
// processes) count one partner's and one IP's top-ups together, and a
// detector started afresh (a restart) goes on from what they counted:
// the velocity rule fires at the sixth top-up whichever detector sees it,
// the IP rule at the third high-value top-up across partners, and the
// amount rule compares with the average kept before the restart.
func TestWindowsAcrossProcessesAndRestart(t *testing.T) {
	t.Parallel()
	store := openStore(t)
	a := openRedis(t, "")
	b := openRedis(t, a.Prefix())
	det := func(r *redisstore.Store) *fixture {
		d, err := fraud.New(store, fraud.Config{Windows: r.FraudWindows(), Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		return &fixture{store: store, det: d}
	}
	one, two := det(a), det(b)
	ids := 0
	next := func(f *fixture, tu topup) []string {
		ids++
		d, err := f.det.EvaluateEvent(ctx, event(fmt.Sprint(ids), tu))
		if err != nil {
			t.Fatal(err)
		}
		return d.Signals
	}
	small := topup{partner: "P001", vnd: 100_000, ip: "198.51.100.1"}
	for i := range 5 {
		f := one
		if i%2 == 1 {
			f = two
		}
		small.at = time.Duration(i) * time.Minute
		if s := next(f, small); len(s) != 0 {
			t.Fatalf("top-up %d flagged %v", i+1, s)
		}
	}
	// A restart: a new detector on a new client of the same Redis.
	three := det(openRedis(t, a.Prefix()))
	small.at = 5 * time.Minute
	if s := next(three, small); !slices.Equal(s, []string{"velocity"}) {
		t.Fatalf("sixth top-up in ten minutes, after a restart: signals %v", s)
	}
	const ip = "203.0.113.7"
	hv := int64(50_000_000)
	next(one, topup{"P002", hv, ip, 0})
	next(two, topup{"P003", hv, ip, time.Minute})
	if s := next(three, topup{"P002", hv, ip, 2 * time.Minute}); !slices.Contains(s, "ip_multi_partner_high_value") {
		t.Fatalf("third high-value top-up from one IP across two detectors and a restart: %v", s)
	}
	// P001's average is 100,000 over six top-ups (kept in Redis): 1,000,001
	// is the first above 10×.
	if s := next(det(openRedis(t, a.Prefix())), topup{"P001", 1_000_001, "", time.Hour}); !slices.Equal(s, []string{"amount_spike"}) {
		t.Fatalf("amount above 10× the average kept across processes: %v", s)
	}
}
