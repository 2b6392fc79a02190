package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"

	"smp"
	"smp/internal/wait"
	"smp/sim"
)

// TestRedisOOMMidFlightRecovers (issue 15 item 4): Redis runs out of
// memory (INC-004) while a round waits on an open offer, a technician
// finishes a job and a new order arrives. Once Redis takes writes again,
// with no one acting: the offer that expired during the outage is settled
// and its order offered again, the technician freed by the completion is a
// candidate again (the engine's order.completed waited for Redis instead
// of being dead-lettered), and every order reaches an assignment.
func TestRedisOOMMidFlightRecovers(t *testing.T) {
	redisAddr(t) // CI gate: the out-of-memory Redis is started here
	t.Parallel()
	addr := startOOMRedis(t)
	a := startApp(t, func(c *Config) { c.RedisAddr, c.RedisPoolSize, c.InvitationTTL = addr, 4, 3*time.Second })
	t1 := a.ds.Technicians[0]
	i := slices.IndexFunc(a.ds.Technicians[1:], func(x sim.SeededTechnician) bool {
		return x.City == t1.City && slices.Contains(x.Skills, t1.Skills[0])
	})
	if i < 0 {
		t.Fatal("no second technician with the first one's city and skill in the dataset")
	}
	t2 := a.ds.Technicians[1+i]
	connect := func(tech sim.SeededTechnician) *wsClient {
		ws, _, err := a.dialTech(tech.Token)
		must(t, err)
		ws.next("welcome")
		ws.send(map[string]any{"type": "location", "lat": t1.Lat, "lng": t1.Lng, "ref": "l"})
		ws.next("ok")
		ws.send(map[string]any{"type": "availability", "available": true, "ref": "a"})
		ws.next("ok")
		return ws
	}
	ws1, ws2 := connect(t1), connect(t2)
	order := func() string {
		body := fmt.Sprintf(`{"city":%q,"service":%q,"lat":%f,"lng":%f,"price_vnd":300000,"address":"1 Lê Lợi"}`, t1.City, t1.Skills[0], t1.Lat, t1.Lng)
		r := a.do("POST", "/v1/orders", a.ds.Customers[0].Token, body)
		if r.Status != 201 {
			t.Fatalf("order: %d %s", r.Status, r.Raw)
		}
		return r.Body["id"].(string)
	}
	nextOffer := func(ws *wsClient, id string) {
		t.Helper()
		for {
			if m := ws.next("offer"); m["order_id"] == id {
				return
			}
		}
	}

	// o1 is T1's job; o3 waits on T2's open offer when Redis fills up.
	o1 := order()
	nextOffer(ws1, o1)
	ws1.send(map[string]any{"type": "accept", "order_id": o1, "ref": "acc"})
	if r := ws1.next("accept_result"); r["accepted"] != true {
		t.Fatalf("accept o1: %v", r)
	}
	o3 := order()
	nextOffer(ws2, o3)
	fillUntilOOM(t, addr)

	// During the outage: T1 finishes o1 (the database takes it), a new
	// order o2 arrives, and T2's offer of o3 expires unanswered.
	for _, step := range []string{"start", "complete"} {
		if r := a.do("POST", "/v1/jobs/"+o1+"/"+step, t1.Token, nil); r.Status != 200 {
			t.Fatalf("%s o1: %d %s", step, r.Status, r.Raw)
		}
	}
	o2 := order()
	// The outage lasts past o3's offer expiry and past the consumer's
	// retries of order.completed (5 attempts, about 1.5 s).
	outage := time.Now().Add(3*time.Second + 3*time.Second)
	wait.Until(t, 20*time.Second, "the outage lasting past the offer's expiry", func() bool { return time.Now().After(outage) })
	waiting := metricValue(t, a, "smp_dispatch_waiting_for_redis")
	freeFiller(t, addr)

	// Both technicians now accept whatever they are offered.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for _, ws := range []*wsClient{ws1, ws2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var m map[string]any
				if err := wsjson.Read(ctx, ws.c, &m); err != nil {
					return
				}
				if m["type"] == "offer" {
					wsjson.Write(ctx, ws.c, map[string]any{"type": "accept", "order_id": m["order_id"]})
				}
			}
		}()
	}
	wait.Until(t, 60*time.Second, "o2 and o3 assigned after Redis recovered", func() bool {
		for _, id := range []string{o2, o3} {
			o, err := a.Store.FindOrderByID(context.Background(), id)
			must(t, err)
			if o.Stage != smp.StageAssigned {
				return false
			}
		}
		return true
	})
	if v := consumerEvents(t, a, "dispatch-engine", "dead_lettered"); v != 0 {
		t.Fatalf("%v engine events dead-lettered during the outage", v)
	}
	if waiting < 1 {
		t.Fatalf("smp_dispatch_waiting_for_redis = %v during the outage, want the engine's order.completed waiting", waiting)
	}
	if v := metricValue(t, a, "smp_dispatch_waiting_for_redis"); v != 0 {
		t.Fatalf("smp_dispatch_waiting_for_redis = %v after recovery", v)
	}
	t.Logf("Redis refused %v engine writes during the outage; all retried, none dead-lettered", metricValue(t, a, "smp_dispatch_redis_refusals_total"))
}

// consumerEvents is smp_consumer_events_total{group, outcome}.
func consumerEvents(t *testing.T, a *testApp, group, outcome string) float64 {
	t.Helper()
	mfs, _ := a.Registry.Gather()
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != "smp_consumer_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["group"] == group && labels["outcome"] == outcome {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}
