package httpapi_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"smp"
	"smp/auth"
	"smp/deploy"
	"smp/httpapi"
	"smp/ops"
	"smp/sqlstore"
	"smp/status"
)

// TestAlertmanagerReceiver: the receiver takes Alertmanager's own token
// and nothing else (no admin role, finance and security included, may
// rewrite the status page); what the rules do not allow is a 400 that
// changes nothing; a resolution of a real alert is recorded and audited.
func TestAlertmanagerReceiver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for tok, role := range map[string]smp.Role{"fin-token": smp.RoleFinance, "sec-token": smp.RoleSecurity, "ops-token": smp.RoleOps} {
		if err := db.PutToken(ctx, auth.HashToken(tok), auth.KindAdmin, string(role)+"-person", role); err != nil {
			t.Fatal(err)
		}
	}
	rules, err := deploy.AlertRules()
	if err != nil {
		t.Fatal(err)
	}
	st := status.New(status.Config{FromAlerts: true, Rules: rules}, db)
	actions, err := ops.New(ops.Config{Store: db, Status: st})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{AdminToken: "adm", AlertmanagerToken: "am-secret"}, httpapi.Deps{Store: db, Actions: actions, Status: st})
	if err != nil {
		t.Fatal(err)
	}
	post := func(token, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/integrations/alertmanager/webhook", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		return w
	}
	alert := func(name, status, component, summary string) string {
		return `{"version":"4","status":"` + status + `","receiver":"smp","alerts":[{"status":"` + status + `","fingerprint":"5e1c0a7d9b3f2e61",
			"labels":{"alertname":"` + name + `","severity":"warning","incident":"INC-005","component":"` + component + `","service":"inside"},
			"annotations":{"summary":"` + summary + `","runbook_url":"https://runbooks.smp.vn/docs/runbook.md#inc-005"},"startsAt":"2026-12-01T08:00:00Z"}]}`
	}
	const open = "Circuit breaker to inside is open: reads stale, writes refused"
	firing := alert("IntegrationCircuitOpen", "firing", "integrations", open)
	page := func() smp.ComponentState {
		p, err := st.Page(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range p.Components {
			if c.ID == "integrations" {
				return c.State
			}
		}
		return ""
	}

	for _, c := range []struct {
		token string
		code  int
	}{{"", 401}, {"nonsense", 401}, {"fin-token", 403}, {"sec-token", 403}, {"ops-token", 403}, {"adm", 403}} {
		if w := post(c.token, firing); w.Code != c.code || !strings.Contains(w.Body.String(), `"code"`) {
			t.Errorf("token %q: %d %s, want %d", c.token, w.Code, w.Body.String(), c.code)
		}
	}
	for name, body := range map[string]string{
		"unknown alert":      alert("AllGood", "firing", "integrations", open),
		"unknown component":  alert("IntegrationCircuitOpen", "firing", "wallets", open),
		"other component":    alert("IntegrationCircuitOpen", "firing", "payments", open),
		"free text":          alert("IntegrationCircuitOpen", "firing", "integrations", "SMP is closing down"),
		"fingerprint > 64":   strings.Replace(firing, "5e1c0a7d9b3f2e61", strings.Repeat("f", 65), 1),
		"name > 128":         alert(strings.Repeat("N", 129), "firing", "integrations", open),
		"severity > 32":      strings.Replace(firing, `"severity":"warning"`, `"severity":"`+strings.Repeat("s", 33)+`"`, 1),
		"several, one wrong": strings.Replace(firing, `"alerts":[`, `"alerts":[{"status":"firing","fingerprint":"0000000000000001","labels":{"alertname":"KafkaBrokerDown","severity":"critical","incident":"INC-006","cluster":"prod"},"annotations":{},"startsAt":"2026-12-01T08:00:00Z"},{"status":"firing","fingerprint":"0000000000000002","labels":{"alertname":"Nope"}},`, 1),
	} {
		if w := post("am-secret", body); w.Code != 400 || !strings.Contains(w.Body.String(), `"code": "invalid"`) {
			t.Errorf("%s: %d %s, want 400", name, w.Code, w.Body.String())
		}
	}
	if as, _ := db.FindAlerts(ctx, "", 10); len(as) != 0 || page() != smp.StateOperational {
		t.Fatalf("refused posts changed something: %d alerts, integrations %s", len(as), page())
	}
	if audit, _ := db.FindAudit(ctx, smp.AuditFilter{}); len(audit) != 0 {
		t.Fatalf("refused posts audited: %+v", audit)
	}

	if w := post("am-secret", firing); w.Code != 200 {
		t.Fatalf("Alertmanager's firing alert: %d %s", w.Code, w.Body.String())
	}
	if page() != smp.StateDegraded {
		t.Fatalf("integrations %s while IntegrationCircuitOpen fires", page())
	}
	if w := post("am-secret", alert("IntegrationCircuitOpen", "resolved", "integrations", open)); w.Code != 200 {
		t.Fatalf("Alertmanager's resolution: %d %s", w.Code, w.Body.String())
	}
	if page() != smp.StateOperational {
		t.Fatalf("integrations %s after the resolution", page())
	}
	// A full group, as Alertmanager posts it (max_alerts: 200), is taken
	// whole although it is larger than 64 KiB.
	var many []string
	for i := range status.MaxAlertsPerPost {
		many = append(many, fmt.Sprintf(`{"status":"firing","fingerprint":"%016x","labels":{"alertname":"KafkaConsumerLagHigh","severity":"warning","incident":"INC-007",`+
			`"component":"dispatch","group":"group-%03d","topic":"orders.events","instance":"smp-%03d.smp-prod.svc.cluster.local:8080"},`+
			`"annotations":{"summary":"Consumer group group-%03d is 12345 messages behind on orders.events","runbook_url":"https://runbooks.smp.vn/docs/runbook.md#inc-007"},`+
			`"startsAt":"2026-12-01T08:00:00Z","generatorURL":"http://prometheus-0.prometheus.smp-prod.svc.cluster.local:9090/graph?g0.expr=sum+by+%%28group%%29"}`, i+1, i, i, i))
	}
	big := `{"version":"4","status":"firing","receiver":"smp","alerts":[` + strings.Join(many, ",") + `]}`
	if len(big) <= 64<<10 {
		t.Fatalf("the group is only %d bytes", len(big))
	}
	if w := post("am-secret", big); w.Code != 200 || !strings.Contains(w.Body.String(), fmt.Sprintf(`"recorded": %d`, status.MaxAlertsPerPost)) {
		t.Fatalf("a full group of %d bytes: %d %s", len(big), w.Code, w.Body.String()[:min(300, w.Body.Len())])
	}
	audit, err := db.FindAudit(ctx, smp.AuditFilter{Target: "alert:5e1c0a7d9b3f2e61"})
	if err != nil || len(audit) != 2 || audit[0].Actor != "alertmanager" || audit[0].Before != `{"status":"firing"}` ||
		!strings.Contains(audit[0].After, `"status":"resolved"`) {
		t.Fatalf("audit of the alert: %+v %v", audit, err)
	}
}
