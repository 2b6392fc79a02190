package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"smp"
	"smp/internal/wait"
	"smp/sim"
)

// TestSuspendConnectedTechnician: a service whose skill (aircon) is not
// its code (ac_repair), onboarded while the platform runs, is offered to
// the technicians with that skill; one of them, connected, is suspended
// through the admin API: their WebSocket is told (logged_out) and closed
// at once, and the next order is offered to the other technician and
// never to them. On the embedded default, and on MySQL and Redis with the
// technician connected to another process than the one ops call.
func TestSuspendConnectedTechnician(t *testing.T) {
	t.Parallel()
	t.Run("Embedded", func(t *testing.T) {
		t.Parallel()
		a := startApp(t, func(c *Config) { c.InvitationTTL = 30 * time.Second })
		testSuspendConnected(t, a, a, a.ds)
	})
	t.Run("MySQLRedis", func(t *testing.T) {
		if testing.Short() {
			t.Skip("process-level test")
		}
		t.Parallel()
		dsn, raddr, prefix, ds, _ := sharedBackends(t, 3)
		api := startSharedApp(t, dsn, raddr, prefix, "api", ds)
		eng := startSharedApp(t, dsn, raddr, prefix, "all", ds)
		testSuspendConnected(t, api, eng, ds)
	})
}

// testSuspendConnected: ops call api; the technicians connect to ws.
func testSuspendConnected(t *testing.T, api, ws *testApp, ds *sim.Dataset) {
	if r := api.do("POST", "/admin/services", api.admin, map[string]any{"code": "ac_repair", "name": "Sửa máy lạnh", "skill": "aircon",
		"price_vnd": 300000, "commission_pct": 10}); r.Status != 201 {
		t.Fatalf("create service: %d %s", r.Status, r.Raw)
	}
	t1, t2 := ds.Technicians[0], ds.Technicians[1]
	place := map[string][2]float64{t1.ID: {10.7810, 106.7010}, t2.ID: {10.7830, 106.7010}}
	conns := map[string]*wsClient{}
	for _, tech := range []sim.SeededTechnician{t1, t2} {
		p := place[tech.ID]
		if r := api.do("PATCH", "/admin/technicians/"+tech.ID, api.admin, map[string]any{"city": "HCMC", "skills": []string{"aircon"},
			"lat": p[0], "lng": p[1], "reason": "moved to HCMC aircon"}); r.Status != 200 {
			t.Fatalf("patch %s: %d %s", tech.ID, r.Status, r.Raw)
		}
		c, _, err := ws.dialTech(tech.Token)
		must(t, err)
		c.next("welcome")
		c.send(map[string]any{"type": "location", "lat": p[0], "lng": p[1], "ref": "l"})
		c.next("ok")
		c.send(map[string]any{"type": "availability", "available": true, "ref": "a"})
		c.next("ok")
		conns[tech.ID] = c
	}
	order := func() string {
		r := api.do("POST", "/v1/orders", ds.Customers[0].Token,
			`{"city":"HCMC","service":"ac_repair","lat":10.7800,"lng":106.7000,"price_vnd":300000,"address":"1 Lê Lợi"}`)
		if r.Status != 201 {
			t.Fatalf("order: %d %s", r.Status, r.Raw)
		}
		return r.Body["id"].(string)
	}

	// Both have the service's skill: both are offered the first order.
	o1 := order()
	for id, c := range conns {
		if m := c.next("offer"); m["order_id"] != o1 {
			t.Fatalf("%s: offer %v, want %s", id, m, o1)
		}
	}
	conns[t2.ID].send(map[string]any{"type": "decline", "order_id": o1, "reason": "busy", "ref": "d"})
	conns[t2.ID].next("ok")

	// Suspended while connected (and holding an offer): told, then closed.
	if r := api.do("POST", "/admin/technicians/"+t1.ID+"/deactivate", api.admin, map[string]string{"reason": "fraud investigation"}); r.Status != 200 {
		t.Fatalf("suspend %s: %d %s", t1.ID, r.Status, r.Raw)
	}
	if m := conns[t1.ID].next(smp.MessageLoggedOut); m["reason"] != "account suspended" {
		t.Fatalf("logged_out = %v", m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		var m map[string]any
		err := wsjson.Read(ctx, conns[t1.ID].c, &m)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
				t.Fatalf("the suspended technician's WebSocket ended with %v, want 1008", err)
			}
			break
		}
		if m["type"] == "offer" {
			t.Fatalf("the suspended technician got an offer after logged_out: %v", m)
		}
	}

	// The next order goes to the other technician, never to them.
	o2 := order()
	if m := conns[t2.ID].next("offer"); m["order_id"] != o2 {
		t.Fatalf("%s: offer %v, want %s", t2.ID, m, o2)
	}
	tr, err := ws.Engine.Trace(context.Background(), o2)
	must(t, err)
	var offered []string
	for _, o := range tr.Offers {
		offered = append(offered, o.TechnicianID)
	}
	if slices.Contains(offered, t1.ID) || !slices.Contains(offered, t2.ID) {
		t.Fatalf("offers of the next order went to %v (suspended %s)", offered, t1.ID)
	}
	// Their offer of the first order was withdrawn, not left to expire
	// (30 s).
	wait.Until(t, 10*time.Second, "the suspended technician's offer withdrawn", func() bool {
		tr, err := ws.Engine.Trace(context.Background(), o1)
		return err == nil && slices.ContainsFunc(tr.Offers, func(o smp.OfferRecord) bool {
			return o.TechnicianID == t1.ID && o.State == smp.InvitationWithdrawn
		})
	})
}
