package bus

import (
	"context"
	"time"

	"smp"
)

// Timeout bounds each attempt: the handler's context ends after d (no
// bound when d is 0). A handler that honours its context then fails and is
// retried like any failure.
func Timeout(d time.Duration) Middleware {
	return func(h Handler) Handler {
		if d <= 0 {
			return h
		}
		return func(ctx context.Context, m smp.Message) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return h(ctx, m)
		}
	}
}
