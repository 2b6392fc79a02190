package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"smp"
	"smp/dispatchtest"
	"smp/fraud/fraudtest"
	"smp/internal/envtest"
	"smp/redisstore"
	"smp/storetest"
)

// EnvAddr names the variable with the test Redis server's address.
const EnvAddr = "SMP_TEST_REDIS_ADDR"

// open connects with a key prefix of its own, so tests share the server.
func open(t *testing.T) *redisstore.Store {
	t.Helper()
	addr, why := envtest.RedisAddr()
	if addr == "" {
		envtest.Skip(t, "Redis", why)
	}
	b := make([]byte, 4)
	rand.Read(b)
	s, err := redisstore.Open(context.Background(), redisstore.Config{Addr: addr, Prefix: "t" + hex.EncodeToString(b) + ":"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := s.Client().Scan(ctx, 0, s.Prefix()+"*", 500).Iterator()
		for iter.Next(ctx) {
			s.Client().Unlink(ctx, iter.Val())
		}
		s.Close()
	})
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	dispatchtest.RunQueue(t, func(t *testing.T) smp.DispatchQueue { return open(t).Queue() })
	dispatchtest.RunInvitations(t, func(t *testing.T) smp.InvitationStore { return open(t).Invitations() })
	dispatchtest.RunGeo(t, func(t *testing.T) smp.GeoIndex { return open(t).Geo() })
	dispatchtest.RunLocker(t, func(t *testing.T) smp.Locker { return open(t).Locker() })
	dispatchtest.RunOTP(t, func(t *testing.T) smp.OTPStore { return open(t).Logins() })
	dispatchtest.RunRateCounter(t, func(t *testing.T) smp.RateCounter { return open(t).Logins() })
	t.Run("Sessions", func(t *testing.T) {
		storetest.SessionTests(t, func(t *testing.T) smp.SessionStore { return open(t).Logins() })
	})
}

// BenchmarkNearby: GEOSEARCH over the same kind of technician set as
// inmem's BenchmarkNearby.
func BenchmarkNearby(b *testing.B) {
	addr, why := envtest.RedisAddr()
	if addr == "" {
		envtest.Skip(b, "Redis", why)
	}
	for _, n := range []int{200, 10000} {
		for _, radius := range []float64{2000, 5000} {
			b.Run(fmt.Sprintf("technicians=%d/radius=%.0fkm", n, radius/1000), func(b *testing.B) {
				s, err := redisstore.Open(context.Background(), redisstore.Config{Addr: addr, Prefix: fmt.Sprintf("bench%d:", n)})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				g := s.Geo()
				rng := mrand.New(mrand.NewPCG(1, 2))
				dispatchtest.Fill(b, g, n, rng)
				ctx := context.Background()
				for b.Loop() {
					g.Nearby(ctx, "HCMC", "plumbing", 10.70+rng.Float64()*0.18, 106.60+rng.Float64()*0.20, radius, 3)
				}
				iter := s.Client().Scan(ctx, 0, s.Prefix()+"*", 1000).Iterator()
				for iter.Next(ctx) {
					s.Client().Unlink(ctx, iter.Val())
				}
			})
		}
	}
}

