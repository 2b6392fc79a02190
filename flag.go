package smp

import (
	"context"
	"time"
)

// FlagStore reads feature flags.
type FlagStore interface {
	// FindFlags returns every flag's value: each of DefaultFlags (its
	// default until set) and any flag set. Always read fresh. No codes.
	FindFlags(ctx context.Context) (map[string]bool, error)
	// FindFlagChanges returns, for each flag ever set, when and by whom it
	// was last set (a flag at its default is absent). No codes.
	FindFlagChanges(ctx context.Context) (map[string]FlagChange, error)
}

// FlagChange is the last change of a flag.
type FlagChange struct {
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// FlagTx is the flag writes of a transaction (with the audit entry of the
// change).
type FlagTx interface {
	// SetFlag sets a flag and returns its previous value (its default when
	// never set); ENOTFOUND for a name not in DefaultFlags and never set.
	SetFlag(ctx context.Context, name string, value bool, actor string, at time.Time) (before bool, err error)
}
