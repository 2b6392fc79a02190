package ops_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"smp"
	smpbus "smp/bus"
	"smp/dispatch"
	"smp/flags"
	"smp/inmem"
	"smp/integrations"
	"smp/internal/envtest"
	"smp/ops"
	"smp/orders"
	"smp/payments"
	"smp/redisstore"
	"smp/sqlbus"
	"smp/sqlstore"
	"smp/status"
	"smp/wsapi"
)

var (
	now     = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	clock   = func() time.Time { return now }
	olga    = smp.Principal{Name: "olga", Role: smp.RoleOps}
	fiona   = smp.Principal{Name: "fiona", Role: smp.RoleFinance}
	root    = smp.Principal{Name: "root", Role: smp.RoleAdmin}
	unknown = smp.Principal{Name: "sam", Role: smp.RoleSecurity}
)

// fixture is the real thing on SQLite and the embedded bus: the store,
// the services that own the database effects, an engine (not started) for
// manual dispatch, and inside's breaker.
type fixture struct {
	t      *testing.T
	db     *sqlstore.DB
	bus    *sqlbus.Bus
	orders *orders.Service
	inside *integrations.Client
	cfg    ops.Config
	ops    *ops.Service
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(dir, "smp.db"), Now: clock})
	must(t, err)
	t.Cleanup(func() { db.Close() })
	bus, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "events.db"), Partitions: 2})
	must(t, err)
	t.Cleanup(func() { bus.Close() })

	city := &smp.City{Code: "HCMC", Name: "HCMC", MinLat: 10.70, MaxLat: 10.88, MinLng: 106.60, MaxLng: 106.80,
		RadiusStepsKm: []float64{1, 3}, WaveSize: 1, MaxWaves: 1}
	must(t, db.UpsertCity(ctx, city))
	must(t, db.UpsertService(ctx, &smp.Service{Code: "plumbing", Name: "plumbing"}))
	must(t, db.UpsertPartner(ctx, &smp.Partner{ID: "P1", Name: "P1"}))
	must(t, db.UpsertCustomer(ctx, &smp.Customer{ID: "C1", Name: "C1"}))
	for _, id := range []string{"T1", "T2"} {
		must(t, db.UpsertTechnician(ctx, &smp.Technician{ID: id, PartnerID: "P1", Name: id, City: "HCMC", Skills: []string{"plumbing"}}))
	}

	ord, err := orders.New(ctx, db, orders.Config{Now: clock})
	must(t, err)
	fl, err := flags.New(ctx, db, clock)
	must(t, err)
	pay, err := payments.New(db, payments.Config{Now: clock})
	must(t, err)
	hub, err := wsapi.NewHub(func(context.Context, *http.Request) (string, error) { return "", smp.Errorf(smp.EUNAUTHORIZED, "no") }, wsapi.Config{})
	must(t, err)
	// T1 and T2 are online in HCMC with the plumbing skill: manual
	// dispatch checks it.
	geo := inmem.NewGeo()
	for _, id := range []string{"T1", "T2"} {
		must(t, geo.Upsert(ctx, smp.TechnicianPosition{TechnicianID: id, City: "HCMC", Lat: 10.78, Lng: 106.70, Skills: []string{"plumbing"}, Online: true, Available: true}))
	}
	engine, err := dispatch.New(dispatch.Deps{Store: db, Orders: ord, Queue: inmem.NewQueue(), Invitations: inmem.NewInvitations(),
		Geo: geo, Locker: inmem.NewLocker(), Flags: fl, Notifier: hub, Cities: []*smp.City{city}}, dispatch.Config{})
	must(t, err)
	inside, err := integrations.New(integrations.Config{Name: "inside", BaseURL: "http://127.0.0.1:1", Flags: fl})
	must(t, err)

	f := &fixture{t: t, db: db, bus: bus, orders: ord, inside: inside}
	f.cfg = ops.Config{Store: db, Now: clock, Flags: fl, Payments: pay, Status: status.New(status.Config{Now: clock}, db),
		Dispatch: engine, Breakers: []ops.Breaker{inside}, Bus: bus, BusAdmin: bus,
		Groups: []smpbus.Subscription{{Group: dispatch.ConsumerGroup, Topics: []string{smp.TopicOrders}}, {Group: orders.ConsumerGroup, Topics: []string{smp.TopicOrders}}}}
	f.ops, err = ops.New(f.cfg)
	must(t, err)
	return f
}

