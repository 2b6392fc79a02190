package httpapi_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp"
	"smp/auth"
	"smp/httpapi"
	"smp/sqlstore"
)

var fraudNow = time.Date(2026, 5, 28, 3, 0, 0, 0, time.UTC)

// fraudServer serves the fraud endpoints over a store holding one flagged
// decision of P001 (30 minutes ago) and an older one (3 hours ago).
func fraudServer(t *testing.T, jwtCfg auth.JWTConfig) (*httpapi.Server, *prometheus.Registry) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for tok, p := range map[string]smp.Principal{"ops": {Name: "olga", Role: smp.RoleOps}, "sec": {Name: "sam", Role: smp.RoleSecurity}} {
		if err := db.PutToken(ctx, auth.HashToken(tok), auth.KindAdmin, p.Name, p.Role); err != nil {
			t.Fatal(err)
		}
	}
	dec := func(id string, at time.Time, signals ...string) *smp.FraudDecision {
		return &smp.FraudDecision{ID: id, EventID: "ev-" + id, EventType: "payment.wallet_topup_requested", PartnerID: "P001", TxnID: "W" + id,
			AmountVND: 50_000_000, Score: 60, Outcome: smp.FraudFreeze, Severity: smp.SeverityHigh, Signals: signals,
			Rules: []smp.FraudRuleResult{}, Evidence: smp.FraudEvidence{TxnIDs: []string{"W" + id, "Wprev"}, IPs: []string{"203.0.113.7"}},
			OccurredAt: at, CreatedAt: at}
	}
	if err := db.InTx(ctx, func(tx smp.Tx) error {
		if err := tx.InsertFraudDecision(ctx, dec("d1", fraudNow.Add(-30*time.Minute), "ip_multi_partner_high_value", "velocity")); err != nil {
			return err
		}
		return tx.InsertFraudDecision(ctx, dec("d0", fraudNow.Add(-3*time.Hour), "amount_spike"))
	}); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	jwtCfg.Registerer, jwtCfg.Now = reg, func() time.Time { return fraudNow }
	v, err := auth.NewJWTVerifier(jwtCfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Config{AdminToken: "adm", JWT: v, Now: func() time.Time { return fraudNow }}, httpapi.Deps{Store: db, Fraud: db})
	if err != nil {
		t.Fatal(err)
	}
	return srv, reg
}

func get(t *testing.T, srv *httpapi.Server, token, path string, want int) map[string]any {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	srv.Handler().ServeHTTP(w, req)
	var v map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("GET %s: not JSON: %s", path, w.Body.String())
	}
	if w.Code != want {
		t.Fatalf("GET %s: %d %v, want %d", path, w.Code, v, want)
	}
	return v
}

func claims(role string, exp time.Time, mod func(jwt.MapClaims)) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "an.nguyen", "iss": "https://sso.smp.vn", "aud": "smp-internal", "exp": exp.Unix(), "iat": fraudNow.Unix(), "role": role}
	if mod != nil {
		mod(c)
	}
	return c
}

