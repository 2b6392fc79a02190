package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/auth"
	"smp/internal/wait"
	"smp/payments"
)

func (a *testApp) webhook(secret string, body any) response {
	a.t.Helper()
	b, _ := json.Marshal(body)
	return a.do("POST", "/integrations/inside/payment-webhook", "", string(b), payments.SignatureHeader, payments.Sign([]byte(secret), time.Now(), b))
}

// TestPaymentWebhookOverHTTP: the webhook endpoint's answers, the admin
// event endpoints (list, replay, bulk replay), mark-paid with roles, and
// the metrics the runbook's INC-002 alerts read.
func TestPaymentWebhookOverHTTP(t *testing.T) {
	t.Parallel()
	a := startApp(t, func(c *Config) {
		c.InsideWebhookSecrets, c.PaymentRetryBackoff, c.PaymentDueAfter = "old-secret,new-secret", 5*time.Millisecond, time.Millisecond
	})
	ctx := context.Background()
	must(t, a.Store.PutToken(ctx, auth.HashToken("fin-token"), "admin", "fiona", smp.RoleFinance))
	must(t, a.Store.PutToken(ctx, auth.HashToken("ops-token"), "admin", "olga", smp.RoleOps))
	cust := a.ds.Customers[0].Token
	create := func() string {
		r := a.do("POST", "/v1/orders", cust, `{"city":"HCMC","service":"plumbing","lat":10.78,"lng":106.7,"price_vnd":300000}`)
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Raw)
		}
		return r.Body["id"].(string)
	}
	o1 := create()
	// One occurred_at: a duplicate must be byte-identical, and a second
	// boundary crossed between two calls would make it a conflict.
	at := time.Now().UTC().Format(time.RFC3339)
	ev := func(id, typ, order string, amount int64) map[string]any {
		return map[string]any{"event_id": id, "event_type": typ, "order_id": order, "amount_vnd": amount, "occurred_at": at}
	}

	// Unsigned, badly signed, malformed, probe.
	if r := a.do("POST", "/integrations/inside/payment-webhook", "", `{"test":true}`); r.Status != 401 || r.Body["error"] == nil {
		t.Fatalf("unsigned: %d %s", r.Status, r.Raw)
	}
	if r := a.webhook("guess", ev("e1", smp.InsidePaymentSucceeded, o1, 300000)); r.Status != 401 {
		t.Fatalf("wrong secret: %d %s", r.Status, r.Raw)
	}
	if r := a.webhook("new-secret", map[string]any{"event_id": "e1"}); r.Status != 400 {
		t.Fatalf("malformed: %d %s", r.Status, r.Raw)
	}
	if r := a.webhook("new-secret", map[string]any{"test": true, "pad": strings.Repeat("x", 70<<10)}); r.Status != 413 {
		t.Fatalf("70 KiB body: %d %s", r.Status, r.Raw)
	}
	if r := a.webhook("old-secret", map[string]any{"test": true}); r.Status != 200 || r.Body["status"] != "test" {
		t.Fatalf("probe with the old secret (rotation): %d %s", r.Status, r.Raw)
	}
	// Valid, duplicate, conflicting.
	if r := a.webhook("new-secret", ev("e1", smp.InsidePaymentSucceeded, o1, 300000)); r.Status != 200 || r.Body["status"] != "received" {
		t.Fatalf("valid: %d %s", r.Status, r.Raw)
	}
	wait.Until(t, 10*time.Second, "order paid", func() bool {
		o, err := a.Store.FindOrderByID(ctx, o1)
		return err == nil && o.PaymentStatus == smp.PaymentPaid
	})
	if r := a.webhook("new-secret", ev("e1", smp.InsidePaymentSucceeded, o1, 300000)); r.Status != 200 || r.Body["status"] != "duplicate" {
		t.Fatalf("duplicate: %d %s", r.Status, r.Raw)
	}
	if r := a.webhook("new-secret", ev("e1", smp.InsidePaymentSucceeded, o1, 1)); r.Status != 409 {
		t.Fatalf("conflict: %d %s", r.Status, r.Raw)
	}

	// An unknown order: retried, then dlq; listed; replay needs the admin role.
	if r := a.webhook("new-secret", ev("e-lost", smp.InsidePaymentSucceeded, "ord_nope", 300000)); r.Status != 200 {
		t.Fatalf("unknown order: %d %s", r.Status, r.Raw)
	}
	var listed response
	wait.Until(t, 10*time.Second, "e-lost in dlq", func() bool {
		listed = a.do("GET", "/admin/events?status=dlq&event_type=inside.payment.succeeded", "ops-token", nil)
		return listed.Status == 200 && listed.Body["count"] == 1.0
	})
	e := listed.Body["events"].([]any)[0].(map[string]any)
	if e["event_id"] != "e-lost" || e["last_error"] != "order not found: ord_nope" || e["attempts"] != 5.0 {
		t.Fatalf("dlq event %v", e)
	}
	if r := a.do("GET", "/admin/events?status=lost", "ops-token", nil); r.Status != 400 {
		t.Fatalf("bad status filter: %d", r.Status)
	}
	if r := a.do("POST", "/admin/events/e-lost/replay", "ops-token", nil); r.Status != 403 {
		t.Fatalf("replay as ops: %d %s", r.Status, r.Raw)
	}
	if r := a.do("POST", "/admin/events/e-lost/replay", a.admin, nil); r.Status != 200 || r.Body["replayed"] != true {
		t.Fatalf("replay as admin: %d %s", r.Status, r.Raw)
	}
	if r := a.do("POST", "/admin/events/nope/replay", a.admin, nil); r.Status != 404 {
		t.Fatalf("replay of an unknown event: %d %s", r.Status, r.Raw)
	}
	wait.Until(t, 10*time.Second, "e-lost back in dlq", func() bool {
		ev, err := a.Store.FindInboxEvent(ctx, "e-lost")
		return err == nil && ev.Status == smp.InboxDLQ
	})
	if r := a.do("POST", "/admin/events/replay", a.admin, `{"event_type":"inside.payment.succeeded"}`); r.Status != 400 {
		t.Fatalf("bulk replay without a reason: %d %s", r.Status, r.Raw)
	}
	if r := a.do("POST", "/admin/events/replay", a.admin, `{"event_type":"inside.payment.succeeded","reason":"inside resent the orders"}`); r.Status != 200 || r.Body["replayed"] != 1.0 {
		t.Fatalf("bulk replay: %d %s", r.Status, r.Raw)
	}

	// Mark paid: finance only, with a reason, audited.
	o2 := create()
	if r := a.do("POST", "/admin/orders/"+o2+"/mark-paid", "ops-token", `{"reason":"reconciled"}`); r.Status != 403 {
		t.Fatalf("mark-paid as ops: %d", r.Status)
	}
	if r := a.do("POST", "/admin/orders/"+o2+"/mark-paid", "fin-token", `{}`); r.Status != 400 {
		t.Fatalf("mark-paid without reason: %d", r.Status)
	}
	if r := a.do("POST", "/admin/orders/"+o2+"/mark-paid", "fin-token", `{"reason":"inside txn 8812, reconciled"}`); r.Status != 200 || r.Body["changed"] != true {
		t.Fatalf("mark-paid: %d %s", r.Status, r.Raw)
	}
	audit := a.do("GET", "/admin/audit", a.admin, nil)
	if !strings.Contains(audit.Raw, `"action": "order.mark_paid"`) || !strings.Contains(audit.Raw, `"action": "event.replay"`) {
		t.Fatalf("audit: %s", audit.Raw)
	}

	// smp ctl events list: the runbook's DLQ query.
	wait.Until(t, 10*time.Second, "e-lost in dlq again after the bulk replay", func() bool {
		ev, err := a.Store.FindInboxEvent(ctx, "e-lost")
		return err == nil && ev.Status == smp.InboxDLQ
	})
	var out, errb bytes.Buffer
	must(t, run(ctx, []string{"ctl", "events", "list", "--status", "dlq", "--type", "inside.payment.succeeded", "--data-dir", a.Cfg.DataDir}, &out, &errb))
	if !strings.Contains(out.String(), "e-lost") || !strings.Contains(out.String(), "order not found: ord_nope") || !strings.Contains(out.String(), "1 events") {
		t.Fatalf("ctl events list:\n%s%s", out.String(), errb.String())
	}
	if err := run(ctx, []string{"ctl", "events", "list", "--status", "lost", "--data-dir", a.Cfg.DataDir}, &out, &errb); exitCode(err) != 2 {
		t.Fatalf("ctl events list --status lost: %v", err)
	}

	// Metrics.
	for name, want := range map[string]float64{"webhook_requests_total": 9, "smp_webhook_signature_failures_total": 2, "smp_webhook_event_conflicts_total": 1} {
		if got := metricValue(t, a, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metricValue(t, a, "webhook_processing_errors_total"); got < 5 {
		t.Errorf("webhook_processing_errors_total = %v, want at least 5", got)
	}
	if got := metricValue(t, a, "smp_event_log_events"); got != 2 {
		t.Errorf("smp_event_log_events = %v, want 2 (one processed, one dlq)", got)
	}
}

func signWebhook(secret string, body []byte) string {
	return payments.Sign([]byte(secret), time.Now(), body)
}