// order creates an order and moves it to 02_dispatching.
func (f *fixture) order() *smp.Order {
	f.t.Helper()
	ctx := context.Background()
	o, err := f.orders.CreateOrder(ctx, "C1", smp.NewOrder{City: "HCMC", Service: "plumbing", Lat: 10.78, Lng: 106.70, PriceVND: 350_000})
	must(f.t, err)
	o, err = f.orders.StartDispatch(ctx, o.ID)
	must(f.t, err)
	return o
}

func (f *fixture) audit(target string) []smp.AuditEntry {
	f.t.Helper()
	a, err := f.db.FindAudit(context.Background(), smp.AuditFilter{Target: target})
	must(f.t, err)
	return a
}

// one checks that target has exactly one entry, with these fields.
func (f *fixture) one(target string, p smp.Principal, action, before, after, reason string) {
	f.t.Helper()
	a := f.audit(target)
	if len(a) != 1 {
		f.t.Fatalf("%s: %d audit entries, want 1: %+v", target, len(a), a)
	}
	e := a[0]
	if e.Actor != p.Name || e.Role != p.Role || e.Action != action || e.Target != target || !e.At.Equal(now) ||
		!strings.Contains(e.Before, before) || !strings.Contains(e.After, after) || e.Reason != reason {
		f.t.Fatalf("%s: entry %+v, want actor %s role %s action %s before ~%s after ~%s reason %q", target, e, p.Name, p.Role, action, before, after, reason)
	}
}

// TestDatabaseActionsAuditedWithTheirEffect: every action whose effect is
// in the database leaves one entry (who, role, what, target, before,
// after, why) committed with it.
func TestDatabaseActionsAuditedWithTheirEffect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)

	if _, err := f.ops.SetFlag(ctx, olga, smp.FlagEnableAutoDispatch, false, "INC-001 option D"); err != nil {
		t.Fatal(err)
	}
	f.one("flag:"+smp.FlagEnableAutoDispatch, olga, "flag.set", "true", "false", "INC-001 option D")

	if fl, err := f.ops.BypassCircuit(ctx, olga, true, "INC-005 option B"); err != nil || !fl.Value {
		t.Fatalf("bypass: %+v %v", fl, err)
	}
	f.one("flag:"+smp.FlagIntegrationBypassCircuit, olga, "flag.set", "false", "true", "INC-005 option B")
	if !f.inside.Status().Bypassed {
		t.Fatal("inside's breaker is not bypassed after INTEGRATION_BYPASS_CIRCUIT=true")
	}

	if _, err := f.ops.SetComponentStatus(ctx, olga, "dispatch", smp.StateDegraded, "Đang xử lý chậm", "INC-001 communicate"); err != nil {
		t.Fatal(err)
	}
	f.one("component:dispatch", olga, "status.set", "operational", "degraded", "INC-001 communicate")

	o := f.order()
	got, err := f.ops.Assign(ctx, olga, o.ID, "T1", "INC-001 option C", false)
	if err != nil || got.Stage != smp.StageAssigned || got.TechnicianID != "T1" {
		t.Fatalf("assign: %+v %v", got, err)
	}
	f.one("order:"+o.ID, olga, "order.03_assigned", "02_dispatching", "03_assigned", "INC-001 option C")

	paid := f.order()
	po, changed, err := f.ops.MarkPaid(ctx, fiona, paid.ID, "INC-002 option B, inside txn 123")
	if err != nil || !changed || po.PaymentStatus != smp.PaymentPaid {
		t.Fatalf("mark paid: %+v %v %v", po, changed, err)
	}
	f.one("order:"+paid.ID, fiona, "order.mark_paid", "pending", "paid", "INC-002 option B, inside txn 123")

	_, _, err = f.db.InsertInboxEvent(ctx, &smp.InboxEvent{EventID: "ev-1", Provider: "inside", EventType: "inside.payment.succeeded",
		OrderID: "nope", AmountVND: 1, OccurredAt: now, BodyHash: "h", Body: "{}", Status: smp.InboxDLQ, Attempts: 5, LastError: "order not found",
		ReceivedAt: now, NextAttemptAt: now})
	must(t, err)
	if _, replayed, err := f.ops.ReplayEvent(ctx, root, "ev-1", "INC-002 option A"); err != nil || !replayed {
		t.Fatalf("replay: %v %v", replayed, err)
	}
	f.one("event:ev-1", root, "event.replay", "dlq", "received", "INC-002 option A")
}

