// Package bus runs SMP's event consumers on any smp.EventBus, in the
// manner of watermill's message.Router: a Router subscribes each handler as
// its consumer group (and resubscribes when a subscription ends: the one
// place that loop exists), and every delivered message goes through a
// chain of middleware, one per file:
//
//	metrics     smp_consumer_events_total{group,outcome}       metrics.go
//	poison      after the last attempt, the dead letter on <topic>.dlq   poison.go
//	retry       attempts with backoff                           retry.go
//	timeout     each attempt bounded                            timeout.go
//	recoverer   a panic is an error (smp_panics_total{component="bus:<group>"})   recoverer.go
//	idempotent  each group applies each event once (processed_events)   idempotent.go
//
// so a handler that fails or panics is retried and then dead-lettered, and
// its partition moves on. The buses themselves only redeliver a message
// whose handler failed; limits and dead letters are the router's.
//
// Batches (batch.go, issue 22): on a bus that is an smp.BatchSubscriber
// (sqlbus, kafkabus) the router subscribes a batch handler instead, and a
// bus hands it a partition's messages several at a time (one fetch). The
// router decodes them once, then runs each through the same chain, in
// order, so a failing message is still retried and dead-lettered alone.
// What the batch changes is Idempotent's cost: the first message of the
// batch that passes the group's Types filter asks the store once
// (ProcessedAmong) about every later event of the batch the filter
// accepts, and the events whose handler returned Done are recorded
// together in one transaction at the end of the batch, before the bus
// commits the offset (DoneRecorded handlers record in their effect's own
// transaction, as before). A crash between those effects and the batch's
// record re-applies them once on redelivery: the promise of Done, which
// was already so between an effect and its own record. If the record
// fails, the messages from the first unrecorded one on are not reported
// handled: the bus delivers them again. On any other bus, or outside a
// router, a message goes alone, as before.
// Consumer-group lag is exported as kafka_consumergroup_lag (lag.go).
package bus

import (
	"context"

	"smp"
)

// Handler processes one delivered message: nil acknowledges it; an error
// hands it to the middleware (retry, then dead letter).
type Handler = smp.Handler

// Middleware wraps a handler.
type Middleware func(Handler) Handler

// Outcomes of one delivered message, as counted in
// smp_consumer_events_total{group,outcome}.
const (
	Applied      = "applied"       // the event took effect
	Duplicate    = "duplicate"     // already applied by this group: skipped
	Ignored      = "ignored"       // not this group's business
	DeadLettered = "dead_lettered" // given up after the last attempt: on <topic>.dlq
)

// delivery is what the middleware of one message share.
type delivery struct {
	group    string
	outcome  string
	attempts int
	event    *smp.Event // decoded once by Idempotent or Events
	batch    *batch     // the batch the message came in (nil: alone)
}

type ctxKey struct{}

func withDelivery(ctx context.Context, group string) (context.Context, *delivery) {
	d := &delivery{group: group}
	return context.WithValue(ctx, ctxKey{}, d), d
}

func deliveryOf(ctx context.Context) *delivery {
	if d, ok := ctx.Value(ctxKey{}).(*delivery); ok {
		return d
	}
	return &delivery{} // outside a router: nothing is shared
}

// Group returns the consumer group a router delivers the message to ("" outside a router).
func Group(ctx context.Context) string { return deliveryOf(ctx).group }

// Report sets the outcome the metrics middleware counts for the message
// (Applied when nothing is reported and the handler succeeds).
func Report(ctx context.Context, outcome string) { deliveryOf(ctx).outcome = outcome }

// WithGroup returns ctx as a router passes it to a handler of group: for
// calling a middleware chain outside a router (tests, tools).
func WithGroup(ctx context.Context, group string) context.Context {
	ctx, _ = withDelivery(ctx, group)
	return ctx
}

// Chain applies mw to h, the first outermost.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}
