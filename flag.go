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
}

// FlagTx is the flag writes of a transaction (with the audit entry of the
// change).
type FlagTx interface {
	// SetFlag sets a flag and returns its previous value (its default when
	// never set); ENOTFOUND for a name not in DefaultFlags and never set.
	SetFlag(ctx context.Context, name string, value bool, actor string, at time.Time) (before bool, err error)
}