// TestFailedDatabaseActionLeavesNoEntry: an effect that fails commits no
// audit entry; a refused principal leaves none either.
func TestFailedDatabaseActionLeavesNoEntry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)

	// T1 is busy with a first order: assigning them a second fails inside
	// the transaction (ClaimTechnician), and nothing of it is kept.
	first, second := f.order(), f.order()
	if _, err := f.ops.Assign(ctx, olga, first.ID, "T1", "first", false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ops.Assign(ctx, olga, second.ID, "T1", "second", false); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("assigning a busy technician: %v", err)
	}
	if a := f.audit("order:" + second.ID); len(a) != 0 {
		t.Fatalf("a failed assignment left audit entries: %+v", a)
	}
	if o, _ := f.db.FindOrderByID(ctx, second.ID); o.Stage != smp.StageDispatching || o.TechnicianID != "" {
		t.Fatalf("a failed assignment changed the order: %+v", o)
	}

	// A cancelled order cannot be marked paid.
	c := f.order()
	if _, err := f.orders.Cancel(ctx, c.ID, smp.Actor{Kind: "customer", ID: "C1"}, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ops.MarkPaid(ctx, fiona, c.ID, "reconciled"); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("mark paid on a cancelled order: %v", err)
	}
	if a := f.audit("order:" + c.ID); len(a) != 0 {
		t.Fatalf("a failed mark-paid left audit entries: %+v", a)
	}

	// Permissions come from the one table.
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"finance sets a flag", func() error {
			_, err := f.ops.SetFlag(ctx, fiona, smp.FlagEnableAutoDispatch, false, "nope")
			return err
		}()},
		{"ops marks paid", func() error { _, _, err := f.ops.MarkPaid(ctx, olga, second.ID, "nope"); return err }()},
		{"ops replays the bus DLQ", func() error {
			_, err := f.ops.ReplayDeadLetters(ctx, olga, ops.DLQReplay{Topic: "orders.events.dlq", All: true}, "nope")
			return err
		}()},
		{"security half-opens", func() error { _, err := f.ops.HalfOpen(ctx, unknown, "inside", "nope"); return err }()},
	} {
		if smp.ErrorCode(tc.err) != smp.EFORBIDDEN {
			t.Errorf("%s: %v, want forbidden", tc.name, tc.err)
		}
	}
	all, err := f.db.FindAudit(ctx, smp.AuditFilter{})
	must(t, err)
	if len(all) != 1 {
		t.Fatalf("audit entries besides the one assignment: %+v", all)
	}
}

// phases returns the entries of target, oldest first, and their phases.
func (f *fixture) phases(target string) ([]smp.AuditEntry, []string) {
	f.t.Helper()
	a := f.audit(target)
	var out []string
	for i, j := 0, len(a)-1; i < j; i, j = i+1, j-1 {
		a[i], a[j] = a[j], a[i]
	}
	for _, e := range a {
		var v map[string]any
		if err := json.Unmarshal([]byte(e.After), &v); err != nil {
			f.t.Fatalf("after of %+v is not JSON: %v", e, err)
		}
		ph, _ := v["phase"].(string)
		out = append(out, ph)
	}
	return a, out
}

func samePhases(got []string, want ...string) bool {
	return strings.Join(got, ",") == strings.Join(want, ",")
}

