package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"smp/sim"
)

// TestCtlSessions: a technician logs in with a code from the SMS
// simulator; smp ctl sessions list shows the session and revoke logs them
// out (their next request is a 401), one session or all of an owner's.
// Not parallel: the token comes from SMP_ADMIN_TOKEN.
func TestCtlSessions(t *testing.T) {
	sms := &sim.SMS{}
	a := startApp(t, func(c *Config) { c.SMS = sms })
	ctl := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append(append([]string{"ctl", "sessions"}, args...), "--server", a.url), &out, &errb)
		return out.String() + errb.String(), err
	}
	t.Setenv("SMP_ADMIN_TOKEN", a.admin)
	tech := a.ds.Technicians[0]
	login := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		token, err := sim.Login(ctx, a.url, tech.Phone, sms)
		must(t, err)
		return token
	}
	first, second := login(), login()

	out, err := ctl("list", "--owner", tech.ID, "--output", "json")
	var v struct {
		Sessions []struct {
			ID      string `json:"id"`
			OwnerID string `json:"owner_id"`
		} `json:"sessions"`
	}
	if err != nil || json.Unmarshal([]byte(out), &v) != nil || len(v.Sessions) != 2 {
		t.Fatalf("sessions list: %v\n%s", err, out)
	}
	out, err = ctl("list", "--owner", tech.ID)
	if err != nil || !strings.Contains(out, "OWNER_KIND") || strings.Count(out, tech.ID) != 2 {
		t.Fatalf("sessions list (table): %v\n%s", err, out)
	}
	var sess map[string]any
	r := a.do("GET", "/v1/auth/session", first, nil)
	sess = r.Body
	if r.Status != 200 {
		t.Fatalf("session: %d %s", r.Status, r.Raw)
	}
	if _, err := ctl("revoke", "--id", sess["id"].(string)); exitCode(err) != 2 {
		t.Fatalf("revoke without a reason: %v", err)
	}
	if out, err := ctl("revoke", "--id", sess["id"].(string), "--reason", "phone lost"); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	if r := a.do("GET", "/v1/auth/session", first, nil); r.Status != 401 {
		t.Fatalf("revoked session: %d", r.Status)
	}
	if r := a.do("GET", "/v1/auth/session", second, nil); r.Status != 200 {
		t.Fatalf("the other session went too: %d", r.Status)
	}
	if out, err := ctl("revoke", "--owner", tech.ID, "--kind", "technician", "--reason", "left the partner", "--output", "json"); err != nil || !strings.Contains(out, `"revoked": 1`) {
		t.Fatalf("revoke all: %v\n%s", err, out)
	}
	if r := a.do("GET", "/v1/auth/session", second, nil); r.Status != 401 {
		t.Fatalf("session after revoke-all: %d", r.Status)
	}
	r = a.do("GET", "/admin/audit?action=sessions.revoke", a.admin, nil)
	if entries, _ := r.Body["entries"].([]any); len(entries) != 4 {
		t.Fatalf("audit of two revocations (intent and outcome each): %s", r.Raw)
	}
}
