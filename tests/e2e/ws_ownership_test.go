package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"

	"smp/app"
	"smp/dispatch"
	"smp/internal/wait"
	"smp/sim"
)

// startSharedApp runs one process of a cluster on shared MySQL and Redis.
func startSharedApp(t *testing.T, dsn, raddr, prefix, services string, ds *sim.Dataset) *testApp {
	t.Helper()
	cfg := Config{Config: app.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), AdminToken: "test-admin-token", MySQLDSN: dsn, MySQLMaxConns: 8,
		RedisAddr: raddr, RedisPrefix: prefix, RedisPoolSize: 16, Services: services, InvitationTTL: 30 * time.Second, RetryAfter: time.Second,
		StuckAfter: 5 * time.Minute, BackpressureThreshold: 100, Partitions: 4}}
	must(t, cfg.Validate())
	a := &App{Cfg: cfg.Config, Log: slog.New(slog.DiscardHandler)}
	must(t, a.Open(context.Background()))
	t.Cleanup(func() { a.Close() })
	return &testApp{App: a, t: t, url: a.HTTP.URL(), admin: cfg.AdminToken, ds: ds}
}

// TestReconnectToAnotherProcess (issue 14 item 3): a technician connected
// to the engine's process B reconnects to process A while the old
// connection is still open. The offer goes to the new connection only (the
// old one is closed as superseded, not sent it), the old connection's
// close does not mark the technician offline, and the next order is
// offered to them on the new connection.
func TestReconnectToAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level test")
	}
	t.Parallel()
	dsn, raddr, prefix, ds, _ := sharedBackends(t, 3)
	a := startSharedApp(t, dsn, raddr, prefix, "api", ds)
	b := startSharedApp(t, dsn, raddr, prefix, "all", ds)
	tech := ds.Technicians[0]

	old, _, err := b.dialTech(tech.Token)
	must(t, err)
	old.next("welcome")
	old.send(map[string]any{"type": "location", "lat": tech.Lat, "lng": tech.Lng, "ref": "l"})
	old.next("ok")
	old.send(map[string]any{"type": "availability", "available": true, "ref": "a"})
	old.next("ok")
	cur, _, err := a.dialTech(tech.Token)
	must(t, err)
	cur.next("welcome")

	order := func() string {
		body := fmt.Sprintf(`{"city":%q,"service":%q,"lat":%f,"lng":%f,"price_vnd":300000,"address":"1 Lê Lợi"}`, tech.City, tech.Skills[0], tech.Lat, tech.Lng)
		r := a.do("POST", "/v1/orders", ds.Customers[0].Token, body)
		if r.Status != 201 {
			t.Fatalf("order: %d %s", r.Status, r.Raw)
		}
		return r.Body["id"].(string)
	}
	start := time.Now()
	o1 := order()
	if m := cur.next("offer"); m["order_id"] != o1 {
		t.Fatalf("offer on the new connection = %v", m)
	}
	// The old connection got no offer: the engine's process closed it.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var m map[string]any
		err := wsjson.Read(ctx, old.c, &m)
		cancel()
		if err != nil {
			break // closed as superseded
		}
		if m["type"] == "offer" {
			t.Fatalf("the old connection got an offer: %v", m)
		}
	}
	t.Logf("offer on the new connection, old one closed: %s", time.Since(start))
	wait.Until(t, 10*time.Second, "the old connection gone from process B", func() bool { return b.Hub.Connections() == 0 })
	cur.send(map[string]any{"type": "decline", "order_id": o1, "reason": "test", "ref": "d"})
	cur.next("ok")

	// Still online and a candidate: the next order is offered on the new connection.
	o2 := order()
	if m := cur.next("offer"); m["order_id"] != o2 {
		t.Fatalf("second offer = %v", m)
	}
	t.Logf("second offer: %s", time.Since(start))
	cands, err := b.Engine.Candidates(context.Background(), o2, 10)
	must(t, err)
	if !slices.ContainsFunc(cands, func(c dispatch.ManualCandidate) bool { return c.TechnicianID == tech.ID }) {
		t.Fatalf("technician %s not a candidate after the old connection closed: %+v", tech.ID, cands)
	}
}
