package httpapi_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"smp"
	"smp/auth"
	smpbus "smp/bus"
	"smp/httpapi"
	"smp/ops"
	"smp/sqlbus"
	"smp/sqlstore"
)

// TestBusActionsAuditedThroughOps: the admin API's bus actions go through
// ops: a reset the bus refuses is on record (intent, then failed), where
// the API used to audit only successes, after the fact; a role the
// permission table refuses leaves nothing.
func TestBusActionsAuditedThroughOps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(dir, "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bus, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "events.db"), Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	if err := db.PutToken(ctx, auth.HashToken("ops-token"), auth.KindAdmin, "olga", smp.RoleOps); err != nil {
		t.Fatal(err)
	}
	actions, err := ops.New(ops.Config{Store: db, Bus: bus, BusAdmin: bus, Groups: []smpbus.Subscription{{Group: "dispatch-engine", Topics: []string{smp.TopicOrders}}}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{AdminToken: "adm"}, httpapi.Deps{Store: db, Ops: httpapi.Ops{BusAdmin: bus}, Actions: actions})
	if err != nil {
		t.Fatal(err)
	}
	post := func(token, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		return w
	}

	const reset = `{"group":"dispatch-engine","topic":"orders.events","partition":0,"offset":99,"reason":"INC-007 skip"}`
	if w := post("ops-token", "/admin/bus/reset-offsets", reset); w.Code != 403 {
		t.Fatalf("ops role resets offsets: %d %s", w.Code, w.Body.String())
	}
	if w := post("adm", "/admin/bus/reset-offsets", reset); w.Code != 400 || !strings.Contains(w.Body.String(), "outside") {
		t.Fatalf("reset past the end: %d %s", w.Code, w.Body.String())
	}
	audit, err := db.FindAudit(ctx, smp.AuditFilter{Target: "group:dispatch-engine"})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 2 || audit[0].Actor != "admin" || audit[0].Reason != "INC-007 skip" || !strings.Contains(audit[0].After, `"phase":"failed"`) ||
		!strings.Contains(audit[1].After, `"phase":"intent"`) {
		t.Fatalf("audit of a refused reset: %+v", audit)
	}

	// A replay's reason is checked before anything is read or recorded.
	if w := post("adm", "/admin/bus/dlq/replay", `{"topic":"orders.events.dlq","all":true}`); w.Code != 400 {
		t.Fatalf("replay without a reason: %d %s", w.Code, w.Body.String())
	}
	if all, _ := db.FindAudit(ctx, smp.AuditFilter{}); len(all) != 2 {
		t.Fatalf("entries besides the reset's: %+v", all)
	}
}
