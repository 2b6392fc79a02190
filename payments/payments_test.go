package payments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp"
	"smp/orders"
	"smp/payments"
	"smp/sim"
	"smp/sqlstore"
)

var secret = []byte("whsec_test_1")

// clock is the tests' settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time         { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration)    { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock                  { return &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)} }
func sign(c *clock, body []byte) string { return payments.Sign(secret, c.Now(), body) }
func body(w payments.Webhook) []byte    { b, _ := json.Marshal(w); return b }

type fixture struct {
	store  *sqlstore.DB
	orders *orders.Service
	svc    *payments.Service
	clock  *clock
	reg    *prometheus.Registry
	cust   string
}

func newFixture(t *testing.T) *fixture { return newFixtureTB(t) }

func newFixtureTB(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ds, err := sim.Seed(ctx, store, sim.SeedConfig{Partners: 1, Technicians: 1, Customers: 1, Seed: 1}, func(s string) string { return s })
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	ord, err := orders.New(ctx, store, orders.Config{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	svc, err := payments.New(store, payments.Config{Secrets: [][]byte{secret}, MaxAttempts: 3, Backoff: time.Second, Now: c.Now, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: store, orders: ord, svc: svc, clock: c, reg: reg, cust: ds.Customers[0].ID}
}

func (f *fixture) order(t *testing.T, price int64) *smp.Order {
	t.Helper()
	o, err := f.orders.CreateOrder(context.Background(), f.cust, smp.NewOrder{City: "HCMC", Service: "plumbing", Lat: 10.78, Lng: 106.7, PriceVND: price})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (f *fixture) send(t *testing.T, w payments.Webhook) (payments.Ingested, error) {
	t.Helper()
	b := body(w)
	return f.svc.Ingest(context.Background(), sign(f.clock, b), b)
}

func (f *fixture) event(t *testing.T, id string) *smp.InboxEvent {
	t.Helper()
	e, err := f.store.FindInboxEvent(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (f *fixture) paymentStatus(t *testing.T, id string) smp.PaymentStatus {
	t.Helper()
	o, err := f.store.FindOrderByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return o.PaymentStatus
}

// paymentEvents counts payment.status_changed events of an order in the outbox.
func (f *fixture) paymentEvents(t *testing.T, orderID string) int {
	t.Helper()
	recs, err := f.store.FetchOutbox(context.Background(), 100000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Event.Type == smp.EventPaymentChanged && r.Event.AggregateID == orderID {
			n++
		}
	}
	return n
}

func wh(id, typ, order string, amount int64) payments.Webhook {
	return payments.Webhook{EventID: id, EventType: typ, OrderID: order, AmountVND: amount, OccurredAt: time.Date(2026, 11, 23, 9, 59, 0, 0, time.UTC)}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := []byte(`{"event_id":"e1"}`)
	old, cur := []byte("old-secret"), []byte("new-secret")
	good := payments.Sign(cur, now, b)
	v1 := func(h string) string { _, v, _ := strings.Cut(h, ",v1="); return v }
	for name, tc := range map[string]struct {
		header  string
		secrets [][]byte
		at      time.Time
		want    error
	}{
		"valid":                 {good, [][]byte{cur}, now, nil},
		"rotation: either":      {good, [][]byte{old, cur}, now, nil},
		"several v1, one good":  {fmt.Sprintf("t=%d,v1=%s,v1=%s", now.Unix(), v1(payments.Sign(old, now, b)), v1(good)), [][]byte{cur}, now, nil},
		"unknown scheme added":  {good + ",v0=abc", [][]byte{cur}, now, nil},
		"4m59s old":             {good, [][]byte{cur}, now.Add(299 * time.Second), nil},
		"5m01s old":             {good, [][]byte{cur}, now.Add(301 * time.Second), payments.ErrSignatureExpired},
		"from the future":       {good, [][]byte{cur}, now.Add(-301 * time.Second), payments.ErrSignatureExpired},
		"wrong secret":          {good, [][]byte{old}, now, payments.ErrSignatureMismatch},
		"other body":            {payments.Sign(cur, now, []byte(`{"event_id":"e2"}`)), [][]byte{cur}, now, payments.ErrSignatureMismatch},
		"missing":               {"", [][]byte{cur}, now, payments.ErrSignatureMissing},
		"no t":                  {"v1=" + v1(good), [][]byte{cur}, now, payments.ErrSignatureMalformed},
		"no v1":                 {fmt.Sprintf("t=%d", now.Unix()), [][]byte{cur}, now, payments.ErrSignatureMalformed},
		"short v1":              {fmt.Sprintf("t=%d,v1=abcd", now.Unix()), [][]byte{cur}, now, payments.ErrSignatureMalformed},
		"not hex":               {fmt.Sprintf("t=%d,v1=%s", now.Unix(), strings.Repeat("z", 64)), [][]byte{cur}, now, payments.ErrSignatureMalformed},
		"two t":                 {fmt.Sprintf("t=%d,", now.Unix()) + good, [][]byte{cur}, now, payments.ErrSignatureMalformed},
		"t not a number":        {"t=soon,v1=" + v1(good), [][]byte{cur}, now, payments.ErrSignatureMalformed},
		"no secrets configured": {good, nil, now, payments.ErrSignatureMismatch},
	} {
		if err := payments.Verify(tc.header, b, tc.secrets, tc.at); err != tc.want {
			t.Errorf("%s: Verify = %v, want %v", name, err, tc.want)
		}
	}
}

func TestIngest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	o := f.order(t, 300000)

	// The runbook's probe.
	probe := []byte(`{"test":true}`)
	if r, err := f.svc.Ingest(ctx, sign(f.clock, probe), probe); err != nil || r.Status != "test" {
		t.Fatalf("probe: %+v %v", r, err)
	}
	// Bad signature: refused, counted, nothing stored.
	b := body(wh("e1", smp.InsidePaymentSucceeded, o.ID, 300000))
	if _, err := f.svc.Ingest(ctx, payments.Sign([]byte("wrong"), f.clock.Now(), b), b); smp.ErrorCode(err) != smp.EUNAUTHORIZED {
		t.Fatalf("bad signature: %v", err)
	}
	if _, err := f.store.FindInboxEvent(ctx, "e1"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("a badly signed webhook was stored: %v", err)
	}
	if v := testutil.ToFloat64(f.svc.SignatureFailures("mismatch")); v != 1 {
		t.Fatalf("signature failures = %v", v)
	}
	// Malformed bodies: EINVALID, nothing stored.
	for _, bad := range []string{`not json`, `{"test":false}`, `{"test":true,"x":1}`, `{"event_id":"e9","event_type":"inside.payment.lost","order_id":"o","amount_vnd":1,"occurred_at":"2026-11-23T10:00:00Z"}`,
		`{"event_id":"e9","event_type":"inside.payment.succeeded","order_id":"o","amount_vnd":1.5,"occurred_at":"2026-11-23T10:00:00Z"}`,
		`{"event_id":"e9","event_type":"inside.payment.succeeded","order_id":"o","amount_vnd":-1,"occurred_at":"2026-11-23T10:00:00Z"}`,
		`{"event_id":"e9","event_type":"inside.payment.succeeded","order_id":"","amount_vnd":1,"occurred_at":"2026-11-23T10:00:00Z"}`,
		`{"event_id":"e9","event_type":"inside.payment.succeeded","order_id":"o","amount_vnd":1}`} {
		if _, err := f.svc.Ingest(ctx, sign(f.clock, []byte(bad)), []byte(bad)); smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("%s: %v, want EINVALID", bad, err)
		}
	}
	// Valid: stored as received before the answer.
	if r, err := f.svc.Ingest(ctx, sign(f.clock, b), b); err != nil || r.Status != "received" {
		t.Fatalf("valid webhook: %+v %v", r, err)
	}
	if e := f.event(t, "e1"); e.Status != smp.InboxReceived || e.AmountVND != 300000 || e.OrderID != o.ID {
		t.Fatalf("stored %+v", e)
	}
	// Same id, same body: a duplicate; same id, other body: a conflict, counted.
	if r, err := f.svc.Ingest(ctx, sign(f.clock, b), b); err != nil || r.Status != "duplicate" {
		t.Fatalf("duplicate: %+v %v", r, err)
	}
	other := body(wh("e1", smp.InsidePaymentSucceeded, o.ID, 1))
	if _, err := f.svc.Ingest(ctx, sign(f.clock, other), other); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("conflict: %v", err)
	}
	if v := testutil.ToFloat64(f.svc.Conflicts()); v != 1 {
		t.Fatalf("conflicts = %v", v)
	}
	// Processing applies it once, with its outbox event.
	if n, err := f.svc.ProcessDue(ctx); err != nil || n != 1 {
		t.Fatalf("process: %d %v", n, err)
	}
	if st := f.paymentStatus(t, o.ID); st != smp.PaymentPaid {
		t.Fatalf("payment status %s", st)
	}
	if e := f.event(t, "e1"); e.Status != smp.InboxProcessed || e.ProcessedAt == nil {
		t.Fatalf("event after processing: %+v", e)
	}
	if n := f.paymentEvents(t, o.ID); n != 1 {
		t.Fatalf("%d payment events, want 1", n)
	}
}

// TestUnknownOrderDLQThenReplay (INC-002 case 2, option A): webhooks for
// an order that does not exist yet are retried with backoff and land in
// dlq with their error; once the order exists, a replay applies each
// payment exactly once, and a second replay changes nothing.
func TestUnknownOrderDLQThenReplay(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.send(t, wh("e-early", smp.InsidePaymentSucceeded, "ord_later", 250000)); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 3; attempt++ {
		if _, err := f.svc.ProcessDue(ctx); err != nil {
			t.Fatal(err)
		}
		e := f.event(t, "e-early")
		if e.Attempts != attempt || !strings.Contains(e.LastError, "order not found") {
			t.Fatalf("attempt %d: %+v", attempt, e)
		}
		if attempt < 3 {
			if e.Status != smp.InboxReceived {
				t.Fatalf("attempt %d: status %s, want received (retrying)", attempt, e.Status)
			}
			// Not due before its backoff (1 s, then 2 s).
			if n, _ := f.svc.ProcessDue(ctx); n != 0 || f.event(t, "e-early").Attempts != attempt {
				t.Fatalf("retried before the backoff elapsed")
			}
			f.clock.Add(time.Second << (attempt - 1))
		} else if e.Status != smp.InboxDLQ {
			t.Fatalf("after %d attempts status %s, want dlq", attempt, e.Status)
		}
	}
	if v := testutil.ToFloat64(f.svc.ProcessingErrors("order_not_found")); v != 3 {
		t.Fatalf("processing errors = %v", v)
	}
	dlq, err := f.store.FindInboxEvents(ctx, smp.InboxFilter{Status: smp.InboxDLQ, EventType: smp.InsidePaymentSucceeded})
	if err != nil || len(dlq) != 1 {
		t.Fatalf("dlq listing: %v %v", dlq, err)
	}

	// The order appears (the order service caught up).
	f.insertOrder(t, "ord_later", 250000)
	ops := smp.Principal{Name: "alice", Role: smp.RoleAdmin}
	e, replayed, err := f.svc.Replay(ctx, "e-early", ops, "order exists now")
	if err != nil || !replayed || e.Status != smp.InboxProcessed {
		t.Fatalf("replay: %+v %v %v", e, replayed, err)
	}
	if st := f.paymentStatus(t, "ord_later"); st != smp.PaymentPaid {
		t.Fatalf("after replay: %s", st)
	}
	// Replaying again, or replaying an event that is not in the DLQ, changes nothing.
	if _, replayed, err := f.svc.Replay(ctx, "e-early", ops, ""); err != nil || replayed {
		t.Fatalf("second replay: %v %v", replayed, err)
	}
	if n := f.paymentEvents(t, "ord_later"); n != 1 {
		t.Fatalf("%d payment events, want 1", n)
	}
	if _, _, err := f.svc.Replay(ctx, "nope", ops, ""); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("replay of an unknown event: %v", err)
	}
}

func (f *fixture) insertOrder(t *testing.T, id string, price int64) {
	t.Helper()
	ctx := context.Background()
	if err := f.store.InTx(ctx, func(tx smp.Tx) error {
		return tx.InsertOrder(ctx, &smp.Order{ID: id, CustomerID: f.cust, City: "HCMC", Service: "plumbing", Lat: 10.78, Lng: 106.7,
			PriceVND: price, Stage: smp.StageCompleted, PaymentStatus: smp.PaymentPending, CreatedAt: f.clock.Now(), StageChangedAt: f.clock.Now()})
	}); err != nil {
		t.Fatal(err)
	}
}

// TestBulkReplayAppliesOnce: events dead-lettered for missing orders are
// applied by a bulk replay (filtered by type) once the orders exist,
// exactly once; replays are audited.
func TestBulkReplayAppliesOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ids := []string{}
	for i := 0; i < 3; i++ {
		ids = append(ids, fmt.Sprintf("ord_future_%d", i))
		if _, err := f.send(t, wh(fmt.Sprintf("ev-%d", i), smp.InsidePaymentSucceeded, ids[i], 400000)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		f.svc.ProcessDue(ctx)
		f.clock.Add(10 * time.Second)
	}
	if dlq, _ := f.store.FindInboxEvents(ctx, smp.InboxFilter{Status: smp.InboxDLQ}); len(dlq) != 3 {
		t.Fatalf("%d events in dlq, want 3", len(dlq))
	}
	for _, id := range ids {
		f.insertOrder(t, id, 400000)
	}
	ops := smp.Principal{Name: "alice", Role: smp.RoleAdmin}
	n, err := f.svc.ReplayAll(ctx, smp.InboxFilter{EventType: smp.InsidePaymentSucceeded}, ops, "orders exist now")
	if err != nil || n != 3 {
		t.Fatalf("replay all: %d %v", n, err)
	}
	for _, id := range ids {
		if st := f.paymentStatus(t, id); st != smp.PaymentPaid {
			t.Fatalf("%s: %s after replay", id, st)
		}
	}
	// Replaying again (one by one, or all) applies nothing twice.
	for i := 0; i < 3; i++ {
		if _, replayed, err := f.svc.Replay(ctx, fmt.Sprintf("ev-%d", i), ops, "again"); err != nil || replayed {
			t.Fatalf("second replay: %v %v", replayed, err)
		}
	}
	if n, _ := f.svc.ReplayAll(ctx, smp.InboxFilter{}, ops, "again"); n != 0 {
		t.Fatalf("second bulk replay replayed %d", n)
	}
	for _, id := range ids {
		if n := f.paymentEvents(t, id); n != 1 {
			t.Fatalf("%s: %d payment events, want 1", id, n)
		}
	}
	audit, err := f.store.FindAudit(ctx, smp.AuditFilter{Action: "event.replay"})
	if err != nil || len(audit) != 3 || audit[0].Actor != "alice" || audit[0].Reason != "orders exist now" {
		t.Fatalf("audit: %+v %v", audit, err)
	}
}

// TestDuplicatedAndReorderedWebhooks: every order gets its events in a
// random order, each several times; the final states follow what
// happened (refunded beats paid beats failed) and each change is applied
// once.
func TestDuplicatedAndReorderedWebhooks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	type plan struct {
		order  *smp.Order
		events []payments.Webhook
		want   smp.PaymentStatus
	}
	var plans []plan
	for i := 0; i < 30; i++ {
		o := f.order(t, 200000+int64(i))
		p := plan{order: o, want: smp.PaymentFailed}
		p.events = append(p.events, wh(fmt.Sprintf("%d-fail", i), smp.InsidePaymentFailed, o.ID, o.PriceVND))
		if i%3 != 0 {
			p.events = append(p.events, wh(fmt.Sprintf("%d-ok", i), smp.InsidePaymentSucceeded, o.ID, o.PriceVND))
			p.want = smp.PaymentPaid
		}
		if i%3 == 2 {
			p.events = append(p.events, wh(fmt.Sprintf("%d-refund", i), smp.InsidePaymentRefunded, o.ID, o.PriceVND))
			p.want = smp.PaymentRefunded
		}
		plans = append(plans, p)
	}
	var all []payments.Webhook
	for _, p := range plans {
		for _, e := range p.events {
			for k := 0; k < 1+rng.IntN(3); k++ {
				all = append(all, e)
			}
		}
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for i, w := range all {
		if _, err := f.send(t, w); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			f.svc.ProcessDue(ctx) // processing interleaves with arrivals
		}
	}
	f.svc.ProcessDue(ctx)
	for _, p := range plans {
		if st := f.paymentStatus(t, p.order.ID); st != p.want {
			t.Errorf("order %s: %s, want %s", p.order.ID, st, p.want)
		}
		// Each distinct status reached is one event; never more than the plan's events.
		if n := f.paymentEvents(t, p.order.ID); n < 1 || n > len(p.events) {
			t.Errorf("order %s: %d payment events for %d distinct webhooks", p.order.ID, n, len(p.events))
		}
	}
	counts, _ := f.store.CountInboxEvents(ctx)
	if counts[smp.InboxProcessed] != int64(30+20+10) || counts[smp.InboxDLQ] != 0 {
		t.Fatalf("event_log counts %v", counts)
	}
}

func TestAmountMismatchGoesStraightToDLQ(t *testing.T) {
	f := newFixture(t)
	o := f.order(t, 500000)
	if _, err := f.send(t, wh("e-short", smp.InsidePaymentSucceeded, o.ID, 499999)); err != nil {
		t.Fatal(err)
	}
	f.svc.ProcessDue(context.Background())
	if e := f.event(t, "e-short"); e.Status != smp.InboxDLQ || e.Attempts != 1 || !strings.Contains(e.LastError, "amount mismatch") {
		t.Fatalf("event %+v", e)
	}
	if st := f.paymentStatus(t, o.ID); st != smp.PaymentPending {
		t.Fatalf("status %s", st)
	}
}

func TestMarkPaid(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	o := f.order(t, 350000)
	fin := smp.Principal{Name: "linh", Role: smp.RoleFinance}
	if _, _, err := f.svc.MarkPaid(ctx, o.ID, fin, ""); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("without a reason: %v", err)
	}
	got, changed, err := f.svc.MarkPaid(ctx, o.ID, fin, "reconciled with inside: txn 8812")
	if err != nil || !changed || got.PaymentStatus != smp.PaymentPaid {
		t.Fatalf("mark paid: %+v %v %v", got, changed, err)
	}
	if _, changed, err := f.svc.MarkPaid(ctx, o.ID, fin, "again"); err != nil || changed {
		t.Fatalf("second mark paid: %v %v", changed, err)
	}
	// The webhook arriving late changes nothing.
	f.send(t, wh("late", smp.InsidePaymentSucceeded, o.ID, 350000))
	f.svc.ProcessDue(ctx)
	if n := f.paymentEvents(t, o.ID); n != 1 {
		t.Fatalf("%d payment events, want 1", n)
	}
	audit, _ := f.store.FindAudit(ctx, smp.AuditFilter{Target: "order:" + o.ID})
	if len(audit) != 1 || audit[0].Actor != "linh" || audit[0].Role != smp.RoleFinance || audit[0].Action != "order.mark_paid" {
		t.Fatalf("audit %+v", audit)
	}
	if _, _, err := f.svc.MarkPaid(ctx, "nope", fin, "reason"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("unknown order: %v", err)
	}
}

