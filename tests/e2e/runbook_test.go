package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"smp/app"
	"smp/runbook"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/internal/wait"
	"smp/sim"
)

// runbookCheck runs smp runbook check: its verdicts (stdout), and its
// error with what it said on stderr.
func runbookCheck(server string, args ...string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), append(append([]string{"runbook", "check"}, args...), "--server", server), &out, io.Discard)
	return out.String(), err
}

// expectHolds runs `smp runbook check id` until the condition is reported
// (exit 1, "CONDITION HOLDS", the triage case and mitigation wanted).
func expectHolds(t *testing.T, server, id string, wants ...string) string {
	t.Helper()
	var out string
	var err error
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last smp runbook check %s: %v\n%s", id, err, out)
		}
	})
	wait.Until(t, 60*time.Second, id+" reported", func() bool {
		out, err = runbookCheck(server, id)
		return errors.Is(err, errIncident) && strings.Contains(out, id) && strings.Contains(out, "CONDITION HOLDS")
	})
	if exitCode(err) != 1 {
		t.Fatalf("%s: exit %d", id, exitCode(err))
	}
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Fatalf("%s verdict lacks %q:\n%s", id, w, out)
		}
	}
	return out
}

// TestRunbookCheck induces each incident's condition on a running
// platform and checks `smp runbook check`'s verdict: healthy and exit 0
// before, the condition, its triage case and mitigation and exit 1 after.
func TestRunbookCheck(t *testing.T) {
	t.Parallel()
	inside := &sim.Inside{}
	insideSrv := httptest.NewServer(inside)
	t.Cleanup(insideSrv.Close)
	a := startApp(t, func(c *Config) {
		c.InsideURL, c.InsideWebhookSecrets, c.PaymentRetryBackoff = insideSrv.URL, "s", time.Millisecond
	})

	out, err := runbookCheck(a.url, "--all")
	if err != nil {
		t.Fatalf("healthy platform: %v\n%s", err, out)
	}
	for _, want := range []string{"INC-001 Dispatch engine down: healthy", "INC-002 Payment webhook failed: healthy", "INC-003 MySQL replica lag > 30s: not applicable",
		"INC-005 Integration circuit breaker triggered: healthy", "INC-006 Kafka broker down: not applicable", "INC-007 Consumer lag spike: healthy"} {
		if !strings.Contains(out, want) {
			t.Fatalf("healthy --all lacks %q:\n%s", want, out)
		}
	}
	if _, err := runbookCheck(a.url, "INC-042"); exitCode(err) != 2 {
		t.Fatalf("unknown incident: %v", err)
	}
	if _, err := runbookCheck(a.url); exitCode(err) != 2 {
		t.Fatalf("no incident: %v", err)
	}

	// INC-002: payments for an order that does not exist land in the DLQ.
	b, _ := json.Marshal(map[string]any{"event_id": "e1", "event_type": smp.InsidePaymentSucceeded, "order_id": "ord_nope", "amount_vnd": 1000, "occurred_at": time.Now().UTC()})
	if r := a.do("POST", "/integrations/inside/payment-webhook", "", string(b), "X-Signature", signWebhook("s", b)); r.Status != 200 {
		t.Fatalf("webhook: %d %s", r.Status, r.Raw)
	}
	expectHolds(t, a.url, "INC-002", "case 2", "Option A")

	// INC-005: inside stops answering; reads open the breaker.
	inside.SetDown(true)
	wait.Until(t, 30*time.Second, "breaker open", func() bool {
		a.do("GET", "/v1/me/profile", a.ds.Customers[0].Token, nil)
		return breakerState(t, a, "inside") == 1
	})
	expectHolds(t, a.url, "INC-005", "breaker open for inside", "half-open --service inside")

	// INC-007: the dispatch engine (the engine and its consumer group) stops
	// while 10,001 events arrive.
	must(t, a.StopModule(context.Background(), app.ServiceDispatchEngine))
	var msgs []smp.Message
	for i := 0; i < 10001; i++ {
		v, _ := json.Marshal(smp.Event{ID: fmt.Sprintf("lag-%d", i), Type: smp.EventOrderStarted, SchemaVersion: 1, AggregateID: fmt.Sprintf("o%d", i%97), Data: json.RawMessage(`{}`)})
		msgs = append(msgs, smp.Message{Topic: smp.TopicOrders, Key: fmt.Sprintf("o%d", i%97), Value: v})
	}
	must(t, a.Bus.Publish(context.Background(), msgs...))
	expectHolds(t, a.url, "INC-007", "group dispatch-engine lag", "scale consumers")

	// INC-001: the stopped engine.
	expectHolds(t, a.url, "INC-001", "dispatch_engine_up = 0", "Option A")
	out, err = runbookCheck(a.url, "--all", "--output", "json")
	var vs []map[string]any
	if !errors.Is(err, errIncident) || json.Unmarshal([]byte(out), &vs) != nil || len(vs) != len(runbook.Incidents) {
		t.Fatalf("--all --output json: %v\n%s", err, out)
	}
}

// TestRunbookCheckKafkaAndRedis: INC-006 with every broker gone and
// INC-004 with Redis out of memory.
func TestRunbookCheckKafkaAndRedis(t *testing.T) {
	redisAddr(t) // CI gate: the out-of-memory Redis is started here
	t.Parallel()
	k := startKafka(t)
	oom := startOOMRedis(t)
	a := startApp(t, func(c *Config) { c.KafkaBrokers, c.Partitions, c.RedisAddr, c.RedisPoolSize = k.brokers(), 12, oom, 4 })
	if out, err := runbookCheck(a.url, "INC-006"); err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("INC-006 before: %v\n%s", err, out)
	}
	if out, err := runbookCheck(a.url, "INC-004"); err != nil || !strings.Contains(out, "healthy") {
		t.Fatalf("INC-004 before: %v\n%s", err, out)
	}
	k.down.Store(true)
	expectHolds(t, a.url, "INC-006", "scenario 3", "outbox")
	k.down.Store(false)
	fillUntilOOM(t, oom)
	expectHolds(t, a.url, "INC-004", "cache:wms:stock")
}
