package status_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"smp"
	"smp/sqlstore"
	"smp/status"
)

func open(t *testing.T) *sqlstore.DB {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// putAlert writes an alert straight into the store (what the page reads).
func putAlert(t *testing.T, db *sqlstore.DB, a *smp.Alert) {
	t.Helper()
	if err := db.InTx(context.Background(), func(tx smp.Tx) error { _, err := tx.UpsertAlert(context.Background(), a); return err }); err != nil {
		t.Fatal(err)
	}
}

func states(p status.Page) map[string]smp.ComponentState {
	out := map[string]smp.ComponentState{}
	for _, c := range p.Components {
		out[c.ID] = c.State
	}
	return out
}

func TestPageMergesOpsAndAlerts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	svc := status.New(status.Config{FromAlerts: true, Now: func() time.Time { return now }}, db)
	ops := smp.Principal{Name: "lan", Role: smp.RoleOps}

	p, err := svc.Page(ctx)
	if err != nil || p.Overall != smp.StateOperational || len(p.Components) != len(smp.Components) {
		t.Fatalf("fresh page: %+v %v", p, err)
	}
	if b := status.Banners(p, "vi"); len(b) != 0 {
		t.Fatalf("banners while all is well: %+v", b)
	}

	// Ops degrade Payments (runbook INC-002).
	if _, err := svc.Set(ctx, ops, "payments", smp.StateDegraded, "Webhook chậm", "INC-002 webhooks failing"); err != nil {
		t.Fatal(err)
	}
	// A firing INC-001 alert degrades Dispatch; a resolved one changes nothing.
	for _, a := range []*smp.Alert{
		{Fingerprint: "f1", Name: "DispatchEngineDown", Status: "firing", Severity: "critical", Labels: map[string]string{"incident": "INC-001"},
			Annotations: map[string]string{"summary": "dispatch engine down"}, StartsAt: now},
		{Fingerprint: "f2", Name: "IntegrationCircuitOpen", Status: "resolved", Labels: map[string]string{"incident": "INC-005"}, StartsAt: now},
		// Redis memory alone does not ask customers to log in again.
		{Fingerprint: "f4", Name: "RedisMemoryHigh", Status: "firing", Labels: map[string]string{"incident": "INC-004"}, StartsAt: now},
		{Fingerprint: "f3", Name: "Custom", Status: "firing", Labels: map[string]string{"component": "events", "status_state": "outage"}, StartsAt: now},
	} {
		putAlert(t, db, a)
	}
	p, err = svc.Page(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]smp.ComponentState{"dispatch": smp.StateDegraded, "payments": smp.StateDegraded, "integrations": smp.StateOperational,
		"orders": smp.StateOperational, "accounts": smp.StateOperational, "events": smp.StateOutage}
	got := states(p)
	for id, st := range want {
		if got[id] != st {
			t.Errorf("%s: %s, want %s", id, got[id], st)
		}
	}
	if p.Overall != smp.StateOutage {
		t.Errorf("overall %s, want outage", p.Overall)
	}
	for _, c := range p.Components {
		if c.ID == "dispatch" && (c.Source != "alert:DispatchEngineDown" || c.Message != "dispatch engine down") {
			t.Errorf("dispatch view %+v", c)
		}
		if c.ID == "payments" && (c.Source != "ops" || c.Message != "Webhook chậm") {
			t.Errorf("payments view %+v", c)
		}
	}

	vi, en := status.Banners(p, "vi"), status.Banners(p, "en")
	if len(vi) != 2 || vi[0].Message != "Đang xử lý chậm, mời thông cảm" || vi[1].Message != "Thanh toán đang xác nhận, mời đợi 5 phút" {
		t.Fatalf("vi banners %+v", vi)
	}
	if len(en) != 2 || en[1].Message != "Your payment is being confirmed, please wait 5 minutes" || en[1].Messages["vi"] != vi[1].Message {
		t.Fatalf("en banners %+v", en)
	}

	// Without alerts configured, only ops' states count.
	p, _ = status.New(status.Config{}, db).Page(ctx)
	if got := states(p); got["dispatch"] != smp.StateOperational || got["payments"] != smp.StateDegraded {
		t.Fatalf("FromAlerts off: %v", got)
	}

	// Sessions lost (INC-004): the re-login banner.
	if _, err := svc.Set(ctx, ops, "accounts", smp.StateOutage, "", "redis evicted sessions"); err != nil {
		t.Fatal(err)
	}
	p, _ = svc.Page(ctx)
	var relogin *smp.Banner
	for _, b := range status.Banners(p, "vi") {
		if b.Component == "accounts" {
			relogin = &b
		}
	}
	if relogin == nil || relogin.Message != "Vui lòng đăng nhập lại" || relogin.Severity != "critical" {
		t.Fatalf("relogin banner %+v", relogin)
	}
}

