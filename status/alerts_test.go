package status_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"smp"
	"smp/deploy"
	"smp/status"
)

func rules(t *testing.T) []smp.AlertRule {
	t.Helper()
	r, err := deploy.AlertRules()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

var am = smp.Principal{Name: "alertmanager", Role: smp.RoleAlertmanager}

// engineDownSummary is DispatchEngineDown's summary as Prometheus expands
// it for instance smp-0:8080.
func engineDownSummary() string {
	rs, _ := deploy.AlertRules()
	for _, r := range rs {
		if r.Name == "DispatchEngineDown" {
			return strings.ReplaceAll(r.Annotations["summary"], "{{ $labels.instance }}", "smp-0:8080")
		}
	}
	return ""
}

// engineDown is DispatchEngineDown as Alertmanager delivers it.
func engineDown(fp, st string, at time.Time) smp.Alert {
	return smp.Alert{Fingerprint: fp, Name: "DispatchEngineDown", Status: st, Severity: "critical",
		Labels:      map[string]string{"alertname": "DispatchEngineDown", "severity": "critical", "incident": "INC-001", "component": "dispatch", "instance": "smp-0:8080"},
		Annotations: map[string]string{"summary": engineDownSummary(), "runbook_url": "https://runbooks.smp.vn/docs/runbook.md#inc-001"},
		StartsAt:    at}
}

// TestRecordAlertsAudited: a firing alert of the rules is recorded with
// the rule's labels and degrades its component; its resolution is
// recorded too; each change is audited with Alertmanager as the actor, a
// repeat is not.
func TestRecordAlertsAudited(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	svc := status.New(status.Config{FromAlerts: true, CacheFor: time.Minute, Now: func() time.Time { return now }, Rules: rules(t)}, db)

	a := engineDown("3f2a9c0d11e4b7a8", "firing", now)
	delete(a.Labels, "component") // Alertmanager sends the rule's labels; SMP fills them in regardless
	for range 2 {                 // Alertmanager repeats a firing alert
		if n, err := svc.RecordAlerts(ctx, am, []smp.Alert{a}); err != nil || n != 1 {
			t.Fatalf("RecordAlerts: %d %v", n, err)
		}
	}
	p, _ := svc.Page(ctx)
	if st := states(p)["dispatch"]; st != smp.StateDegraded {
		t.Fatalf("dispatch %s while DispatchEngineDown fires", st)
	}
	got, _ := db.FindAlerts(ctx, "firing", 10)
	if len(got) != 1 || got[0].Labels["component"] != "dispatch" || got[0].Labels["instance"] != "smp-0:8080" {
		t.Fatalf("recorded: %+v", got)
	}
	now = now.Add(time.Minute)
	if _, err := svc.RecordAlerts(ctx, am, []smp.Alert{engineDown("3f2a9c0d11e4b7a8", "resolved", now.Add(-time.Minute))}); err != nil {
		t.Fatal(err)
	}
	if p, _ := svc.Page(ctx); states(p)["dispatch"] != smp.StateOperational {
		t.Fatalf("dispatch %s after the resolution", states(p)["dispatch"])
	}
	audit, err := db.FindAudit(ctx, smp.AuditFilter{Target: "alert:3f2a9c0d11e4b7a8"})
	if err != nil || len(audit) != 2 {
		t.Fatalf("audit: %+v %v, want firing then resolved", audit, err)
	}
	res, fir := audit[0], audit[1]
	if res.Actor != "alertmanager" || res.Role != smp.RoleAlertmanager || res.Action != "alerts.receive" ||
		res.Before != `{"status":"firing"}` || !strings.Contains(res.After, `"status":"resolved"`) || !res.At.Equal(now) {
		t.Errorf("resolution audit %+v", res)
	}
	if fir.Before != `{"status":"none"}` || !strings.Contains(fir.After, `"component":"dispatch"`) {
		t.Errorf("firing audit %+v", fir)
	}
}

// TestRecordAlertsBounded: what the rules do not allow is EINVALID, and a
// post with one bad alert records none of its alerts.
func TestRecordAlertsBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	svc := status.New(status.Config{FromAlerts: true, Now: func() time.Time { return now }, Rules: rules(t)}, db)
	good := engineDown("good", "firing", now)
	edit := func(f func(a *smp.Alert)) smp.Alert {
		a := engineDown("bad", "firing", now)
		a.Labels = map[string]string{"alertname": "DispatchEngineDown", "severity": "critical", "incident": "INC-001", "component": "dispatch", "instance": "smp-0:8080"}
		f(&a)
		return a
	}
	for name, bad := range map[string]smp.Alert{
		"unknown alert":        edit(func(a *smp.Alert) { a.Name, a.Labels["alertname"] = "Everything is fine", "Everything is fine" }),
		"other component":      edit(func(a *smp.Alert) { a.Labels["component"] = "payments" }),
		"unknown component":    edit(func(a *smp.Alert) { a.Labels["component"] = "bitcoin" }),
		"state not the rule's": edit(func(a *smp.Alert) { a.Labels["status_state"] = "outage" }),
		"other incident":       edit(func(a *smp.Alert) { a.Labels["incident"] = "INC-009" }),
		"free-text summary":    edit(func(a *smp.Alert) { a.Annotations["summary"] = "SMP is shutting down, withdraw your money" }),
		"summary overflowing": edit(func(a *smp.Alert) {
			a.Annotations["summary"] = strings.ReplaceAll(engineDownSummary(), "smp-0:8080", strings.Repeat("x", 65))
		}),
		"unknown annotation":  edit(func(a *smp.Alert) { a.Annotations["description"] = "hi" }),
		"fingerprint > 64":    edit(func(a *smp.Alert) { a.Fingerprint = strings.Repeat("f", 65) }),
		"no fingerprint":      edit(func(a *smp.Alert) { a.Fingerprint = "" }),
		"name > 128":          edit(func(a *smp.Alert) { a.Name = strings.Repeat("n", 129); a.Labels["alertname"] = a.Name }),
		"severity > 32":       edit(func(a *smp.Alert) { a.Severity = strings.Repeat("s", 33) }),
		"severity not rule's": edit(func(a *smp.Alert) { a.Severity = "info" }),
		"label value > 256":   edit(func(a *smp.Alert) { a.Labels["instance"] = strings.Repeat("i", 257) }),
		"bad label name":      edit(func(a *smp.Alert) { a.Labels["in stance"] = "x" }),
		"status":              edit(func(a *smp.Alert) { a.Status = "pending" }),
		"alertname differs":   edit(func(a *smp.Alert) { a.Labels["alertname"] = "KafkaBrokerDown" }),
	} {
		if _, err := svc.RecordAlerts(ctx, am, []smp.Alert{good, bad}); smp.ErrorCode(err) != smp.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	if _, err := svc.RecordAlerts(ctx, am, nil); smp.ErrorCode(err) != smp.EINVALID {
		t.Errorf("no alerts: %v", err)
	}
	if got, _ := db.FindAlerts(ctx, "", 10); len(got) != 0 {
		t.Fatalf("refused posts recorded %d alerts: %+v", len(got), got[0])
	}
	if audit, _ := db.FindAudit(ctx, smp.AuditFilter{Action: "alerts.receive"}); len(audit) != 0 {
		t.Fatalf("refused posts audited: %+v", audit)
	}
	if p, _ := svc.Page(ctx); p.Overall != smp.StateOperational {
		t.Fatalf("refused posts changed the page: %s", p.Overall)
	}
}
