package dispatchtest

import (
	"context"
	"sync"
	"testing"
	"time"

	"smp"
)

// RunOTP checks an OTPStore: a code replaces the last, attempts are
// counted (concurrent ones each), a code is deleted once and only by its
// hash, and a challenge is forgotten after its ttl.
func RunOTP(t *testing.T, newStore func(t *testing.T) smp.OTPStore) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	t.Run("ReplaceAttemptDelete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if _, ok, err := s.AttemptOTP(ctx, "+84901234567"); err != nil || ok {
			t.Fatalf("attempt without a code: ok=%v err=%v", ok, err)
		}
		must(t, s.PutOTP(ctx, smp.OTPChallenge{Phone: "+84901234567", CodeHash: "h1", Kind: "technician", ExpiresAt: t0.Add(5 * time.Minute)}, time.Minute))
		c, ok, err := s.AttemptOTP(ctx, "+84901234567")
		if err != nil || !ok || c.CodeHash != "h1" || c.Kind != "technician" || c.Attempts != 1 || !c.ExpiresAt.Equal(t0.Add(5*time.Minute)) {
			t.Fatalf("first attempt = %+v %v %v", c, ok, err)
		}
		// A new code starts over.
		must(t, s.PutOTP(ctx, smp.OTPChallenge{Phone: "+84901234567", CodeHash: "h2", Kind: "customer", ExpiresAt: t0.Add(6 * time.Minute)}, time.Minute))
		if c, _, _ := s.AttemptOTP(ctx, "+84901234567"); c.CodeHash != "h2" || c.Attempts != 1 {
			t.Fatalf("after a new code: %+v, want h2 with 1 attempt", c)
		}
		if del, err := s.DeleteOTP(ctx, "+84901234567", "h1"); err != nil || del {
			t.Fatalf("delete with the old hash = %v %v, want false", del, err)
		}
		if del, err := s.DeleteOTP(ctx, "+84901234567", "h2"); err != nil || !del {
			t.Fatalf("delete = %v %v, want true", del, err)
		}
		if del, _ := s.DeleteOTP(ctx, "+84901234567", "h2"); del {
			t.Fatal("a code was deleted twice")
		}
		if _, ok, _ := s.AttemptOTP(ctx, "+84901234567"); ok {
			t.Fatal("the code outlived its deletion")
		}
	})
	t.Run("ConcurrentAttempts", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		must(t, s.PutOTP(ctx, smp.OTPChallenge{Phone: "+84900000001", CodeHash: "h", ExpiresAt: t0}, time.Minute))
		var wg sync.WaitGroup
		seen := make(chan int, 20)
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, _, err := s.AttemptOTP(ctx, "+84900000001")
				if err == nil {
					seen <- c.Attempts
				}
			}()
		}
		wg.Wait()
		close(seen)
		got := map[int]bool{}
		for n := range seen {
			got[n] = true
		}
		if len(got) != 20 {
			t.Fatalf("20 concurrent attempts saw %d distinct counts, want 20", len(got))
		}
	})
}

// RunRateCounter checks a RateCounter: hits count per key and window, and
// a new window starts from one.
func RunRateCounter(t *testing.T, newCounter func(t *testing.T) smp.RateCounter) {
	t.Run("Windows", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		r := newCounter(t)
		t0 := time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC)
		for i := int64(1); i <= 3; i++ {
			n, err := r.Hit(ctx, "otp:phone:+84901234567", 10*time.Minute, t0.Add(time.Duration(i)*time.Minute))
			if err != nil || n != i {
				t.Fatalf("hit %d = %d %v", i, n, err)
			}
		}
		if n, _ := r.Hit(ctx, "otp:ip:10.0.0.1", 10*time.Minute, t0); n != 1 {
			t.Fatalf("another key = %d, want 1", n)
		}
		if n, _ := r.Hit(ctx, "otp:phone:+84901234567", 10*time.Minute, t0.Add(10*time.Minute)); n != 1 {
			t.Fatalf("next window = %d, want 1", n)
		}
		if _, err := r.Hit(ctx, "k", 0, t0); smp.ErrorCode(err) != smp.EINVALID {
			t.Fatalf("zero window: %v, want EINVALID", err)
		}
	})
}
