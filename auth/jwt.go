package auth

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"smp"
)

// JWTConfig configures the bearer JWTs accepted besides SMP's own tokens
// (the runbook's $JWT, issued by the company's identity provider).
type JWTConfig struct {
	// HS256Secret verifies HS256 tokens (SMP_JWT_HS256_SECRET; never
	// logged). JWKSURL serves the RSA keys of RS256 tokens, by kid. At
	// least one is required.
	HS256Secret []byte
	JWKSURL     string
	// Issuer and Audience, when set, must be the token's iss and one of
	// its aud.
	Issuer   string
	Audience string
	// RoleClaim names the claim holding the SMP role (default "role").
	RoleClaim string
	// Client fetches the JWKS (default: a client with a 5 s timeout).
	Client *http.Client
	// Now is the clock expiry is checked against (default time.Now).
	Now        func() time.Time
	Registerer prometheus.Registerer
}

// JWTVerifier checks bearer JWTs: signature (HS256 with the secret, RS256
// with the JWKS's key of the token's kid), expiry (required), issuer and
// audience, and a role SMP knows in the role claim.
type JWTVerifier struct {
	cfg      JWTConfig
	rejected *prometheus.CounterVec

	mu      sync.Mutex
	keys    map[string]*rsa.PublicKey
	fetched time.Time
}

// NewJWTVerifier returns a verifier, or nil, nil when neither a secret nor
// a JWKS URL is configured (no JWT is accepted then).
func NewJWTVerifier(cfg JWTConfig) (*JWTVerifier, error) {
	if len(cfg.HS256Secret) == 0 && cfg.JWKSURL == "" {
		return nil, nil
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = "role"
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	v := &JWTVerifier{cfg: cfg, keys: map[string]*rsa.PublicKey{}}
	v.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_auth_jwt_rejected_total",
		Help: "Bearer JWTs refused, by reason (malformed, signature, expired, issuer, audience, role, key)."}, []string{"reason"})
	if err := cfg.Registerer.Register(v.rejected); err != nil {
		return nil, fmt.Errorf("auth: register JWT metrics: %w", err)
	}
	return v, nil
}

// LooksLikeJWT reports whether a bearer token has a JWT's three parts.
func LooksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2 && strings.HasPrefix(token, "eyJ")
}

// Verify checks token and returns its principal ("jwt:<sub>" with the
// role of the role claim). EUNAUTHORIZED for a malformed, badly signed,
// expired, wrong-issuer or wrong-audience token or an unknown key,
// EFORBIDDEN for a role SMP does not know; each refusal is counted in
// smp_auth_jwt_rejected_total{reason}.
func (v *JWTVerifier) Verify(ctx context.Context, token string) (smp.Principal, error) {
	var methods []string
	if len(v.cfg.HS256Secret) > 0 {
		methods = append(methods, "HS256")
	}
	if v.cfg.JWKSURL != "" {
		methods = append(methods, "RS256")
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithExpirationRequired(), jwt.WithTimeFunc(v.cfg.Now),
		jwt.WithLeeway(30 * time.Second)}
	if v.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.cfg.Issuer))
	}
	if v.cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(v.cfg.Audience))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		switch t.Method.Alg() {
		case "HS256":
			return v.cfg.HS256Secret, nil
		case "RS256":
			kid, _ := t.Header["kid"].(string)
			return v.key(ctx, kid)
		}
		return nil, fmt.Errorf("algorithm %s not accepted", t.Method.Alg())
	}, opts...)
	if err != nil {
		reason := "signature"
		switch {
		case errors.Is(err, jwt.ErrTokenMalformed):
			reason = "malformed"
		case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			reason = "expired"
		case errors.Is(err, jwt.ErrTokenInvalidIssuer):
			reason = "issuer"
		case errors.Is(err, jwt.ErrTokenInvalidAudience):
			reason = "audience"
		case errors.Is(err, errUnknownKey):
			reason = "key"
		}
		v.rejected.WithLabelValues(reason).Inc()
		return smp.Principal{}, smp.Errorf(smp.EUNAUTHORIZED, "bearer JWT refused (%s): %v", reason, err)
	}
	role, _ := claims[v.cfg.RoleClaim].(string)
	if !smp.ValidRole(smp.Role(role)) {
		v.rejected.WithLabelValues("role").Inc()
		return smp.Principal{}, smp.Errorf(smp.EFORBIDDEN, "bearer JWT: claim %q is %q, not an SMP role", v.cfg.RoleClaim, role)
	}
	sub, _ := claims["sub"].(string)
	name := "jwt:" + sub
	if !ValidName(name) {
		name = "jwt"
	}
	return smp.Principal{Name: name, Role: smp.Role(role)}, nil
}

var errUnknownKey = errors.New("no such key in the JWKS")

// key returns the JWKS's RSA key kid, fetching the JWKS when kid is not
// known yet (at most every 10 s: an unknown kid does not hammer it).
func (v *JWTVerifier) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	if now := v.cfg.Now(); v.fetched.IsZero() || now.Sub(v.fetched) >= 10*time.Second || now.Before(v.fetched) {
		keys, err := fetchJWKS(ctx, v.cfg.Client, v.cfg.JWKSURL)
		if err != nil {
			return nil, err
		}
		v.keys, v.fetched = keys, now
	}
	if k, ok := v.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: kid %q", errUnknownKey, kid)
}

type jwks struct {
	Keys []struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		N   string `json:"n"`
		E   string `json:"e"`
	} `json:"keys"`
}

func fetchJWKS(ctx context.Context, c *http.Client, url string) (map[string]*rsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS %s: HTTP %d", url, resp.StatusCode)
	}
	var set jwks
	if err := json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", url, err)
	}
	out := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) > 4 {
			continue
		}
		out[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return out, nil
}

// WithJWT makes Admin accept bearer JWTs verified by v (nil: none). It
// returns a.
func (a *Authenticator) WithJWT(v *JWTVerifier) *Authenticator {
	a.jwt = v
	return a
}