// TestPaymentForCancelledOrderGoesToRefund: a payment inside reports for
// a cancelled order moves it to refund_required (with its
// payment.status_changed event), never to paid; a paid order that is
// cancelled moves there too; inside's refund then ends in refunded, and a
// late duplicate of the payment changes nothing.
func TestPaymentForCancelledOrderGoesToRefund(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	customer := smp.Actor{Kind: "customer", ID: f.cust}
	process := func() {
		t.Helper()
		if _, err := f.svc.ProcessDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	lastPaymentEvent := func(orderID string) smp.PaymentEventData {
		t.Helper()
		recs, err := f.store.FetchOutbox(ctx, 100000)
		if err != nil {
			t.Fatal(err)
		}
		var d smp.PaymentEventData
		for _, r := range recs {
			if r.Event.Type == smp.EventPaymentChanged && r.Event.AggregateID == orderID {
				if err := json.Unmarshal(r.Event.Data, &d); err != nil {
					t.Fatal(err)
				}
			}
		}
		return d
	}

	// Cancelled, then the payment lands.
	late := f.order(t, 300_000)
	if _, err := f.orders.Cancel(ctx, late.ID, customer, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.send(t, wh("pay-late", smp.InsidePaymentSucceeded, late.ID, 300_000)); err != nil {
		t.Fatal(err)
	}
	process()
	if st := f.paymentStatus(t, late.ID); st != smp.PaymentRefundRequired {
		t.Fatalf("a payment for a cancelled order left it %s, want refund_required", st)
	}
	if d := lastPaymentEvent(late.ID); d.To != smp.PaymentRefundRequired || d.Source != "pay-late" || d.AmountVND != 300_000 {
		t.Fatalf("payment event %+v", d)
	}
	// inside refunds it; a late duplicate of the payment changes nothing.
	for _, w := range []payments.Webhook{wh("refund-late", smp.InsidePaymentRefunded, late.ID, 300_000), wh("pay-late-2", smp.InsidePaymentSucceeded, late.ID, 300_000)} {
		if _, err := f.send(t, w); err != nil {
			t.Fatal(err)
		}
		process()
	}
	if st := f.paymentStatus(t, late.ID); st != smp.PaymentRefunded {
		t.Fatalf("after inside's refund: %s, want refunded", st)
	}

	// Paid, then cancelled.
	paid := f.order(t, 200_000)
	if _, err := f.send(t, wh("pay-early", smp.InsidePaymentSucceeded, paid.ID, 200_000)); err != nil {
		t.Fatal(err)
	}
	process()
	if st := f.paymentStatus(t, paid.ID); st != smp.PaymentPaid {
		t.Fatalf("paid order: %s", st)
	}
	o, err := f.orders.Cancel(ctx, paid.ID, customer, "changed my mind")
	if err != nil || o.PaymentStatus != smp.PaymentRefundRequired {
		t.Fatalf("cancelling a paid order: %+v %v, want refund_required", o, err)
	}
	if d := lastPaymentEvent(paid.ID); d.From != smp.PaymentPaid || d.To != smp.PaymentRefundRequired || d.Source != "cancellation" {
		t.Fatalf("payment event of the cancellation %+v", d)
	}
}

// TestWebhookWindow (15.7): smp_webhook_requests_last_5m counts the last
// five minutes' answers on the service's clock, so runbook check judges
// the alert's window, not the process's lifetime.
func TestWebhookWindow(t *testing.T) {
	f := newFixture(t)
	window := func() (all, fives float64) {
		mfs, err := f.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "smp_webhook_requests_last_5m" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == "all" {
					all = m.GetGauge().GetValue()
				} else {
					fives = m.GetGauge().GetValue()
				}
			}
		}
		return all, fives
	}
	for range 3 {
		f.svc.CountRequest(503)
	}
	f.svc.CountRequest(200)
	if all, fives := window(); all != 4 || fives != 3 {
		t.Fatalf("window now: %v all, %v 5xx; want 4, 3", all, fives)
	}
	f.clock.Add(4 * time.Minute)
	f.svc.CountRequest(200)
	if all, fives := window(); all != 5 || fives != 3 {
		t.Fatalf("window after 4 min: %v all, %v 5xx; want 5, 3", all, fives)
	}
	f.clock.Add(2 * time.Minute) // the first four are 6 minutes old
	if all, fives := window(); all != 1 || fives != 0 {
		t.Fatalf("window after 6 min: %v all, %v 5xx; want 1, 0", all, fives)
	}
}
