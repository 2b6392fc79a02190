// Package auth is who may do what: bearer tokens (how they are made and
// stored), the principals they resolve to, and the one permission table
// that the admin API's routes, the portal (GET /admin/me) and the
// operations in ops all check. The Role and Principal types themselves are
// the domain's (smp.Role, smp.Principal): audit entries carry them.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"regexp"

	"smp"
)

// Token kinds, as stored with each token's hash.
const (
	KindCustomer   = "customer"
	KindTechnician = "technician"
	KindAdmin      = "admin"
	KindPartner    = "partner" // a partner's own token (its wallet's top-ups)
)

// HashToken is how tokens are stored and looked up: hex SHA-256. A token
// itself is never stored.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// NewAdminToken returns a new random admin token ("adm_" and 48 hex digits).
func NewAdminToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random token: %w", err)
	}
	return "adm_" + hex.EncodeToString(b), nil
}

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9._@-]{2,64}$`)

// ValidName reports whether name may name an admin principal (recorded in
// audit entries): 2-64 letters, digits, . _ @ -.
func ValidName(name string) bool { return namePattern.MatchString(name) }

// Local is the principal of someone acting from the platform's own host
// (smp ctl without --server): whoever can open the database directly may
// do everything, so the role is admin; the name says who and from where.
func Local(osUser string) smp.Principal {
	if osUser == "" {
		osUser = "unknown"
	}
	return smp.Principal{Name: "cli:" + osUser, Role: smp.RoleAdmin}
}

// Roles of the permission table.
var (
	roleAny      = []smp.Role{smp.RoleOps, smp.RoleFinance, smp.RoleSecurity}
	roleOps      = []smp.Role{smp.RoleOps}
	roleFinance  = []smp.Role{smp.RoleFinance}
	roleAdmin    = []smp.Role{smp.RoleAdmin}
	roleOpsSec   = []smp.Role{smp.RoleOps, smp.RoleSecurity}
	roleSecurity = []smp.Role{smp.RoleSecurity}
)

// Permissions maps each admin action to the roles allowed to do it (the
// admin role may do everything). It is the one table: the admin API's
// routes, GET /admin/me (what the portal shows) and ops' use cases read it.
var Permissions = map[string][]smp.Role{
	"view":              roleAny,
	"flags.set":         roleOps,
	"orders.assign":     roleOps,
	"orders.candidates": roleOps,
	"orders.trace":      roleOps,
	"orders.mark_paid":  roleFinance,
	"events.replay":     roleAdmin,
	"bus.dlq_replay":    roleAdmin,
	"bus.reset_offsets": roleAdmin,
	"redis.flush_cache": roleAdmin,
	"breaker.half_open": roleOps,
	"status.set":        roleOps,
	"wallets.verify":    roleFinance,
	"wallets.topup":     roleFinance,
	"wallets.adjust":    roleFinance,
	"wallets.set_floor": roleFinance,
	"wallets.replay":    roleFinance,
	// "run reconciliation now" (INC-010): finance's; every role reads
	// the runs (on-call's triage pulls the report).
	"wallets.reconcile": roleFinance,
	// alerts.receive is Alertmanager's alone (POST
	// /integrations/alertmanager/webhook): it authenticates with its own
	// secret, and no admin token reaches the receiver (Alertmanager).
	"alerts.receive": {smp.RoleAlertmanager},
	// Onboarding (package catalog): ops create and change the catalogue;
	// everyone reads cities and services; partners are read by finance
	// (wallets) and security (fraud) too; technicians and customers, with
	// their phone numbers, by ops only.
	"catalog.write": roleOps,
	"catalog.view":  roleAny,
	"partners.view": {smp.RoleOps, smp.RoleFinance, smp.RoleSecurity},
	"people.view":   roleOps,
	// Logins: who is logged in, logging them out (INC-004's "users are
	// logged out", on purpose); the simulated SMS outbox holds live
	// codes, so only admins read it.
	"sessions.view":        roleOpsSec,
	"sessions.revoke":      roleOpsSec,
	"sms.outbox":           roleAdmin,
	"technicians.settings": roleOps,
	// The Kafka Connect worker's REST API (:8083, package connectapi):
	// statuses and offsets for every role, restarts, pauses, stops,
	// configurations and offset changes for ops.
	"connect.view":   roleAny,
	"connect.manage": roleOps,
	// The read model (INC-009): reindex, re-sync and the drift check's
	// repair; its health views, searches and checks are "view".
	"readmodel.manage": roleOps,
	// Master data (issue 21): rates and taxes are finance's, countries,
	// currencies and translations ops'; everyone reads them.
	"masterdata.write": {smp.RoleOps, smp.RoleFinance},
	"masterdata.view":  roleAny,
	// Fraud (INC-011): the detector's alerts and evidence are security's.
	"fraud.view": {smp.RoleSecurity},
	// Replication between regions (INC-012): its status for everyone,
	// pausing and resuming a path for ops.
	"regions.view":  roleAny,
	"regions.pause": roleOps,
	// Enforcement on partners' wallets (INC-011): security freezes,
	// unfreezes and soft-blocks wallets and keeps the partners' IP
	// allowlists; security and finance read the compliance reports.
	// The velocity guard rails have no permission: nobody, the admin
	// role included, may change them (ops.ChangeGuardRails).
	"wallets.freeze":        roleSecurity,
	"wallets.soft_block":    roleSecurity,
	"wallets.held":          roleSecurity, // release or reverse a held top-up
	"partners.ip_allowlist": roleSecurity,
	"compliance.view":       {smp.RoleSecurity, smp.RoleFinance},
}

// Roles returns the roles allowed perm; it panics for a permission that is
// not in the table (a programming error, caught when routes are built).
func Roles(perm string) []smp.Role {
	roles, ok := Permissions[perm]
	if !ok {
		panic("auth: unknown permission " + perm)
	}
	return roles
}

// Check returns nil if p may do perm, EFORBIDDEN otherwise.
func Check(p smp.Principal, perm string) error {
	roles := Roles(perm)
	if !p.Allows(roles...) {
		return smp.Errorf(smp.EFORBIDDEN, "role %s may not do this (needs one of %v)", p.Role, roles)
	}
	return nil
}

// Can lists, for every permission, whether p has it (GET /admin/me).
func Can(p smp.Principal) map[string]bool {
	can := make(map[string]bool, len(Permissions))
	for perm, roles := range Permissions {
		can[perm] = p.Allows(roles...)
	}
	return can
}

// TokenStore resolves a token's hash (sqlstore implements it).
type TokenStore interface {
	// FindTokenOwner returns the token's kind, its owner and, for admin
	// tokens, the role; EUNAUTHORIZED for an unknown hash.
	FindTokenOwner(ctx context.Context, tokenHash string) (kind, ownerID string, role smp.Role, err error)
}

// Authenticator resolves bearer tokens.
type Authenticator struct {
	tokens   TokenStore
	admin    [32]byte
	hasAdmin bool
	am       [32]byte
	hasAM    bool
	logins   *Logins
	jwt      *JWTVerifier
}

// UseSessions makes the authenticator accept the session tokens of l
// (customers and technicians who logged in with a code) besides stored
// tokens.
func (a *Authenticator) UseSessions(l *Logins) { a.logins = l }

// owner resolves a customer's or technician's token, session or stored.
func (a *Authenticator) owner(ctx context.Context, token string) (kind, id string, err error) {
	if a.logins != nil && IsSessionToken(token) {
		s, err := a.logins.Resolve(ctx, token)
		if err != nil {
			return "", "", err
		}
		return s.OwnerKind, s.OwnerID, nil
	}
	kind, id, _, err = a.tokens.FindTokenOwner(ctx, HashToken(token))
	return kind, id, err
}

// NewAuthenticator resolves tokens through tokens; adminToken, when set,
// is also accepted as the admin role's token (principal "admin").
func NewAuthenticator(tokens TokenStore, adminToken string) *Authenticator {
	a := &Authenticator{tokens: tokens}
	if adminToken != "" {
		a.admin, a.hasAdmin = sha256.Sum256([]byte(adminToken)), true
	}
	return a
}

// WithAlertmanager sets the Alertmanager receiver's secret (SMP_ALERTMANAGER_TOKEN):
// see Alertmanager. It returns a.
func (a *Authenticator) WithAlertmanager(token string) *Authenticator {
	if token != "" {
		a.am, a.hasAM = sha256.Sum256([]byte(token)), true
	}
	return a
}

// Alertmanager resolves the bearer token of the Alertmanager receiver:
// the configured secret (compared in constant time) is the principal
// "alertmanager" with RoleAlertmanager. Any other token is refused:
// EFORBIDDEN for a token SMP knows (an admin of any role may not post
// alerts), EUNAUTHORIZED for none or an unknown one, and for every token
// when no secret is configured.
func (a *Authenticator) Alertmanager(ctx context.Context, token string) (smp.Principal, error) {
	if token == "" {
		return smp.Principal{}, smp.Errorf(smp.EUNAUTHORIZED, "Alertmanager's bearer token (SMP_ALERTMANAGER_TOKEN) is required")
	}
	sum := sha256.Sum256([]byte(token))
	if a.hasAM && subtle.ConstantTimeCompare(sum[:], a.am[:]) == 1 {
		return smp.Principal{Name: "alertmanager", Role: smp.RoleAlertmanager}, nil
	}
	if !a.hasAM {
		return smp.Principal{}, smp.Errorf(smp.EUNAUTHORIZED, "this server takes no alerts: it has no Alertmanager token (SMP_ALERTMANAGER_TOKEN)")
	}
	if _, err := a.Admin(ctx, token); err == nil || smp.ErrorCode(err) == smp.EFORBIDDEN {
		return smp.Principal{}, smp.Errorf(smp.EFORBIDDEN, "only Alertmanager's own token (SMP_ALERTMANAGER_TOKEN) may post alerts, not an admin token")
	}
	return smp.Principal{}, smp.Errorf(smp.EUNAUTHORIZED, "unknown token: Alertmanager's bearer token (SMP_ALERTMANAGER_TOKEN) is required")
}

// Admin resolves an admin token to its principal: EUNAUTHORIZED without
// a token or for an unknown one, EFORBIDDEN for another kind of token.
func (a *Authenticator) Admin(ctx context.Context, token string) (smp.Principal, error) {
	if token == "" {
		return smp.Principal{}, smp.Errorf(smp.EUNAUTHORIZED, "an admin bearer token is required")
	}
	if a.hasAdmin {
		sum := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(sum[:], a.admin[:]) == 1 {
			return smp.Principal{Name: "admin", Role: smp.RoleAdmin}, nil
		}
	}
	if a.jwt != nil && LooksLikeJWT(token) {
		return a.jwt.Verify(ctx, token)
	}
	kind, owner, role, err := a.tokens.FindTokenOwner(ctx, HashToken(token))
	if err != nil {
		return smp.Principal{}, err
	}
	if kind != KindAdmin {
		return smp.Principal{}, smp.Errorf(smp.EFORBIDDEN, "this token is not an admin token")
	}
	return smp.Principal{Name: owner, Role: role}, nil
}

// Owner resolves a customer's or technician's token (want is the kind)
// to the owner's id: a stored token, or a session token once UseSessions
// was called. EUNAUTHORIZED without a token or for an unknown, revoked or
// expired one, EFORBIDDEN for another kind.
func (a *Authenticator) Owner(ctx context.Context, token, want string) (string, error) {
	if token == "" {
		return "", smp.Errorf(smp.EUNAUTHORIZED, "a %s bearer token is required", want)
	}
	kind, id, err := a.owner(ctx, token)
	if err != nil {
		return "", err
	}
	if kind != want {
		return "", smp.Errorf(smp.EFORBIDDEN, "this is not a %s token", want)
	}
	return id, nil
}

// Known checks that token is any stored token (customer, technician or
// admin): EUNAUTHORIZED otherwise.
func (a *Authenticator) Known(ctx context.Context, token string) error {
	if token == "" {
		return smp.Errorf(smp.EUNAUTHORIZED, "a bearer token is required")
	}
	_, _, err := a.owner(ctx, token)
	return err
}