// TestExternalActionsRecordIntentThenOutcome: bus offsets, bus dead letters
// and the breaker are outside the database: an intent is committed before
// the effect and the outcome after, failures included.
func TestExternalActionsRecordIntentThenOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)

	// Offset reset (INC-007): a good one, then one past the end of the log.
	must(t, f.bus.Publish(ctx, smp.Message{Topic: smp.TopicOrders, Key: "k", Value: []byte(`{}`)}))
	var part int32 = -1
	offs, err := f.bus.Offsets(ctx, "dispatch-engine", []string{smp.TopicOrders})
	must(t, err)
	for _, o := range offs {
		if o.End == 1 {
			part = o.Partition
		}
	}
	if err := f.ops.ResetOffset(ctx, root, ops.OffsetReset{Group: "dispatch-engine", Topic: smp.TopicOrders, Partition: part, Offset: 1}, "skip poison"); err != nil {
		t.Fatal(err)
	}
	err = f.ops.ResetOffset(ctx, root, ops.OffsetReset{Group: "dispatch-engine", Topic: smp.TopicOrders, Partition: part, Offset: 99}, "too far")
	if smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("reset past the end: %v", err)
	}
	a, ph := f.phases("group:dispatch-engine")
	if !samePhases(ph, ops.PhaseIntent, ops.PhaseDone, ops.PhaseIntent, ops.PhaseFailed) {
		t.Fatalf("reset phases %v: %+v", ph, a)
	}
	for _, e := range a {
		if e.Actor != "root" || e.Role != smp.RoleAdmin || e.Action != "bus.reset_offsets" || !strings.Contains(e.After, `"offset"`) && !strings.Contains(e.After, "error") {
			t.Fatalf("reset entry %+v", e)
		}
	}
	if !strings.Contains(a[1].After, `"offset":1`) || a[1].Reason != "skip poison" || !strings.Contains(a[3].After, "outside") || a[3].Reason != "too far" {
		t.Fatalf("reset outcomes: %+v / %+v", a[1], a[3])
	}
	if !strings.Contains(a[2].Before, `"offset":1`) {
		t.Fatalf("the second reset's intent does not record the offset before it: %+v", a[2])
	}
	if offs, _ := f.bus.Offsets(ctx, "dispatch-engine", []string{smp.TopicOrders}); offs[part].Committed != 1 {
		t.Fatalf("offsets after the failed reset: %+v", offs)
	}

	// Dead-letter replay (INC-007 scenario 4).
	must(t, f.bus.Publish(ctx, smp.Message{Topic: smp.TopicOrders + smp.DLQSuffix, Key: "o1", Value: []byte(`{"event_id":"e1"}`),
		Headers: map[string]string{smp.HeaderDLQTopic: smp.TopicOrders, smp.HeaderDLQReason: "poison"}}))
	letters, err := f.bus.Read(ctx, smp.TopicOrders+smp.DLQSuffix, 10)
	must(t, err)
	at := []string{itoa(letters[0].Partition) + ":" + itoa64(letters[0].Offset)}
	if _, err := f.ops.ReplayDeadLetters(ctx, root, ops.DLQReplay{Topic: smp.TopicOrders + smp.DLQSuffix, Offsets: []string{"0:999"}}, "missing"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("replaying a missing letter: %v", err)
	}
	n, err := f.ops.ReplayDeadLetters(ctx, root, ops.DLQReplay{Topic: smp.TopicOrders + smp.DLQSuffix, Offsets: at}, "poison fixed")
	if err != nil || n != 1 {
		t.Fatalf("replay: %d %v", n, err)
	}
	a, ph = f.phases("topic:" + smp.TopicOrders + smp.DLQSuffix)
	if !samePhases(ph, ops.PhaseIntent, ops.PhaseDone) || !strings.Contains(a[0].After, smp.TopicOrders+smp.DLQSuffix+"/"+strings.Replace(at[0], ":", "/", 1)) || !strings.Contains(a[1].After, `"replayed":1`) ||
		a[1].Action != "bus.dlq_replay" || a[1].Reason != "poison fixed" {
		t.Fatalf("replay entries %v: %+v", ph, a)
	}

	// Breaker half-open (INC-005 option A): the state before is recorded.
	st, err := f.ops.HalfOpen(ctx, olga, "inside", "")
	if err != nil || st.State != "half-open" {
		t.Fatalf("half-open: %+v %v", st, err)
	}
	a, ph = f.phases("integration:inside")
	if !samePhases(ph, ops.PhaseIntent, ops.PhaseDone) || a[0].Before != `{"state":"closed"}` || !strings.Contains(a[1].After, `"state":"half-open"`) ||
		a[0].Reason != "force half-open (runbook INC-005)" || a[1].Actor != "olga" {
		t.Fatalf("half-open entries %v: %+v", ph, a)
	}
	if _, err := f.ops.HalfOpen(ctx, olga, "mongo", "x"); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("unknown service: %v", err)
	}
}

