package e2e

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
	"smp/payments"
	"smp/sim"
)

func breakerState(t *testing.T, a *testApp, service string) float64 {
	t.Helper()
	mfs, _ := a.Registry.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "integration_circuit_breaker_state" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == service {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no integration_circuit_breaker_state{service=%q}", service)
	return -1
}

// TestSimulatedInsidePaysThroughWebhooks: the inside simulator answers a
// payment request with a signed webhook; duplicated and reordered
// deliveries and a wrongly signed one end with every order paid once.
func TestSimulatedInsidePaysThroughWebhooks(t *testing.T) {
	t.Parallel()
	inside := &sim.Inside{Secret: []byte("sim-secret"), AutoPay: true, PayAfter: 10 * time.Millisecond}
	srv := httptest.NewServer(inside)
	t.Cleanup(srv.Close)
	a := startApp(t, func(c *Config) {
		c.InsideURL, c.InsideWebhookSecrets, c.PaymentRetryBackoff = srv.URL, "sim-secret", 10*time.Millisecond
	})
	inside.WebhookURL = a.url + "/integrations/inside/payment-webhook"
	ctx := context.Background()
	var ids []string
	for i := 0; i < 10; i++ {
		r := a.do("POST", "/v1/orders", a.ds.Customers[0].Token, `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":300000}`)
		ids = append(ids, r.Body["id"].(string))
	}
	// Auto-paid, cleanly.
	if r := a.do("POST", "/v1/orders/"+ids[0]+"/pay", a.ds.Customers[0].Token, nil); r.Status != 201 {
		t.Fatalf("pay: %s", r.Raw)
	}
	inside.Wait()
	// The rest: delivered by hand with every fault on, in batches.
	inside.WebhookFaults.Set(func(f *sim.WebhookFaults) { f.DuplicateRate, f.Reorder = 1, true })
	var ws []payments.Webhook
	for _, id := range ids[1:] {
		ws = append(ws, payments.Webhook{EventID: "fail-" + id, EventType: smp.InsidePaymentFailed, OrderID: id, AmountVND: 300000, OccurredAt: time.Now()},
			payments.Webhook{EventID: "ok-" + id, EventType: smp.InsidePaymentSucceeded, OrderID: id, AmountVND: 300000, OccurredAt: time.Now()})
	}
	if n := inside.Deliver(ctx, ws...); n != 2*len(ws) {
		t.Fatalf("%d of %d deliveries acknowledged", n, 2*len(ws))
	}
	inside.WebhookFaults.Set(func(f *sim.WebhookFaults) { f.DuplicateRate, f.Reorder, f.WrongSignature = 0, false, true })
	if n := inside.Deliver(ctx, payments.Webhook{EventID: "forged", EventType: smp.InsidePaymentRefunded, OrderID: ids[1], AmountVND: 300000, OccurredAt: time.Now()}); n != 0 {
		t.Fatal("a wrongly signed webhook was acknowledged")
	}
	wait.Until(t, 15*time.Second, "every order paid", func() bool { return allPaid(t, a, ids) })
	evs, err := a.Store.FindInboxEvents(ctx, smp.InboxFilter{Limit: 1000})
	must(t, err)
	if len(evs) != 1+2*len(ids[1:]) {
		t.Fatalf("%d events in event_log, want %d (duplicates stored once, the forged one not at all)", len(evs), 1+2*len(ids[1:]))
	}
}

func allPaid(t *testing.T, a *testApp, ids []string) bool {
	for _, id := range ids {
		o, err := a.Store.FindOrderByID(context.Background(), id)
		must(t, err)
		if o.PaymentStatus != smp.PaymentPaid {
			return false
		}
	}
	return true
}
