package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"smp"
	"smp/auth"
	"smp/internal/envtest"
	"smp/sim"
)

// loginFixture is the platform with a fake clock, the SMS simulator and
// three accounts with phones: technician T0001, customer C0001 and a
// suspended technician T0002.
type loginFixture struct {
	t     *testing.T
	a     *App
	clock *fakeClock
	sms   *sim.SMS
	admin string
}

const (
	phoneTech      = "+84901000001"
	phoneCustomer  = "+84901000002"
	phoneSuspended = "+84901000003"
)

func newLoginFixture(t *testing.T, redisAddr string) *loginFixture {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	cfg := testConfig(t)
	cfg.Now, cfg.AdminToken = clock.Now, "adm-test"
	if redisAddr != "" {
		b := make([]byte, 4)
		rand.Read(b)
		cfg.RedisAddr, cfg.RedisPrefix = redisAddr, "tlogin"+hex.EncodeToString(b)+":"
	}
	sms := &sim.SMS{Now: clock.Now}
	cfg.SMS = sms
	ctx := context.Background()
	db, err := OpenStore(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := sim.Seed(ctx, db, sim.SeedConfig{Partners: 1, Technicians: 2, Customers: 1, Seed: 7}, auth.HashToken)
	if err == nil {
		t1, t2, c1 := ds.Technicians[0].Technician, ds.Technicians[1].Technician, ds.Customers[0].Customer
		t1.Phone, t2.Phone, t2.Status, c1.Phone = phoneTech, phoneSuspended, smp.StatusSuspended, phoneCustomer
		err = errorsJoin(db.UpsertTechnician(ctx, &t1), db.UpsertTechnician(ctx, &t2), db.UpsertCustomer(ctx, &c1))
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	a := &App{Cfg: cfg}
	if err := a.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close()
		if a.Redis != nil {
			iter := a.Redis.Client().Scan(ctx, 0, cfg.RedisPrefix+"*", 500).Iterator()
			for iter.Next(ctx) {
				a.Redis.Client().Unlink(ctx, iter.Val())
			}
		}
	})
	return &loginFixture{t: t, a: a, clock: clock, sms: sms, admin: "adm-test"}
}