func TestSessions(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	x := s.Sessions()
	// Connection a (process A), then the technician reconnects: b (process B).
	if err := x.Claim(ctx, "T1", "A/a"); err != nil {
		t.Fatal(err)
	}
	if held, err := x.Touch(ctx, "T1", "A/a"); err != nil || !held {
		t.Fatalf("a's heartbeat: %v %v", held, err)
	}
	if ttl, _ := s.Client().TTL(ctx, s.Prefix()+"session:T1").Result(); ttl <= 0 {
		t.Fatalf("session without TTL: %s", ttl)
	}
	if err := x.Claim(ctx, "T1", "B/b"); err != nil {
		t.Fatal(err)
	}
	if h, ok, _ := x.Holder(ctx, "T1"); !ok || h != "B/b" {
		t.Fatalf("holder = %q %v, want the newest connection", h, ok)
	}
	if held, err := x.Touch(ctx, "T1", "A/a"); err != nil || held {
		t.Fatalf("the superseded connection's heartbeat took the session back: %v %v", held, err)
	}
	must(t, x.Drop(ctx, "T1", "A/a")) // not a's any more
	if h, ok, _ := x.Holder(ctx, "T1"); !ok || h != "B/b" {
		t.Fatalf("the old connection's close dropped the newest's session: %q %v", h, ok)
	}
	must(t, x.Drop(ctx, "T1", "B/b"))
	if _, ok, _ := x.Holder(ctx, "T1"); ok {
		t.Fatal("session left after its holder dropped it")
	}
	// A heartbeat after the key expired (or was flushed) takes it back.
	if held, err := x.Touch(ctx, "T1", "B/b"); err != nil || !held {
		t.Fatalf("heartbeat on an expired session: %v %v", held, err)
	}
}

func TestCacheTTL(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	c := s.Cache()
	if err := c.Set(ctx, "cache:wms:stock:A1", []byte(`{"available":3}`)); err != nil {
		t.Fatal(err)
	}
	v, ok, err := c.Get(ctx, "cache:wms:stock:A1")
	if err != nil || !ok || string(v) != `{"available":3}` {
		t.Fatalf("get: %q %v %v", v, ok, err)
	}
	if ttl := s.Client().PTTL(ctx, s.Prefix()+"cache:wms:stock:A1").Val(); ttl <= 0 || ttl > 30*time.Second {
		t.Fatalf("TTL %s, want at most 30 s", ttl)
	}
	if err := c.Set(ctx, "dispatch:queue:HCMC", []byte("x")); err == nil {
		t.Fatal("the cache wrote a non-cache key")
	}
	if _, ok, _ := c.Get(ctx, "cache:wms:stock:none"); ok {
		t.Fatal("found a missing key")
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestFraudWindows: the fraud detector's windows, also through a second
// client on the same keys (another process).
func TestFraudWindows(t *testing.T) {
	t.Parallel()
	fraudtest.RunWindows(t, func(t *testing.T) (smp.FraudWindows, smp.FraudWindows) {
		a := open(t)
		b, err := redisstore.Open(context.Background(), redisstore.Config{Addr: a.Client().Options().Addr, Prefix: a.Prefix()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return a.FraudWindows(), b.FraudWindows()
	})
}

// TestClaimWithoutExpMS: an invitation stored without exp_ms (by a
// version before it existed, during an upgrade) is checked against its
// expires_at all the same: refused once expired, claimed before.
func TestClaimWithoutExpMS(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for tech, exp := range map[string]time.Time{"t-expired": now.Add(-time.Second), "t-open": now.Add(time.Minute)} {
		b, err := json.Marshal(smp.Invitation{ID: "i-" + tech, OrderID: "o-" + tech, TechnicianID: tech, State: smp.InvitationSent, SentAt: now.Add(-time.Minute), ExpiresAt: exp})
		must(t, err)
		must(t, s.Client().HSet(ctx, s.Prefix()+smp.InvitationsKey("o-"+tech), tech, b).Err())
	}
	iv := s.Invitations()
	if inv, ok, holder, err := iv.Claim(ctx, "o-t-expired", "t-expired", now); err != nil || ok || holder != "" || inv.ID != "i-t-expired" {
		t.Fatalf("claim of an expired offer without exp_ms = %+v %v %q %v", inv, ok, holder, err)
	}
	if inv, ok, _, err := iv.Claim(ctx, "o-t-open", "t-open", now); err != nil || !ok || inv.State != smp.InvitationAccepted {
		t.Fatalf("claim of an open offer without exp_ms = %+v %v %v", inv, ok, err)
	}
}
