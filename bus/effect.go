package bus

import (
	"context"

	"smp"
)

// EffectTx runs fn, a consumer's database effect for the event being
// delivered, in a transaction of store, then done (when not nil) with its
// error, and returns that error. fn records the event itself
// (tx.MarkProcessed) and returns ErrDuplicate when it finds it recorded;
// its handler reports DoneRecorded.
//
// In a batch delivered by a bus that commits its offsets in the store's
// database (sqlbus on the embedded default: smp.TakesBatchFinish), the
// effect is deferred instead (issue 22, item 3): fn runs in the
// transaction that commits the batch's offset, with the batch's other
// effects and records, and done(nil) runs after that commit. EffectTx then
// returns nil at once. A deferred fn that fails (or panics) cuts the
// batch there: the bus commits what came before it and delivers the event
// again, and that time fn runs at once (with the effects of the messages
// before it, to keep the partition's order), so its error goes through the
// chain's retries and dead letters as any other handler's. The effect of
// an attempt that failed after deferring it, or of a message that ended
// dead-lettered, is dropped.
//
// fn must act only through ctx, tx and what it captured, and must not
// block on anything but the database: deferred, it runs on the store's one
// writer.
func EffectTx(ctx context.Context, store smp.Transactor, fn func(ctx context.Context, tx smp.Tx) error, done func(error)) error {
	d := deliveryOf(ctx)
	if b := d.batch; b != nil && b.defers() {
		b.effects = append(b.effects, effect{msg: b.at, attempt: d.attempts, store: store, fn: fn, done: done})
		return nil
	}
	err := store.InTx(ctx, func(tx smp.Tx) error { return fn(ctx, tx) })
	if done != nil {
		done(err)
	}
	return err
}
