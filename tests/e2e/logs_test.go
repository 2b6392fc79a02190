package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
	"smp/sim"
)

// TestLogsGrepFindsRealFailuresOnly: the platform's logs are JSON lines
// (time, level, msg). A normal day with the usual client mistakes
// (bad input, unknown tokens, missing orders, forged and duplicated
// webhooks) writes no line the runbook's grep -E "ERROR|FATAL|panic"
// finds; real failures (a payment that cannot be applied, a poison event)
// do, with the order or event they concern.
func TestLogsGrepFindsRealFailuresOnly(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	insideSrv := httptest.NewServer(&sim.Inside{})
	t.Cleanup(insideSrv.Close)
	a := startAppLogging(t, func(c *Config) {
		c.InsideURL, c.InsideWebhookSecrets, c.PaymentRetryBackoff = insideSrv.URL, "s", time.Millisecond
		c.LogLevel = "debug" // every line, requests included
	}, &logs)
	grep := regexp.MustCompile(`ERROR|FATAL|panic`)

	ids := runLoad(t, a, 10, 20)
	cust := a.ds.Customers[0].Token
	for _, req := range []struct{ method, path, token, body string }{
		{"POST", "/v1/orders", cust, `{"city":"XX"}`},
		{"GET", "/v1/orders/" + ids[0], "not-a-token", ""},
		{"GET", "/v1/orders/ord_nope", cust, ""},
		{"POST", "/v1/orders/" + ids[0] + "/cancel", cust, ""},
		{"GET", "/admin/stats", "", ""},
		{"POST", "/integrations/inside/payment-webhook", "", `{"test":true}`},
	} {
		var body any
		if req.body != "" {
			body = req.body
		}
		if r := a.do(req.method, req.path, req.token, body); r.Status < 400 || r.Status >= 500 {
			t.Fatalf("%s %s: %d, want a client error", req.method, req.path, r.Status)
		}
	}
	o0, err := a.Store.FindOrderByID(context.Background(), ids[0])
	must(t, err)
	paid, _ := json.Marshal(map[string]any{"event_id": "ok-1", "event_type": smp.InsidePaymentSucceeded, "order_id": ids[0], "amount_vnd": o0.PriceVND, "occurred_at": time.Now().UTC()})
	for i := 0; i < 2; i++ { // a duplicate
		a.do("POST", "/integrations/inside/payment-webhook", "", string(paid), "X-Signature", signWebhook("s", paid))
	}
	wait.Until(t, 10*time.Second, "the payment applied", func() bool {
		o, err := a.Store.FindOrderByID(context.Background(), ids[0])
		return err == nil && o.PaymentStatus == smp.PaymentPaid
	})
	if lines := grep.FindAllString(logs.String(), -1); len(lines) > 0 {
		t.Fatalf("a normal day matched the runbook's grep:\n%s", matching(logs.String(), grep))
	}

	// Real failures.
	lost, _ := json.Marshal(map[string]any{"event_id": "lost-1", "event_type": smp.InsidePaymentSucceeded, "order_id": "ord_gone", "amount_vnd": 1000, "occurred_at": time.Now().UTC()})
	a.do("POST", "/integrations/inside/payment-webhook", "", string(lost), "X-Signature", signWebhook("s", lost))
	must(t, a.Bus.Publish(context.Background(), smp.Message{Topic: smp.TopicOrders, Key: "k", Value: []byte("garbage")}))
	wait.Until(t, 30*time.Second, "both failures logged as ERROR", func() bool {
		s := matching(logs.String(), grep)
		return strings.Contains(s, `"order_id":"ord_gone"`) && strings.Contains(s, "event dead-lettered")
	})
	// Every line is a JSON object with time, level and msg.
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m["time"] == nil || m["level"] == nil || m["msg"] == nil {
			t.Fatalf("log line is not structured JSON: %s", sc.Text())
		}
		n++
	}
	// Requests carry their id; order events their order id.
	all := logs.String()
	if !regexp.MustCompile(`"msg":"http request".*"request_id":"[0-9a-f-]{36}"`).MatchString(all) || !strings.Contains(all, `"order_id":"`+ids[1]+`"`) {
		t.Fatalf("logs lack request ids or order ids:\n%s", all[:min(len(all), 4000)])
	}
	t.Logf("%d JSON log lines; ERROR lines:\n%s", n, matching(all, grep))
}

func matching(text string, re *regexp.Regexp) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if re.MatchString(l) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