func TestSetRejectsBadInputAndAudits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	svc := status.New(status.Config{}, db)
	ops := smp.Principal{Name: "lan", Role: smp.RoleOps}
	for name, c := range map[string]struct {
		comp        string
		state       smp.ComponentState
		msg, reason string
	}{
		"UnknownComponent": {"billing", smp.StateDegraded, "", "why not"},
		"UnknownState":     {"dispatch", "red", "", "why not"},
		"NoReason":         {"dispatch", smp.StateDegraded, "", " "},
		"LongMessage":      {"dispatch", smp.StateDegraded, string(make([]byte, 501)), "why not"},
	} {
		if _, err := svc.Set(ctx, ops, c.comp, c.state, c.msg, c.reason); smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	if got, _ := db.FindComponentStatuses(ctx); len(got) != 0 {
		t.Fatalf("bad input changed the page: %+v", got)
	}
	if _, err := svc.Set(ctx, ops, "dispatch", smp.StateDegraded, "", "INC-001 engine down"); err != nil {
		t.Fatal(err)
	}
	audit, err := db.FindAudit(ctx, smp.AuditFilter{Target: "component:dispatch"})
	if err != nil || len(audit) != 1 || audit[0].Actor != "lan" || audit[0].Action != "status.set" || audit[0].Reason != "INC-001 engine down" ||
		audit[0].Before != `{"state":"operational"}` || audit[0].After != `{"state":"degraded"}` {
		t.Fatalf("audit %+v %v", audit, err)
	}
}

// TestPageCache: a page is computed once per CacheFor; what another
// process writes shows after it, what this process sets or invalidates
// shows at once.
func TestPageCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	svc := status.New(status.Config{FromAlerts: true, CacheFor: 5 * time.Second, Now: func() time.Time { return now }}, db)
	other := status.New(status.Config{}, db) // another process, same database
	ops := smp.Principal{Name: "lan", Role: smp.RoleOps}
	dispatch := func() smp.ComponentState {
		t.Helper()
		p, err := svc.Page(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return states(p)["dispatch"]
	}
	if st := dispatch(); st != smp.StateOperational {
		t.Fatalf("fresh: %s", st)
	}
	if _, err := other.Set(ctx, ops, "dispatch", smp.StateDegraded, "", "set elsewhere"); err != nil {
		t.Fatal(err)
	}
	if st := dispatch(); st != smp.StateOperational {
		t.Fatalf("within CacheFor the cached page should be served, got %s", st)
	}
	now = now.Add(5 * time.Second)
	if st := dispatch(); st != smp.StateDegraded {
		t.Fatalf("after CacheFor: %s", st)
	}
	if _, err := svc.Set(ctx, ops, "dispatch", smp.StateOutage, "", "set here"); err != nil {
		t.Fatal(err)
	}
	if st := dispatch(); st != smp.StateOutage {
		t.Fatalf("this process's Set must show at once, got %s", st)
	}
	putAlert(t, db, &smp.Alert{Fingerprint: "f", Name: "PaymentWebhookErrors", Status: "firing", Labels: map[string]string{"incident": "INC-002"}, StartsAt: now})
	svc.Invalidate()
	if p, _ := svc.Page(ctx); states(p)["payments"] != smp.StateDegraded {
		t.Fatalf("after Invalidate the new alert must show: %v", states(p))
	}
}

// hookedStore is the real store with a hook run after the status page has
// read the components' states and before it returns them: a change that
// lands while a page is being computed.
type hookedStore struct {
	*sqlstore.DB
	afterRead func()
}

func (h *hookedStore) FindComponentStatuses(ctx context.Context) ([]smp.ComponentStatus, error) {
	cs, err := h.DB.FindComponentStatuses(ctx)
	if f := h.afterRead; f != nil {
		h.afterRead = nil
		f()
	}
	return cs, err
}

// TestPageCacheNeverStoresStale: a page whose computation started before
// a change made through this process (Set, Invalidate) is not cached
// after it: the next page shows the change although the clock has not
// moved.
func TestPageCacheNeverStoresStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := &hookedStore{DB: open(t)}
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	svc := status.New(status.Config{CacheFor: 5 * time.Second, Now: func() time.Time { return now }}, store)
	ops := smp.Principal{Name: "lan", Role: smp.RoleOps}
	store.afterRead = func() {
		if _, err := svc.Set(ctx, ops, "dispatch", smp.StateOutage, "", "INC-001 communicate"); err != nil {
			t.Error(err)
		}
	}
	p, err := svc.Page(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := states(p)["dispatch"]; st != smp.StateOperational {
		t.Fatalf("the page computed before the change: %s", st)
	}
	p, err = svc.Page(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := states(p)["dispatch"]; st != smp.StateOutage {
		t.Fatalf("the page after the change shows dispatch %s: a computation that started before it was cached", st)
	}
}