func hs256(t *testing.T, secret string, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFraudAlertsJWT: GET /internal/fraud-alerts/recent as the runbook
// calls it: a good HS256 JWT of the security role lists the flagged
// partner with its txn ids and signals; expired, wrong-audience,
// wrong-issuer and badly signed tokens are 401 with the JSON error and
// counted; another role is 403; SMP's own tokens work as before.
func TestFraudAlertsJWT(t *testing.T) {
	t.Parallel()
	const secret = "a-secret-of-32-bytes-at-least!!!"
	srv, reg := fraudServer(t, auth.JWTConfig{HS256Secret: []byte(secret), Issuer: "https://sso.smp.vn", Audience: "smp-internal"})
	later := fraudNow.Add(time.Hour)
	good := hs256(t, secret, claims("security", later, nil))
	r := get(t, srv, good, "/internal/fraud-alerts/recent?hours=1", 200)
	alerts, _ := r["alerts"].([]any)
	if len(alerts) != 1 {
		t.Fatalf("alerts %v", r)
	}
	a := alerts[0].(map[string]any)
	if a["partner_id"] != "P001" || !equalJSON(a["txn_ids"], []any{"Wd1", "Wprev"}) ||
		!equalJSON(a["signals"], []any{"ip_multi_partner_high_value", "velocity"}) || a["severity"] != "high" || a["outcome"] != "freeze" {
		t.Fatalf("alert %v", a)
	}
	if r := get(t, srv, good, "/internal/fraud-alerts/recent?hours=4", 200); len(r["alerts"].([]any)) != 1 ||
		!equalJSON(r["alerts"].([]any)[0].(map[string]any)["signals"], []any{"ip_multi_partner_high_value", "velocity", "amount_spike"}) {
		t.Fatalf("4 hours: %v", r)
	}
	get(t, srv, hs256(t, secret, claims("admin", later, nil)), "/internal/fraud-alerts/recent", 200)
	get(t, srv, "sec", "/internal/fraud-alerts/recent", 200) // SMP's own token
	get(t, srv, good, "/internal/fraud-alerts/recent?hours=0", 400)
	for name, tc := range map[string]struct {
		token  string
		reason string
	}{
		"expired":        {hs256(t, secret, claims("security", fraudNow.Add(-time.Minute), nil)), "expired"},
		"no expiry":      {hs256(t, secret, claims("security", later, func(c jwt.MapClaims) { delete(c, "exp") })), "expired"},
		"wrong audience": {hs256(t, secret, claims("security", later, func(c jwt.MapClaims) { c["aud"] = "another-app" })), "audience"},
		"wrong issuer":   {hs256(t, secret, claims("security", later, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })), "issuer"},
		"bad signature":  {hs256(t, "another-secret-of-32-bytes-long!", claims("security", later, nil)), "signature"},
		"none":           {noneToken(claims("security", later, nil)), "signature"},
	} {
		before := testutil.ToFloat64(counter(t, reg, tc.reason))
		r := get(t, srv, tc.token, "/internal/fraud-alerts/recent", 401)
		if e, _ := r["error"].(map[string]any); e["code"] != "unauthorized" && e["code"] != smp.EUNAUTHORIZED {
			t.Errorf("%s: error body %v", name, r)
		}
		if after := testutil.ToFloat64(counter(t, reg, tc.reason)); after != before+1 {
			t.Errorf("%s: smp_auth_jwt_rejected_total{reason=%q} %v → %v", name, tc.reason, before, after)
		}
	}
	get(t, srv, hs256(t, secret, claims("ops", later, nil)), "/internal/fraud-alerts/recent", 403)
	get(t, srv, hs256(t, secret, claims("root", later, nil)), "/internal/fraud-alerts/recent", 403)
	get(t, srv, "ops", "/internal/fraud-alerts/recent", 403)
}

// TestFraudAlertsJWKS: RS256 JWTs verified with the keys of a JWKS URL
// (an httptest server), by kid; a key not in the set is 401.
func TestFraudAlertsJWKS(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()), "e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes())}}})
	}))
	t.Cleanup(jwks.Close)
	srv, reg := fraudServer(t, auth.JWTConfig{JWKSURL: jwks.URL, Audience: "smp-internal", RoleClaim: "smp_role"})
	sign := func(k *rsa.PrivateKey, kid string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	c := claims("", fraudNow.Add(time.Hour), func(c jwt.MapClaims) { c["smp_role"] = "security" })
	r := get(t, srv, sign(key, "k1", c), "/internal/fraud-alerts/recent", 200)
	if len(r["alerts"].([]any)) != 1 {
		t.Fatalf("alerts %v", r)
	}
	get(t, srv, sign(other, "k1", c), "/internal/fraud-alerts/recent", 401)
	get(t, srv, sign(other, "k2", c), "/internal/fraud-alerts/recent", 401)
	if n := testutil.ToFloat64(counter(t, reg, "key")); n != 1 {
		t.Fatalf(`rejected{reason="key"} = %v`, n)
	}
	// HS256 is not accepted when only a JWKS is configured.
	get(t, srv, hs256(t, "whatever-secret-of-32-bytes-long", c), "/internal/fraud-alerts/recent", 401)
}

func noneToken(c jwt.MapClaims) string {
	s, _ := jwt.NewWithClaims(jwt.SigningMethodNone, c).SignedString(jwt.UnsafeAllowNoneSignatureType)
	return s
}

func counter(t *testing.T, reg *prometheus.Registry, reason string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "smp_auth_jwt_rejected_total" {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == reason {
					v = m.GetCounter().GetValue()
				}
			}
		}
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	c.Add(v)
	return c
}

func equalJSON(a any, b []any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return strings.EqualFold(string(x), string(y))
}
