package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"smp/auth"
	"smp/sim"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestFakeClockAgesTheOutbox: /health's outbox check turns to "fail" once
// the oldest unpublished event is over a minute old. That took a real
// minute (the check read the wall clock); with app.Config.Now it takes
// one Advance. The same clock reaches the store (the event's created_at),
// the orders service, and the check.
func TestFakeClockAgesTheOutbox(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	cfg := testConfig(t)
	cfg.Now = clock.Now
	ctx := context.Background()
	db, err := OpenStore(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := sim.Seed(ctx, db, sim.SeedConfig{Partners: 1, Technicians: 2, Customers: 1, Seed: 7}, auth.HashToken)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	a := &App{Cfg: cfg}
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// No relay: the order's event stays in the outbox, as while the bus is down.
	if err := a.Relay.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// On the embedded default the outbox append is the log's append, so
	// nothing would wait in the outbox: leave the event to the (stopped) relay.
	if err := a.Store.SetOutboxLog(nil); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", a.HTTP.URL()+"/v1/orders",
		strings.NewReader(`{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":300000}`))
	req.Header.Set("Authorization", "Bearer "+ds.Customers[0].Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("create order: %d", resp.StatusCode)
	}
	outbox := func() (string, string) {
		resp, err := http.Get(a.HTTP.URL() + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h struct {
			Checks map[string]struct{ Status, Error string } `json:"checks"`
		}
		json.NewDecoder(resp.Body).Decode(&h)
		return h.Checks["outbox"].Status, h.Checks["outbox"].Error
	}
	if st, msg := outbox(); st != "ok" {
		t.Fatalf("outbox check with a fresh event: %s %s", st, msg)
	}
	clock.Advance(2 * time.Minute)
	if st, msg := outbox(); st != "fail" || !strings.Contains(msg, "oldest 2m0s old") {
		t.Fatalf("outbox check two (fake) minutes later: %s %q", st, msg)
	}
}

// TestFreshServerWithoutCitiesIsHealthy: a platform with an empty
// database (no cities yet: nothing for the dispatch engine's per-city
// workers to do) answers /health 200, now and later; it used to turn 503
// once the workers' beat, which only city workers kept, grew old.
func TestFreshServerWithoutCitiesIsHealthy(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	cfg := testConfig(t)
	cfg.Now = clock.Now
	ctx := context.Background()
	a := &App{Cfg: cfg}
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	health := func() (int, string) {
		resp, err := http.Get(a.HTTP.URL() + "/health")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := health(); code != 200 {
		t.Fatalf("fresh server: %d %s", code, body)
	}
	clock.Advance(time.Minute)
	if code, body := health(); code != 200 {
		t.Fatalf("fresh server a (fake) minute later: %d %s", code, body)
	}
}
