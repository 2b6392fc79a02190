package bus

import (
	"context"
	"slices"

	"smp"
)

// Types lets only events of the given types reach the rest of the chain:
// any other event is Ignored at once, before Idempotent's deduplication
// query and any transaction. Place it before Idempotent (middleware runs
// in the order given). A message that is no event fails with EINVALID, as
// in Events, so a poison message is still dead-lettered by every group.
// The handler's own type checks stay: Types only saves their cost.
func Types(types ...string) Middleware {
	types = slices.Clone(types)
	accept := func(t string) bool { return slices.Contains(types, t) }
	return func(h Handler) Handler {
		return func(ctx context.Context, m smp.Message) error {
			d := deliveryOf(ctx)
			if d.batch != nil && d.batch.accept == nil {
				d.batch.accept = accept // the batch's deduplication asks only about these
			}
			ev, err := decode(d, m)
			if err != nil {
				return err
			}
			if !accept(ev.Type) {
				d.outcome = Ignored
				return nil
			}
			return h(ctx, m)
		}
	}
}
