package e2e

import (
	"context"
	"fmt"
	"net/http"
	"smp/internal/wait"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"smp"
	"smp/auth"
)

type wsClient struct {
	t testing.TB
	c *websocket.Conn
}

func (a *testApp) dialTech(token string) (*wsClient, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hdr := http.Header{}
	if token != "" {
		hdr.Set("Authorization", "Bearer "+token)
	}
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(a.url, "http")+"/v1/technicians/ws", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		return nil, resp, err
	}
	a.t.Cleanup(func() { c.CloseNow() })
	return &wsClient{t: a.t, c: c}, resp, nil
}

func (w *wsClient) send(v any) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(w.t, wsjson.Write(ctx, w.c, v))
}

func (w *wsClient) nextAny() map[string]any {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var m map[string]any
	if err := wsjson.Read(ctx, w.c, &m); err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return m
}

// next reads messages until one of type typ arrives.
func (w *wsClient) next(typ string) map[string]any {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		var m map[string]any
		if err := wsjson.Read(ctx, w.c, &m); err != nil {
			w.t.Fatalf("waiting for %q: %v", typ, err)
		}
		if m["type"] == typ {
			return m
		}
	}
}

func TestTechnicianWebSocketFlow(t *testing.T) {
	t.Parallel()
	a := startApp(t, func(c *Config) { c.InvitationTTL = 30 * time.Second })
	tech := a.ds.Technicians[0]
	if _, resp, err := a.dialTech(""); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("dial without token: %v", err)
	}
	if _, resp, err := a.dialTech(a.ds.Customers[0].Token); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("dial with a customer token: %v", err)
	}

	ws, _, err := a.dialTech(tech.Token)
	must(t, err)
	if w := ws.next("welcome"); w["technician_id"] != tech.ID {
		t.Fatalf("welcome = %v", w)
	}
	ws.send(map[string]any{"type": "heartbeat", "ref": "h1"})
	if r := ws.next("heartbeat_ack"); r["ref"] != "h1" {
		t.Fatalf("heartbeat reply = %v", r)
	}
	ws.send(map[string]any{"type": "bogus", "ref": "b1"})
	if r := ws.next("error"); r["code"] != smp.EINVALID {
		t.Fatalf("unknown type reply = %v", r)
	}
	ws.send(map[string]any{"type": "location", "lat": 999, "lng": 0, "ref": "l0"})
	if r := ws.next("error"); r["ref"] != "l0" {
		t.Fatalf("bad location reply = %v", r)
	}
	ws.send(map[string]any{"type": "location", "lat": tech.Lat, "lng": tech.Lng, "ref": "l1"})
	ws.next("ok")
	ws.send(map[string]any{"type": "availability", "available": true, "ref": "a1"})
	ws.next("ok")

	cust := a.ds.Customers[0].Token
	body := fmt.Sprintf(`{"city":%q,"service":%q,"lat":%f,"lng":%f,"price_vnd":420000,"address":"12 Lê Lợi"}`, tech.City, tech.Skills[0], tech.Lat, tech.Lng)
	r := a.do("POST", "/v1/orders", cust, body)
	if r.Status != 201 {
		t.Fatal(r.Raw)
	}
	orderID := r.Body["id"].(string)
	offer := ws.next("offer")
	if offer["order_id"] != orderID || offer["price_vnd"] != float64(420000) || offer["expires_at"] == nil {
		t.Fatalf("offer = %v", offer)
	}
	ws.send(map[string]any{"type": "ack", "order_id": orderID, "ref": "k1"})
	ws.next("ok")

	// Reconnect: the open offer comes again.
	ws.c.Close(websocket.StatusNormalClosure, "moving")
	ws2, _, err := a.dialTech(tech.Token)
	must(t, err)
	ws2.next("welcome")
	if again := ws2.next("offer"); again["order_id"] != orderID || again["invitation_id"] != offer["invitation_id"] {
		t.Fatalf("resumed offer = %v, want %v", again, offer)
	}
	ws2.send(map[string]any{"type": "accept", "order_id": orderID, "ref": "acc"})
	// Both come, in either order: the reply and the push of the job.
	got := map[string]map[string]any{}
	for len(got) < 2 {
		m := ws2.nextAny()
		if m["type"] == "accept_result" || m["type"] == "assigned" {
			got[m["type"].(string)] = m
		}
	}
	if got["accept_result"]["accepted"] != true || got["assigned"]["order_id"] != orderID {
		t.Fatalf("after accept: %v", got)
	}

	// The trace shows the offer's delivery and acceptance.
	tr := a.do("GET", "/admin/orders/"+orderID+"/dispatch-trace", a.admin, nil)
	offers, _ := tr.Body["offers"].([]any)
	if len(offers) != 1 {
		t.Fatalf("trace = %s", tr.Raw)
	}
	of := offers[0].(map[string]any)
	if of["state"] != "accepted" || of["delivered_at"] == nil || of["responded_at"] == nil || of["rank_reason"] == "" {
		t.Fatalf("trace offer = %v", of)
	}
	st := a.do("GET", "/admin/stats", a.admin, nil)
	if st.Body["websocket_connections"] != float64(1) {
		t.Fatalf("stats = %s", st.Raw)
	}

	// The technician works the job; the customer sees it completed.
	if r := a.do("POST", "/v1/jobs/"+orderID+"/complete", tech.Token, nil); r.Status != 409 {
		t.Fatalf("complete before start: %d %s", r.Status, r.Raw)
	}
	if r := a.do("POST", "/v1/jobs/"+orderID+"/start", a.ds.Technicians[1].Token, nil); r.Status != 403 {
		t.Fatalf("start by another technician: %d %s", r.Status, r.Raw)
	}
	for _, step := range []string{"start", "start", "complete", "complete", "start"} {
		// Repeating a step (a retry after a lost response) is harmless.
		if r := a.do("POST", "/v1/jobs/"+orderID+"/"+step, tech.Token, nil); r.Status != 200 {
			t.Fatalf("%s: %d %s", step, r.Status, r.Raw)
		}
	}
	view := a.do("GET", "/v1/orders/"+orderID, cust, nil)
	ts, _ := view.Body["transitions"].([]any)
	var stages []string
	for _, x := range ts {
		m := x.(map[string]any)
		stages = append(stages, m["to"].(string))
		if m["actor"] == "" || m["at"] == nil || m["reason"] == "" {
			t.Fatalf("transition without actor, time or reason: %v", m)
		}
	}
	if got := strings.Join(stages, ","); got != "01_created,02_dispatching,03_assigned,04_in_progress,05_completed" {
		t.Fatalf("stages = %s", got)
	}
}