// TestNoIntentNoEffect: when the intent cannot be recorded (the database
// is down), the external effect is not attempted.
func TestNoIntentNoEffect(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.db.Close()
	if _, err := f.ops.HalfOpen(context.Background(), olga, "inside", "db down"); err == nil {
		t.Fatal("half-open succeeded without recording its intent")
	}
	if st := f.inside.Status(); st.State != "closed" {
		t.Fatalf("the breaker moved without a recorded intent: %+v", st)
	}
}

// TestFlushCacheRecordsIntentThenOutcome runs on a real Redis
// (SMP_TEST_REDIS_ADDR): the pattern guard refuses before anything is
// recorded; a dry run records nothing; a flush records intent and outcome;
// a flush that fails records the failure.
func TestFlushCacheRecordsIntentThenOutcome(t *testing.T) {
	t.Parallel()
	addr, why := envtest.RedisAddr()
	if addr == "" {
		envtest.Skip(t, "Redis", why)
	}
	ctx := context.Background()
	f := newFixture(t)
	prefix := "opstest:" + strings.ReplaceAll(t.Name(), "/", "_") + ":" + itoa64(time.Now().UnixNano()) + ":"
	rs, err := redisstore.Open(ctx, redisstore.Config{Addr: addr, Prefix: prefix})
	must(t, err)
	t.Cleanup(func() { rs.Close() })
	must(t, rs.Client().Set(ctx, prefix+"cache:wms:stock:A", "1", time.Minute).Err())
	must(t, rs.Client().Set(ctx, prefix+"cache:wms:stock:B", "1", time.Minute).Err())
	must(t, rs.Client().Set(ctx, prefix+"session:u1", "1", time.Minute).Err())

	cfg := f.cfg
	cfg.FlushCache, cfg.CheckFlushPattern = rs.FlushCache, redisstore.CheckFlushPattern
	svc, err := ops.New(cfg)
	must(t, err)

	if _, err := svc.FlushCache(ctx, root, "session:*", false, "oom"); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("flushing sessions: %v", err)
	}
	if n, err := svc.FlushCache(ctx, root, "cache:wms:stock:*", true, ""); err != nil || n != 2 {
		t.Fatalf("dry run: %d %v", n, err)
	}
	if n, err := svc.FlushCache(ctx, root, "cache:wms:stock:*", false, "INC-004 stock keys without TTL"); err != nil || n != 2 {
		t.Fatalf("flush: %d %v", n, err)
	}
	if n, _ := rs.Client().Exists(ctx, prefix+"session:u1").Result(); n != 1 {
		t.Fatal("the session key was flushed")
	}
	rs.Close()
	if _, err := svc.FlushCache(ctx, root, "cache:wms:stock:*", false, "again, Redis gone"); err == nil {
		t.Fatal("a flush on a closed client succeeded")
	}
	a, ph := f.phases("redis:cache:wms:stock:*")
	if !samePhases(ph, ops.PhaseIntent, ops.PhaseDone, ops.PhaseIntent, ops.PhaseFailed) || !strings.Contains(a[1].After, `"deleted":2`) ||
		!strings.Contains(a[3].After, "error") || a[3].Reason != "again, Redis gone" || a[0].Action != "redis.flush_cache" {
		t.Fatalf("flush entries %v: %+v", ph, a)
	}
	if all, _ := f.db.FindAudit(ctx, smp.AuditFilter{Action: "redis.flush_cache"}); len(all) != 4 {
		t.Fatalf("the refused pattern or the dry run left entries: %+v", all)
	}
}

