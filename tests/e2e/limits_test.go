package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"smp"
	"smp/sqlstore/sqlstoretest"
)

// TestLimitsAtTheEdgeOnMySQL: on MySQL and Redis, every input longer than
// what keeps it is a 400 with the JSON error, and changes nothing: no key
// deleted, no offset moved, no order, flag, status or payment changed, no
// audit entry (MySQL used to answer 500 "Data too long" after the effect,
// or to truncate silently).
func TestLimitsAtTheEdgeOnMySQL(t *testing.T) {
	dsn, addr := sqlstoretest.MySQLDSN(t), redisAddr(t)
	t.Parallel()
	ctx := context.Background()
	prefix := randomPrefix()
	a := startApp(t, func(c *Config) { c.MySQLDSN, c.RedisAddr, c.RedisPrefix = dsn, addr, prefix })
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { rdb.Close() })
	stock := prefix + "cache:wms:stock:FILTER-01"
	must(t, rdb.Set(ctx, stock, "12", 0).Err())
	t.Cleanup(func() { rdb.Del(context.Background(), stock) })

	id := placeOrders(t, a, 1, "for the limits")[0]
	before, err := a.Store.FindOrderByID(ctx, id)
	must(t, err)
	long := strings.Repeat("đ", 1001) // reasons are at most 1,000 characters

	for _, c := range []struct {
		name, method, path, token, body string
	}{
		{"flush-cache, a pattern longer than its column", "POST", "/admin/redis/flush-cache", a.admin,
			`{"pattern":"cache:wms:stock:` + strings.Repeat("*", 300) + `","reason":"INC-004 clear stock"}`},
		{"reset-offsets, a 150-character group", "POST", "/admin/bus/reset-offsets", a.admin,
			`{"group":"dispatch-engine` + strings.Repeat("x", 135) + `","topic":"orders.events","partition":0,"offset":0,"reason":"INC-007 skip"}`},
		{"reset-offsets, a reason over 1000", "POST", "/admin/bus/reset-offsets", a.admin,
			`{"group":"dispatch-engine","topic":"orders.events","partition":0,"offset":0,"reason":"` + long + `"}`},
		{"cancel, a reason over 1000", "POST", "/v1/orders/" + id + "/cancel", a.ds.Customers[0].Token, `{"reason":"` + long + `"}`},
		{"flag, a reason over 1000", "PUT", "/admin/flags/ENABLE_AUTO_DISPATCH", a.admin, `{"value":false,"reason":"` + long + `"}`},
		{"status, a reason over 1000", "PUT", "/admin/status/components/dispatch", a.admin, `{"state":"degraded","reason":"` + long + `"}`},
		{"mark-paid, a reason over 1000", "POST", "/admin/orders/" + id + "/mark-paid", a.admin, `{"reason":"` + long + `"}`},
		{"bulk replay, a reason over 1000", "POST", "/admin/events/replay", a.admin, `{"event_type":"inside.payment.succeeded","reason":"` + long + `"}`},
		{"assign, a reason over 1000", "POST", "/admin/orders/" + id + "/assign", a.admin, `{"technician_id":"T0001","reason":"` + long + `"}`},
		{"dlq replay, a reason over 1000", "POST", "/admin/bus/dlq/replay", a.admin, `{"topic":"orders.events.dlq","all":true,"reason":"` + long + `"}`},
		{"half-open, a reason over 1000", "POST", "/admin/circuit-breaker/half-open", a.admin, `{"service":"inside","reason":"` + long + `"}`},
		{"alert, a fingerprint over 64", "POST", "/integrations/alertmanager/webhook", a.am,
			`{"alerts":[{"status":"firing","fingerprint":"` + strings.Repeat("f", 65) + `","labels":{"alertname":"KafkaBrokerDown","cluster":"prod"}}]}`},
		{"alert, a name over 128", "POST", "/integrations/alertmanager/webhook", a.am,
			`{"alerts":[{"status":"firing","fingerprint":"f1","labels":{"alertname":"` + strings.Repeat("N", 129) + `"}}]}`},
		{"alert, a severity over 32", "POST", "/integrations/alertmanager/webhook", a.am,
			`{"alerts":[{"status":"firing","fingerprint":"f1","labels":{"alertname":"KafkaBrokerDown","severity":"` + strings.Repeat("s", 33) + `"}}]}`},
	} {
		r := a.do(c.method, c.path, c.token, c.body)
		if r.Status != 400 || errCode(r) != smp.EINVALID {
			t.Errorf("%s: %d %s, want 400 invalid", c.name, r.Status, r.Raw[:min(len(r.Raw), 300)])
		}
	}
	if n, err := rdb.Exists(ctx, stock).Result(); err != nil || n != 1 {
		t.Errorf("the refused flush deleted the stock key (%d, %v)", n, err)
	}
	after, err := a.Store.FindOrderByID(ctx, id)
	must(t, err)
	if after.Stage != before.Stage && after.Stage == smp.StageCancelled || after.PaymentStatus != before.PaymentStatus || after.TechnicianID != "" {
		t.Errorf("the refused requests changed the order: %+v", after)
	}
	if f := a.do("GET", "/admin/flags", a.admin, nil); !strings.Contains(f.Raw, `"value": true`) {
		t.Errorf("the refused flag change took effect: %s", f.Raw)
	}
	if audit, err := a.Store.FindAudit(ctx, smp.AuditFilter{}); err != nil || len(audit) != 0 {
		t.Errorf("refused requests left %d audit entries (%v): %s", len(audit), err, fmt.Sprint(audit))
	}
	if as, _ := a.Store.FindAlerts(ctx, "", 10); len(as) != 0 {
		t.Errorf("refused alerts recorded: %d", len(as))
	}
}
