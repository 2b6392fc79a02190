//go:build slow

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"smp"
	smpbus "smp/bus"
	"smp/dispatch"
	"smp/internal/sqldb"
	"smp/internal/wait"
	"smp/orders"
	"smp/sim"
)

// TestKafkaAllBrokersDownOneMinute (INC-006 scenario 3): every broker is
// gone for a minute under load. Orders are still accepted and their events
// wait in the outbox (nothing in memory to overflow); after recovery every
// event takes effect exactly once per consumer group, and a second
// publication of the whole outbox (a relay crash before marking, a
// re-snapshot) changes nothing.
func TestKafkaAllBrokersDownOneMinute(t *testing.T) {
	t.Parallel()
	k := startKafka(t)
	a := startKafkaApp(t, k)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	startTechnicians(t, ctx, &wg, a)
	cust := &sim.Customers{BaseURL: a.url, Customers: a.ds.Customers, Cities: a.ds.Cities, Services: a.ds.Services, Rate: 2.5, Seed: 11}
	cctx, stopCustomers := context.WithCancel(ctx)
	customersDone := make(chan struct{})
	go func() { defer close(customersDone); cust.Run(cctx) }()

	completed := func() int64 {
		n, err := a.Store.CountOrdersByStage(context.Background())
		must(t, err)
		return n[smp.StageCompleted]
	}
	wait.Until(t, 30*time.Second, "orders completing over Kafka", func() bool { return completed() >= 5 })

	k.down.Store(true)
	wait.Until(t, 30*time.Second, "kafka_broker_down = 3", func() bool { return metricValue(t, a, "kafka_broker_down") == 3 })
	if h := a.do("GET", "/health", "", nil); h.Status != 200 || h.Body["status"] != "degraded" {
		t.Fatalf("health with Kafka down: %d %s (want 200 degraded: restarting would not help)", h.Status, h.Raw)
	}
	createdAtOutage := len(cust.Created())
	outage := time.NewTimer(time.Minute)
	tick := time.NewTicker(2 * time.Second)
	backlog := 0.0
	for waiting := true; waiting; {
		select {
		case <-outage.C:
			waiting = false
		case <-tick.C:
			b := metricValue(t, a, "smp_outbox_backlog")
			if b < backlog {
				t.Fatalf("outbox backlog fell from %v to %v with every broker down", backlog, b)
			}
			backlog = b
		}
	}
	tick.Stop()
	accepted := len(cust.Created()) - createdAtOutage
	backlog = metricValue(t, a, "smp_outbox_backlog")
	if accepted < 100 || cust.Failures() > 0 {
		t.Fatalf("during the outage %d orders were accepted and %d refused; want >= 100 and none", accepted, cust.Failures())
	}
	if backlog < float64(accepted) {
		t.Fatalf("outbox backlog %v after the outage, want at least the %d orders' events", backlog, accepted)
	}
	t.Logf("outage: %d orders accepted, outbox backlog %v events", accepted, backlog)

	engineAtRecovery := consumed(a, dispatch.ConsumerGroup, smpbus.Applied)
	k.down.Store(false)
	recovered := time.Now()
	stopCustomers()
	<-customersDone
	ids := cust.Created()
	// Every order the platform holds is one the customers know of (an
	// order request in flight at their stop is finished, not dropped), so
	// the effects expected below are those of every order.
	byStage, err := a.Store.CountOrdersByStage(context.Background())
	must(t, err)
	if held := sumStages(byStage); held != int64(len(ids)) {
		t.Fatalf("the store holds %d orders, the customers created %d", held, len(ids))
	}
	wait.Until(t, 2*time.Minute, "outbox drained", func() bool { return metricValue(t, a, "smp_outbox_backlog") == 0 })
	t.Logf("recovery: outbox drained after %s", time.Since(recovered).Round(100*time.Millisecond))
	// The technicians are freed as dispatch-engine applies order.completed.
	wait.Until(t, 2*time.Minute, "dispatch-engine applying events again", func() bool {
		return consumed(a, dispatch.ConsumerGroup, smpbus.Applied) > engineAtRecovery
	})
	t.Logf("recovery: dispatch-engine applied events again after %s", time.Since(recovered).Round(100*time.Millisecond))
	wait.Until(t, 2*time.Minute, "every order dispatching or further", func() bool {
		n, err := a.Store.CountOrdersByStage(context.Background())
		must(t, err)
		return n[smp.StageCreated] == 0
	})
	t.Logf("recovery: order-svc consumed every order.created after %s", time.Since(recovered).Round(100*time.Millisecond))
	waitAllCompleted(t, a.Store, ids, 2*time.Minute)
	wait.Until(t, 30*time.Second, "outbox drained", func() bool { return metricValue(t, a, "smp_outbox_backlog") == 0 })
	t.Logf("recovery: %d orders completed %s after the brokers came back", len(ids), time.Since(recovered).Round(time.Second))
	checkLifecycles(t, a.Store, ids)

	wantOrderSvc, wantEngine := effects(t, a, ids)
	db, err := sql.Open("sqlite", mustDSN(t, filepath.Join(a.Cfg.DataDir, "smp.db")))
	must(t, err)
	defer db.Close()
	defer func() {
		if !t.Failed() {
			return
		}
		var recorded, events int
		_ = db.QueryRow(`SELECT COUNT(*) FROM processed_events WHERE consumer = ?`, dispatch.ConsumerGroup).Scan(&recorded)
		_ = db.QueryRow(`SELECT COUNT(*) FROM outbox WHERE event_type IN (?,?,?)`, smp.EventOrderAssigned, smp.EventOrderCompleted, smp.EventOrderCancelled).Scan(&events)
		t.Logf("dispatch-engine: %d events recorded, %d in the outbox; duplicates %v, ignored %v", recorded, events,
			consumed(a, dispatch.ConsumerGroup, smpbus.Duplicate), consumed(a, dispatch.ConsumerGroup, smpbus.Ignored))
	}()
	last := ""
	wait.Until(t, 30*time.Second, "every event applied", func() bool {
		orderSvc, engine := consumed(a, orders.ConsumerGroup, smpbus.Applied), consumed(a, dispatch.ConsumerGroup, smpbus.Applied)
		if now := fmt.Sprintf("applied: order-svc %v of %v, dispatch-engine %v of %v", orderSvc, wantOrderSvc, engine, wantEngine); now != last {
			t.Log(now)
			last = now
		}
		return orderSvc == wantOrderSvc && engine == wantEngine
	})
	// order-svc's redelivered order.created are recognised as applied
	// (duplicate) or, their orders already past 01_created, ignored.
	orderSvcSeen := func() float64 {
		return consumed(a, orders.ConsumerGroup, smpbus.Duplicate) + consumed(a, orders.ConsumerGroup, smpbus.Ignored)
	}
	dupOrderSvc, dupEngine := orderSvcSeen(), consumed(a, dispatch.ConsumerGroup, smpbus.Duplicate)

	// Publish the whole outbox again.
	_, err = db.Exec(`UPDATE outbox SET published_at = NULL`)
	must(t, err)
	wait.Until(t, 60*time.Second, "every event delivered again and recognised", func() bool {
		return orderSvcSeen() >= dupOrderSvc+float64(len(ids)) &&
			consumed(a, dispatch.ConsumerGroup, smpbus.Duplicate) >= dupEngine+wantEngine
	})
	if got := consumed(a, orders.ConsumerGroup, smpbus.Applied); got != wantOrderSvc {
		t.Fatalf("order-svc applied %v events after the replay, want %v", got, wantOrderSvc)
	}
	if got := consumed(a, dispatch.ConsumerGroup, smpbus.Applied); got != wantEngine {
		t.Fatalf("dispatch-engine applied %v events after the replay, want %v", got, wantEngine)
	}
	checkLifecycles(t, a.Store, ids)
}

// effects counts, over orders, the events each consumer group acts on:
// order-svc none (dispatch on commit writes every order in 02_dispatching;
// its intake applies an order.created only for an order left in
// 01_created, which this version never writes), dispatch-engine every
// move to 03, 05 or 09 (orders are queued on commit; the engine only
// drains the queue, so it ignores order.dispatching).
func effects(t *testing.T, a *testApp, ids []string) (orderSvc, engine float64) {
	t.Helper()
	for _, id := range ids {
		ts, err := a.Store.FindTransitions(context.Background(), id)
		must(t, err)
		for _, tr := range ts {
			switch tr.To {
			case smp.StageAssigned, smp.StageCompleted, smp.StageCancelled:
				engine++
			}
		}
	}
	return
}

func sumStages(n map[smp.Stage]int64) (sum int64) {
	for _, c := range n {
		sum += c
	}
	return sum
}

func mustDSN(t *testing.T, path string) string {
	dsn, err := sqldb.SQLiteDSN(path, false)
	must(t, err)
	return dsn
}
