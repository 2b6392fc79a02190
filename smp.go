// Package smp holds SMP's domain: orders and their stages, technicians,
// cities and services, events, and the interfaces that the storage,
// messaging and transport packages implement. It imports no project package
// and does no I/O.
package smp

import (
	"context"
	"time"
)

// Role is an admin principal's role. RoleAdmin satisfies every role check.
type Role string

const (
	RoleAdmin    Role = "admin"
	RoleOps      Role = "ops"
	RoleFinance  Role = "finance"
	RoleSecurity Role = "security"
	// RoleAlertmanager is Alertmanager's, authenticated by its own secret
	// (SMP_ALERTMANAGER_TOKEN), never by an admin token: it may only
	// post alerts to the receiver.
	RoleAlertmanager Role = "alertmanager"
)

// ValidRole reports whether r is one of the roles an admin token may have
// (RoleAlertmanager is not: Alertmanager has its own secret).
func ValidRole(r Role) bool {
	switch r {
	case RoleAdmin, RoleOps, RoleFinance, RoleSecurity:
		return true
	}
	return false
}

// Principal is the authenticated caller of an admin endpoint.
type Principal struct {
	Name string
	Role Role
}

// Allows reports whether p may act in one of the given roles.
func (p Principal) Allows(roles ...Role) bool {
	if p.Role == RoleAdmin {
		return true
	}
	for _, r := range roles {
		if p.Role == r {
			return true
		}
	}
	return false
}

// Feature flags named by the runbook.
const (
	FlagEnableAutoDispatch       = "ENABLE_AUTO_DISPATCH"
	FlagIntegrationBypassCircuit = "INTEGRATION_BYPASS_CIRCUIT"
)

// DefaultFlags are the flags every installation has, with their defaults.
var DefaultFlags = map[string]bool{
	FlagEnableAutoDispatch:       true,
	FlagIntegrationBypassCircuit: false,
}

// AuditEntry records a manual action: who did what to which target, when,
// the state before and after, and why.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Role   Role      `json:"role"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Before string    `json:"before,omitempty"`
	After  string    `json:"after,omitempty"`
	Reason string    `json:"reason"`
}

// AuditFilter narrows FindAudit.
type AuditFilter struct {
	Target string
	Action string
	Limit  int
}

// Sleep waits for d or until ctx is done; it reports whether d elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
