package bus

import (
	"context"

	"smp"
	"smp/internal/panics"
)

// Recoverer turns a panic of the handler into an error wrapping
// panics.ErrPanic, logged once with its stack and counted in
// smp_panics_total{component="bus:<group>"}; it then follows the retry and
// dead-letter path like any failure. c may be nil (logged, not counted).
func Recoverer(c *panics.Counter) Middleware {
	return func(h Handler) Handler {
		return func(ctx context.Context, m smp.Message) error {
			return c.Recover(Component(Group(ctx)), func() error { return h(ctx, m) })
		}
	}
}

// Component is the smp_panics_total label of group's handler.
func Component(group string) string { return "bus:" + group }
