package smp

import "context"

// AuditStore reads the audit log of manual actions.
type AuditStore interface {
	// FindAudit lists entries matching f, newest first. A Limit of 0,
	// negative or above 1000 means 100. No codes.
	FindAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

// AuditTx records a manual action in the transaction of its effect, so an
// action and its entry commit or fail together.
type AuditTx interface {
	// AddAudit appends an entry (its ID is assigned). No codes.
	AddAudit(ctx context.Context, a AuditEntry) error
}