func errorsJoin(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// call sends a request and returns the status, the decoded JSON body and
// the headers.
func (f *loginFixture) call(method, path, token string, body any) (int, map[string]any, http.Header) {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, f.a.HTTP.URL()+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			f.t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, m, resp.Header
}

func errCode(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// sendCode asks for a code and returns the text the phone received.
func (f *loginFixture) sendCode(phone string) string {
	f.t.Helper()
	n := len(f.sms.Outbox())
	if st, m, _ := f.call("POST", "/v1/auth/otp", "", map[string]string{"phone": phone}); st != http.StatusAccepted || m["expires_in_seconds"] != 300.0 {
		f.t.Fatalf("POST /v1/auth/otp %s: %d %v", phone, st, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e164, _ := smp.ParsePhone(phone)
	msg, err := f.sms.Wait(ctx, e164, n)
	if err != nil {
		f.t.Fatalf("no SMS to %s: %v", e164, err)
	}
	if msg.Code() == "" {
		f.t.Fatalf("SMS without a code: %q", msg.Text)
	}
	return msg.Code()
}

func (f *loginFixture) verify(phone, code string) (int, map[string]any) {
	f.t.Helper()
	st, m, _ := f.call("POST", "/v1/auth/verify", "", map[string]string{"phone": phone, "code": code})
	return st, m
}

// login returns a session token for phone.
func (f *loginFixture) login(phone string) (token, id string) {
	f.t.Helper()
	st, m := f.verify(phone, f.sendCode(phone))
	if st != http.StatusOK {
		f.t.Fatalf("verify: %d %v", st, m)
	}
	sess, _ := m["session"].(map[string]any)
	token, _ = m["token"].(string)
	id, _ = sess["id"].(string)
	if !strings.HasPrefix(token, "ses_") || id == "" {
		f.t.Fatalf("verify answered %v", m)
	}
	return token, id
}

func wrong(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// nextWindow moves the clock past the rate limits' window.
func (f *loginFixture) nextWindow() { f.clock.Advance(10 * time.Minute) }

// TestLoginFlow: a technician and a customer log in with a code sent
// through the SMS simulator, use the session token on /v1 and the
// WebSocket, and lose it when ops revoke it or it expires; codes expire,
// are used once and allow a few attempts; requests are limited per phone
// and per IP with 429s. On the embedded default (sessions in SQLite, codes
// in process) and on Redis (session:* keys).
func TestLoginFlow(t *testing.T) {
	t.Parallel()
	t.Run("Embedded", func(t *testing.T) {
		t.Parallel()
		testLoginFlow(t, newLoginFixture(t, ""))
	})
	t.Run("Redis", func(t *testing.T) {
		t.Parallel()
		addr, why := envtest.RedisAddr()
		if addr == "" {
			envtest.Skip(t, "Redis", why)
		}
		f := newLoginFixture(t, addr)
		testLoginFlow(t, f)
		// The sessions live under the runbook's session:* keys, with a TTL.
		_, id := f.login(phoneCustomer)
		ttl, err := f.a.Redis.Client().PTTL(context.Background(), f.a.Cfg.RedisPrefix+"session:login:"+id).Result()
		if err != nil || ttl < 29*24*time.Hour || ttl > 30*24*time.Hour {
			t.Fatalf("session:login:%s TTL = %v (%v), want the session's 30 days", id, ttl, err)
		}
	})
}

func testLoginFlow(t *testing.T, f *loginFixture) {
	ctx := context.Background()

	// A technician logs in with the national form of their number.
	code := f.sendCode("0901 000 001")
	if st, m := f.verify(phoneTech, wrong(code)); st != 401 || errCode(m) != smp.EUNAUTHORIZED {
		t.Fatalf("wrong code: %d %v", st, m)
	}
	st, m := f.verify(phoneTech, code)
	if st != 200 {
		t.Fatalf("right code: %d %v", st, m)
	}
	token := m["token"].(string)
	if st, m := f.verify(phoneTech, code); st != 401 {
		t.Fatalf("the code worked twice: %d %v", st, m)
	}
	st, m, _ = f.call("GET", "/v1/auth/session", token, nil)
	if st != 200 || m["owner_kind"] != "technician" || m["owner_id"] != "T0001" {
		t.Fatalf("GET /v1/auth/session: %d %v", st, m)
	}
	// The token works on /v1 and opens the WebSocket.
	if st, m, _ := f.call("PUT", "/v1/technicians/me/settings", token, map[string]any{"work_start": "08:00", "work_end": "18:00", "max_radius_km": 8}); st != 200 || m["updated_by"] != "technician:T0001" {
		t.Fatalf("PUT /v1/technicians/me/settings with the session: %d %v", st, m)
	}
	// Ops set them too: with a reason, audited; bad settings are a 400.
	if st, m, _ := f.call("PUT", "/admin/technicians/T0001/settings", f.admin, map[string]any{"max_radius_km": 5}); st != 400 {
		t.Fatalf("ops' settings without a reason: %d %v", st, m)
	}
	if st, m, _ := f.call("PUT", "/admin/technicians/T0001/settings", f.admin, map[string]any{"work_start": "25:00", "work_end": "26:00", "reason": "x y z"}); st != 400 || errCode(m) != smp.EINVALID {
		t.Fatalf("ops' bad settings: %d %v", st, m)
	}
	if st, m, _ := f.call("PUT", "/admin/technicians/T0001/settings", f.admin, map[string]any{"weekly_days_off": []string{"sun"}, "max_radius_km": 5, "reason": "agreed by phone"}); st != 200 || m["updated_by"] != "admin" {
		t.Fatalf("ops' settings: %d %v", st, m)
	}
	if st, m, _ := f.call("GET", "/admin/technicians/T0001/settings", f.admin, nil); st != 200 || m["max_radius_km"] != 5.0 || m["work_start"] != "" {
		t.Fatalf("GET settings: %d %v", st, m)
	}
	if e, err := f.a.Store.FindAudit(ctx, smp.AuditFilter{Target: "technician:T0001", Action: "technicians.settings"}); err != nil || len(e) != 1 || e[0].Reason != "agreed by phone" || !strings.Contains(e[0].Before, `"work_start":"08:00"`) {
		t.Fatalf("audit of ops' settings: %+v %v", e, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	ws, _, err := websocket.Dial(wctx, "ws"+strings.TrimPrefix(f.a.HTTP.URL(), "http")+"/v1/technicians/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		cancel()
		t.Fatalf("WebSocket with the session token: %v", err)
	}
	defer cancel()
	defer ws.CloseNow()
	var hello map[string]any
	err = wsjson.Read(wctx, ws, &hello)
	if err != nil || hello["type"] != "welcome" {
		t.Fatalf("WebSocket: %v %v", hello, err)
	}
	// A technician's session is not a customer's.
	if st, _, _ := f.call("GET", "/v1/me/profile", token, nil); st != 403 {
		t.Fatalf("a technician's session on a customer route: %d", st)
	}

	// Ops list and revoke it (audited): the next request is a 401.
	st, m, _ = f.call("GET", "/admin/sessions?owner=T0001&kind=technician", f.admin, nil)
	list, _ := m["sessions"].([]any)
	if st != 200 || len(list) != 1 {
		t.Fatalf("GET /admin/sessions: %d %v", st, m)
	}
	id := list[0].(map[string]any)["id"].(string)
	if _, ok := list[0].(map[string]any)["secret_hash"]; ok {
		t.Fatal("the session listing shows the secret's hash")
	}
	if st, m, _ := f.call("DELETE", "/admin/sessions/"+id, f.admin, nil); st != 400 {
		t.Fatalf("revoke without a reason: %d %v", st, m)
	}
	if st, m, _ := f.call("DELETE", "/admin/sessions/"+id, f.admin, map[string]string{"reason": "phone lost"}); st != 200 {
		t.Fatalf("revoke: %d %v", st, m)
	}
	if st, m, _ := f.call("GET", "/v1/technicians/me/settings", token, nil); st != 401 || errCode(m) != smp.EUNAUTHORIZED {
		t.Fatalf("revoked session: %d %v, want 401", st, m)
	}
	// The live WebSocket is told, then closed.
	for {
		var msg map[string]any
		if err := wsjson.Read(wctx, ws, &msg); err != nil {
			t.Fatalf("the WebSocket ended without logged_out: %v", err)
		}
		if msg["type"] == smp.MessageLoggedOut {
			break
		}
	}
	if _, _, err := ws.Read(wctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("after logged_out the WebSocket is closed with 1008: %v", err)
	}
	if st, _, _ := f.call("DELETE", "/admin/sessions/"+id, f.admin, map[string]string{"reason": "again"}); st != 404 {
		t.Fatalf("revoke twice: %d, want 404", st)
	}
	audit, err := f.a.Store.FindAudit(ctx, smp.AuditFilter{Target: "session:" + id})
	if err != nil || len(audit) != 2 || audit[0].Reason != "phone lost" || !strings.Contains(audit[0].After, `"done"`) || !strings.Contains(audit[1].After, `"intent"`) {
		t.Fatalf("audit of the revocation: %+v %v", audit, err)
	}

	// A customer logs in the same way; sessions expire with the clock.
	f.nextWindow()
	ctoken, _ := f.login(phoneCustomer)
	if st, _, _ := f.call("GET", "/v1/auth/session", ctoken, nil); st != 200 {
		t.Fatalf("customer session: %d", st)
	}
	f.clock.Advance(f.a.Logins.SessionTTL())
	if st, _, _ := f.call("GET", "/v1/orders/nope", ctoken, nil); st != 401 {
		t.Fatalf("expired session: %d, want 401", st)
	}

	// A code expires after 5 minutes.
	f.nextWindow()
	code = f.sendCode(phoneTech)
	f.clock.Advance(5*time.Minute + time.Second)
	if st, _ := f.verify(phoneTech, code); st != 401 {
		t.Fatalf("a code past 5 minutes: %d, want 401", st)
	}

	// Five attempts per code: the sixth fails even with the right code.
	f.nextWindow()
	code = f.sendCode(phoneTech)
	for i := 0; i < 5; i++ {
		if st, _ := f.verify(phoneTech, wrong(code)); st != 401 {
			t.Fatalf("attempt %d: %d", i+1, st)
		}
	}
	if st, m := f.verify(phoneTech, code); st != 401 || !strings.Contains(m["error"].(map[string]any)["message"].(string), "too many") {
		t.Fatalf("right code after 5 wrong attempts: %d %v, want 401", st, m)
	}
	// A new code works.
	f.nextWindow()
	f.login(phoneTech)

	// Three codes per number per window, then 429 with Retry-After.
	f.nextWindow()
	for i := 0; i < 3; i++ {
		f.sendCode(phoneCustomer)
	}
	st, m, hdr := f.call("POST", "/v1/auth/otp", "", map[string]string{"phone": phoneCustomer})
	if st != 429 || errCode(m) != smp.ETOOMANY || hdr.Get("Retry-After") == "" {
		t.Fatalf("fourth code: %d %v Retry-After=%q, want 429", st, m, hdr.Get("Retry-After"))
	}
	// Twenty per address, whatever the number (unknown numbers count and
	// get the same answer, but no text).
	f.nextWindow()
	before := len(f.sms.Outbox())
	for i := 0; i < 20; i++ {
		if st, m, _ := f.call("POST", "/v1/auth/otp", "", map[string]string{"phone": fmt.Sprintf("+8491200%04d", i)}); st != 202 {
			t.Fatalf("code %d from one address: %d %v", i, st, m)
		}
	}
	if n := len(f.sms.Outbox()); n != before {
		t.Fatalf("numbers without an account got %d texts", n-before)
	}
	if st, m, _ := f.call("POST", "/v1/auth/otp", "", map[string]string{"phone": phoneTech}); st != 429 || errCode(m) != smp.ETOOMANY {
		t.Fatalf("21st code from one address: %d %v, want 429", st, m)
	}

	// A suspended technician gets no code; bad input is a 400.
	f.nextWindow()
	before = len(f.sms.Outbox())
	if st, _, _ := f.call("POST", "/v1/auth/otp", "", map[string]string{"phone": phoneSuspended}); st != 202 || len(f.sms.Outbox()) != before {
		t.Fatalf("suspended technician: %d, %d texts", st, len(f.sms.Outbox())-before)
	}
	for _, body := range []any{map[string]string{"phone": "12345"}, map[string]string{"phone": phoneTech, "as": "admin"}, map[string]any{"phone": 84}, "x"} {
		if st, m, _ := f.call("POST", "/v1/auth/otp", "", body); st != 400 || errCode(m) != smp.EINVALID {
			t.Fatalf("POST /v1/auth/otp %v: %d %v, want 400", body, st, m)
		}
	}
	if st, _ := f.verify(phoneTech, "12ab56"); st != 400 {
		t.Fatalf("malformed code: %d, want 400", st)
	}

	// The provider failing is a 503, and leaves no usable code behind.
	f.nextWindow()
	f.sms.SetFail(true)
	if st, m, _ := f.call("POST", "/v1/auth/otp", "", map[string]string{"phone": phoneTech}); st != 503 {
		t.Fatalf("SMS provider failing: %d %v", st, m)
	}
	f.sms.SetFail(false)

	// The outbox is readable by admins only; revoking all of an owner's
	// sessions ends each.
	if st, m, _ := f.call("GET", "/admin/sms/outbox", f.admin, nil); st != 200 || len(m["messages"].([]any)) == 0 {
		t.Fatalf("GET /admin/sms/outbox: %d %v", st, m)
	}
	f.nextWindow()
	t1, _ := f.login(phoneTech)
	f.nextWindow()
	t2, _ := f.login(phoneTech)
	if st, m, _ := f.call("POST", "/admin/sessions/revoke", f.admin, map[string]string{"owner_kind": "technician", "owner_id": "T0001", "reason": "offboarded"}); st != 200 || m["revoked"].(float64) < 2 {
		t.Fatalf("revoke all: %d %v", st, m)
	}
	for _, tok := range []string{t1, t2} {
		if st, _, _ := f.call("GET", "/v1/auth/session", tok, nil); st != 401 {
			t.Fatalf("a session outlived revoke-all: %d", st)
		}
	}

	// A technician suspended after logging in: their session stops
	// working at once (suspended means no login), and no new code comes.
	f.nextWindow()
	t3, _ := f.login(phoneTech)
	if st, m, _ := f.call("POST", "/admin/technicians/T0001/deactivate", f.admin, map[string]string{"reason": "suspended by the partner"}); st != 200 {
		t.Fatalf("suspend T0001: %d %v", st, m)
	}
	if st, m, _ := f.call("GET", "/v1/technicians/me/settings", t3, nil); st != 401 {
		t.Fatalf("a suspended technician's session: %d %v, want 401", st, m)
	}
	before = len(f.sms.Outbox())
	if st, _, _ := f.call("POST", "/v1/auth/otp", "", map[string]string{"phone": phoneTech}); st != 202 || len(f.sms.Outbox()) != before {
		t.Fatalf("a code for a suspended technician: %d", st)
	}
}