func itoa(n int32) string   { return strconv.Itoa(int(n)) }
func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// TestReplayOfManyDeadLettersStaysAuditable: an intent names at most 200
// letters (an entry's state is at most 64 KiB) and counts the others.
func TestReplayOfManyDeadLettersStaysAuditable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	dlq := smp.TopicOrders + smp.DLQSuffix
	msgs := make([]smp.Message, 250)
	for i := range msgs {
		msgs[i] = smp.Message{Topic: dlq, Key: "o" + strconv.Itoa(i), Value: []byte(`{}`), Headers: map[string]string{smp.HeaderDLQTopic: smp.TopicOrders}}
	}
	must(t, f.bus.Publish(ctx, msgs...))
	if n, err := f.ops.ReplayDeadLetters(ctx, root, ops.DLQReplay{Topic: dlq, All: true}, "INC-007 all of them"); err != nil || n != 250 {
		t.Fatalf("replay all: %d %v", n, err)
	}
	a, ph := f.phases("topic:" + dlq)
	if !samePhases(ph, ops.PhaseIntent, ops.PhaseDone) {
		t.Fatalf("phases %v", ph)
	}
	var intent struct {
		Replay    int      `json:"replay"`
		Letters   []string `json:"letters"`
		NotListed int      `json:"letters_not_listed"`
	}
	must(t, json.Unmarshal([]byte(a[0].After), &intent))
	if intent.Replay != 250 || len(intent.Letters) != 200 || intent.NotListed != 50 || !strings.Contains(a[1].After, `"replayed":250`) {
		t.Fatalf("intent %+v, outcome %s", intent, a[1].After)
	}
}

// TestInputsOverTheirLimits: an offset reset for a group SMP does not run,
// a topic the group does not read, or names longer than their columns,
// and every action's reason over 1,000 characters are EINVALID before
// anything is done or recorded.
func TestInputsOverTheirLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	must(t, f.bus.Publish(ctx, smp.Message{Topic: smp.TopicOrders, Key: "k", Value: []byte(`{}`)}))
	reset := func(group, topic string) error {
		return f.ops.ResetOffset(ctx, root, ops.OffsetReset{Group: group, Topic: topic, Partition: 0, Offset: 0}, "INC-007 skip")
	}
	long := strings.Repeat("đ", smp.MaxReason+1)
	for name, err := range map[string]error{
		"reset, unknown group":           reset("dispatch-engin", smp.TopicOrders),
		"reset, a topic the group skips": reset(dispatch.ConsumerGroup, smp.TopicPayments),
		"reset, a 150-character group":   reset(dispatch.ConsumerGroup+strings.Repeat("x", 135), smp.TopicOrders),
		"reset, a 129-character topic":   reset(dispatch.ConsumerGroup, strings.Repeat("t", 129)),
		"reset, a reason over 1000":      f.ops.ResetOffset(ctx, root, ops.OffsetReset{Group: dispatch.ConsumerGroup, Topic: smp.TopicOrders}, long),
		"flush, a pattern over its column": func() error {
			_, err := f.ops.FlushCache(ctx, root, "cache:"+strings.Repeat("*", 200), false, "INC-004")
			return err
		}(),
		"flag, a reason over 1000": func() error {
			_, err := f.ops.SetFlag(ctx, olga, smp.FlagEnableAutoDispatch, false, long)
			return err
		}(),
		"status, a reason over 1000": func() error {
			_, err := f.ops.SetComponentStatus(ctx, olga, "dispatch", smp.StateDegraded, "", long)
			return err
		}(),
		"mark-paid, a reason over 1000":   func() error { _, _, err := f.ops.MarkPaid(ctx, fiona, "nope", long); return err }(),
		"replay, a reason over 1000":      func() error { _, _, err := f.ops.ReplayEvent(ctx, root, "nope", long); return err }(),
		"bulk replay, a reason over 1000": func() error { _, err := f.ops.ReplayEvents(ctx, root, smp.InboxFilter{}, long); return err }(),
		"dlq replay, a reason over 1000": func() error {
			_, err := f.ops.ReplayDeadLetters(ctx, root, ops.DLQReplay{Topic: "orders.events.dlq", All: true}, long)
			return err
		}(),
		"assign, a reason over 1000":    func() error { _, err := f.ops.Assign(ctx, olga, "nope", "T1", long, false); return err }(),
		"half-open, a reason over 1000": func() error { _, err := f.ops.HalfOpen(ctx, olga, "inside", long); return err }(),
	} {
		if smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	if a, _ := f.db.FindAudit(ctx, smp.AuditFilter{}); len(a) != 0 {
		t.Fatalf("refused actions recorded %d entries: %+v", len(a), a)
	}
	if offs, _ := f.bus.Offsets(ctx, dispatch.ConsumerGroup+strings.Repeat("x", 135), []string{smp.TopicOrders}); len(offs) > 0 && offs[0].Committed > 0 {
		t.Fatalf("a refused reset moved an offset: %+v", offs)
	}
}