// TestManualDispatchOverHTTP is the runbook's INC-001 options C and D
// through the admin API: auto dispatch off, ops find the stuck order and a
// free technician, assign with a reason; the technician is told and the
// audit log has it.
func TestManualDispatchOverHTTP(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	ctx := context.Background()
	opsToken := "ops-olga"
	must(t, a.Store.PutToken(ctx, auth.HashToken(opsToken), "admin", "olga", smp.RoleOps))
	if r := a.do("PUT", "/admin/flags/ENABLE_AUTO_DISPATCH", opsToken, map[string]any{"value": false, "reason": "INC-001 option D"}); r.Status != 200 {
		t.Fatal(r.Raw)
	}
	tech := a.ds.Technicians[2]
	ws, _, err := a.dialTech(tech.Token)
	must(t, err)
	ws.next("welcome")
	ws.send(map[string]any{"type": "location", "lat": tech.Lat, "lng": tech.Lng, "ref": "l"})
	ws.next("ok")
	ws.send(map[string]any{"type": "availability", "available": true, "ref": "a"})
	ws.next("ok")
	body := fmt.Sprintf(`{"city":%q,"service":%q,"lat":%f,"lng":%f,"price_vnd":300000}`, tech.City, tech.Skills[0], tech.Lat, tech.Lng)
	id, _ := a.do("POST", "/v1/orders", a.ds.Customers[0].Token, body).Body["id"].(string)

	var stuck []any
	wait.Until(t, 10*time.Second, "the order listed as waiting in 02", func() bool {
		stuck, _ = a.do("GET", "/admin/orders?stage=02_dispatching", opsToken, nil).Body["orders"].([]any)
		return len(stuck) == 1
	})
	if r := a.do("GET", "/admin/orders?stage=bogus", opsToken, nil); r.Status != 400 {
		t.Fatalf("bad stage filter: %d", r.Status)
	}
	cands, _ := a.do("GET", "/admin/orders/"+id+"/candidates", opsToken, nil).Body["candidates"].([]any)
	if len(cands) == 0 || cands[0].(map[string]any)["technician_id"] != tech.ID {
		t.Fatalf("candidates = %v", cands)
	}
	if r := a.do("POST", "/admin/orders/"+id+"/assign", opsToken, map[string]any{"technician_id": tech.ID}); r.Status != 400 {
		t.Fatalf("assign without reason: %d %s", r.Status, r.Raw)
	}
	r := a.do("POST", "/admin/orders/"+id+"/assign", opsToken, map[string]any{"technician_id": tech.ID, "reason": "engine down, customer waiting"})
	if r.Status != 200 || r.Body["stage"] != string(smp.StageAssigned) {
		t.Fatalf("assign: %d %s", r.Status, r.Raw)
	}
	if m := ws.next("assigned"); m["order_id"] != id {
		t.Fatalf("assigned = %v", m)
	}
	entries, _ := a.do("GET", "/admin/audit", opsToken, nil).Body["entries"].([]any)
	if len(entries) != 2 {
		t.Fatalf("audit = %v", entries)
	}
	last := entries[0].(map[string]any)
	if last["actor"] != "olga" || last["role"] != "ops" || last["target"] != "order:"+id || last["reason"] != "engine down, customer waiting" ||
		!strings.Contains(last["before"].(string), "02_dispatching") || !strings.Contains(last["after"].(string), tech.ID) || last["at"] == nil {
		t.Fatalf("audit entry = %v", last)
	}
	if first := entries[1].(map[string]any); first["action"] != "flag.set" || first["before"] != "true" || first["after"] != "false" {
		t.Fatalf("flag audit entry = %v", first)
	}
}
