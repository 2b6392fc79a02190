package integrations_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"smp"
	"smp/inmem"
	"smp/integrations"
	"smp/sim"
)

type flags map[string]bool

func (f flags) Enabled(name string) bool { return f[name] }

// TestSlowServiceOpensBreaker: a wms slower than the timeout counts as
// failing; the breaker opens, reads turn stale at once (without waiting
// for the timeout), and a 404 never counts against the breaker.
func TestSlowServiceOpensBreaker(t *testing.T) {
	wms := &sim.WMS{}
	srv := httptest.NewServer(wms)
	t.Cleanup(srv.Close)
	cache := inmem.NewCache(func(string) time.Duration { return time.Minute })
	c, err := integrations.New(integrations.Config{Name: "wms", BaseURL: srv.URL, Timeout: 100 * time.Millisecond, FailureThreshold: 3,
		OpenFor: time.Hour, Cache: cache, Flags: flags{}})
	if err != nil {
		t.Fatal(err)
	}
	w := integrations.WMS{Client: c}
	ctx := context.Background()
	if r, err := w.Stock(ctx, "A1"); err != nil || r.Stale {
		t.Fatalf("fresh read: %+v %v", r, err)
	}
	// 404s: the caller's problem, the breaker stays closed.
	for i := 0; i < 5; i++ {
		if _, err := c.Get(ctx, "/nope"); smp.ErrorCode(err) != smp.ENOTFOUND {
			t.Fatalf("404: %v", err)
		}
	}
	if c.State() != integrations.StateClosed {
		t.Fatal("404s opened the breaker")
	}
	wms.SetLatency(300 * time.Millisecond)
	for i := 0; i < 3; i++ {
		r, err := w.Stock(ctx, "A1")
		if err != nil || !r.Stale || r.Data == nil {
			t.Fatalf("slow read %d: %+v %v", i, r, err)
		}
	}
	if c.State() != integrations.StateOpen {
		t.Fatalf("state %d after 3 timeouts, want open", c.State())
	}
	start := time.Now()
	if r, err := w.Stock(ctx, "B2"); err != nil || !r.Stale || r.Data != nil || r.Message != integrations.UpdatingVI {
		t.Fatalf("uncached read with the breaker open: %+v %v", r, err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Fatalf("a read with the breaker open took %s: it waited for the service", d)
	}
}