// TestAssignChecksTheTechnician: manual dispatch refuses a technician who
// is offline, works in another city or lacks the order's skill, and says
// every reason; with override it assigns and the audit entry records what
// was overridden; a suspended technician is refused even so.
func TestAssignChecksTheTechnician(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	must(t, f.db.UpsertCity(ctx, &smp.City{Code: "DN", Name: "DN", MinLat: 15.9, MaxLat: 16.2, MinLng: 108.0, MaxLng: 108.4, RadiusStepsKm: []float64{3}, WaveSize: 1, MaxWaves: 1}))
	must(t, f.db.UpsertService(ctx, &smp.Service{Code: "aircon_repair", Name: "aircon repair"}))
	must(t, f.db.UpsertTechnician(ctx, &smp.Technician{ID: "T3", PartnerID: "P1", Name: "T3", City: "DN", Skills: []string{"aircon_repair"}}))
	must(t, f.db.UpsertTechnician(ctx, &smp.Technician{ID: "T4", PartnerID: "P1", Name: "T4", City: "HCMC", Skills: []string{"plumbing"}, Status: smp.StatusSuspended}))
	o := f.order()

	_, err := f.ops.Assign(ctx, olga, o.ID, "T3", "customer asked for T3", false)
	if smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("assign a technician who does not fit: %v, want ECONFLICT", err)
	}
	for _, why := range []string{"works in DN, the order is in HCMC", "has no plumbing skill", "is offline", `"override": true`} {
		if !strings.Contains(smp.ErrorMessage(err), why) {
			t.Errorf("the refusal does not say %q: %s", why, smp.ErrorMessage(err))
		}
	}
	if a, _ := f.db.FindAudit(ctx, smp.AuditFilter{Target: "order:" + o.ID}); len(a) != 0 {
		t.Fatalf("a refused assignment was audited: %+v", a)
	}
	if _, err := f.ops.Assign(ctx, olga, o.ID, "T4", "suspended anyway", true); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("override for a suspended technician: %v, want ECONFLICT", err)
	}

	got, err := f.ops.Assign(ctx, olga, o.ID, "T3", "customer asked for T3", true)
	if err != nil || got.Stage != smp.StageAssigned || got.TechnicianID != "T3" {
		t.Fatalf("override: %+v %v", got, err)
	}
	a, err := f.db.FindAudit(ctx, smp.AuditFilter{Target: "order:" + o.ID})
	if err != nil || len(a) != 1 || a[0].Actor != "olga" ||
		a[0].Reason != "override (works in DN, the order is in HCMC; has no plumbing skill; is offline (the app is not connected)): customer asked for T3" {
		t.Fatalf("override audit: %+v %v", a, err)
	}
}

// TestHeldTopupActionsNeedSecurity: releasing or reversing a held top-up
// is security's (wallets.held): ops and finance are refused before
// anything is read; security gets through to the wallets (absent here).
func TestHeldTopupActionsNeedSecurity(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	for _, p := range []smp.Principal{{Name: "olga", Role: smp.RoleOps}, {Name: "fiona", Role: smp.RoleFinance}} {
		if _, err := f.ops.ReleaseHeldTopup(ctx, p, "P1", "W1", "verified by phone"); smp.ErrorCode(err) != smp.EFORBIDDEN {
			t.Errorf("%s releases: %v", p.Role, err)
		}
		if _, err := f.ops.ReverseHeldTopup(ctx, p, "P1", "W1", "fraud confirmed"); smp.ErrorCode(err) != smp.EFORBIDDEN {
			t.Errorf("%s reverses: %v", p.Role, err)
		}
	}
	sec := smp.Principal{Name: "sec.lan", Role: smp.RoleSecurity}
	if _, err := f.ops.ReverseHeldTopup(ctx, sec, "P1", "W1", "fraud confirmed"); smp.ErrorCode(err) != smp.EUNAVAILABLE {
		t.Errorf("security without wallets in the process: %v", err)
	}
}
