package bus

import (
	"context"
	"sync"
	"time"

	"smp"
	"smp/internal/panics"
)

// batch is what the messages of one delivered batch (one partition's,
// consecutive, in order) share: the events decoded once, the group's
// deduplication answered in one query, and the events to record as
// processed in one transaction at the end.
type batch struct {
	msgs   []smp.Message
	events []*smp.Event // nil where the message is no event
	at     int          // index of the message going through the chain

	// accept is the first Types filter of the chain: only events it
	// accepts are asked about (nil: all).
	accept func(eventType string) bool
	// done holds the ids the group recorded: as the query answered, or
	// recorded (or to be recorded) by this batch. nil until queried.
	done map[string]bool

	store   Store // Idempotent's, for the records of pending
	now     func() time.Time
	pending []record

	// takes: the bus runs the batch's finish in its offset's transaction
	// (smp.TakesBatchFinish), so database effects may be deferred there
	// (EffectTx), except the message at index runNow, whose deferred
	// effect cut an earlier delivery of this batch (-1: none).
	takes   bool
	runNow  int
	effects []effect
}

// effect is a database effect deferred to the batch's finish (EffectTx),
// by the given attempt of the chain at message msg.
type effect struct {
	msg, attempt int
	store        smp.Transactor
	fn           func(context.Context, smp.Tx) error
	done         func(error)
}

// defers reports whether the effect of the message in hand may be
// deferred: the bus runs the finish, and the message is after the one
// whose effect cut an earlier delivery (that one runs at once, and so
// do the messages before it, so that effects commit in the partition's
// order).
func (b *batch) defers() bool { return b.takes && (b.runNow < 0 || b.at > b.runNow) }

// keepEffects drops the deferred effects of message i but those of its
// last attempt (an attempt that failed after deferring one left it),
// and all of them when the message ended dead-lettered.
func (b *batch) keepEffects(i, attempt int, deadLettered bool) {
	out := b.effects[:0]
	for _, e := range b.effects {
		if e.msg != i || !deadLettered && e.attempt == attempt {
			out = append(out, e)
		}
	}
	clear(b.effects[len(out):])
	b.effects = out
}

// record is a Done event to record at the end of the batch.
type record struct {
	id  string
	at  time.Time
	msg int // index in msgs
}

func newBatch(msgs []smp.Message) *batch {
	b := &batch{msgs: msgs, events: make([]*smp.Event, len(msgs)), runNow: -1}
	for i, m := range msgs {
		if ev, err := smp.DecodeEvent(m); err == nil {
			b.events[i] = &ev
		}
	}
	return b
}

// processed reports whether group recorded id. The first call asks the
// store once about every event of the batch from the current message on
// that the Types filter accepts.
func (b *batch) processed(ctx context.Context, store Store, group, id string) (bool, error) {
	if b.done == nil {
		var ids []string
		for _, ev := range b.events[b.at:] {
			if ev != nil && (b.accept == nil || b.accept(ev.Type)) {
				ids = append(ids, ev.ID)
			}
		}
		done, err := store.ProcessedAmong(ctx, group, ids)
		if err != nil {
			return false, err
		}
		b.done = done
	}
	return b.done[id], nil
}

// applied notes that the group applied id (its record is pending or was
// written in the effect's transaction): a later copy in the batch is a
// duplicate.
func (b *batch) applied(id string) { b.done[id] = true }

// recordLater queues id's record for the batch's transaction; with another
// store than the batch's first (one router, one store: not expected), it
// records it at once as a single message would.
func (b *batch) recordLater(ctx context.Context, store Store, group, id string, now func() time.Time) error {
	if b.store != nil && b.store != store {
		return store.InTx(ctx, func(tx smp.Tx) error {
			_, err := tx.MarkProcessed(ctx, group, id, now())
			return err
		})
	}
	b.store, b.now = store, now
	b.pending = append(b.pending, record{id: id, at: now(), msg: b.at})
	b.applied(id)
	return nil
}

// flush records the batch's Done events in one transaction. On failure it
// returns the index of the first message whose record is missing: it and
// those after it must be delivered again.
func (b *batch) flush(ctx context.Context, group string) (int, error) {
	if len(b.pending) == 0 {
		return len(b.msgs), nil
	}
	if err := b.record(ctx, group, len(b.msgs)); err != nil {
		return b.pending[0].msg, err
	}
	b.pending = nil
	return len(b.msgs), nil
}

// record writes, in one transaction, the records of the pending Done
// events of the first upTo messages.
func (b *batch) record(ctx context.Context, group string, upTo int) error {
	if len(b.pending) == 0 || b.pending[0].msg >= upTo {
		return nil
	}
	return b.store.InTx(ctx, func(tx smp.Tx) error {
		for _, r := range b.pending {
			if r.msg >= upTo {
				break
			}
			if _, err := tx.MarkProcessed(ctx, group, r.id, r.at); err != nil {
				return err
			}
		}
		return nil
	})
}

// finish is the batch's smp.BatchFinish, run by the bus in the
// transaction of its offset: the deferred effects of the first upTo
// messages, in order, each calling its done after that transaction's
// commit, then their records. A failed effect is the cut there.
func (b *batch) finish(group string, cuts *cutMemo, pc *panics.Counter) smp.BatchFinish {
	return func(ctx context.Context, upTo int) error {
		for _, e := range b.effects {
			if e.msg >= upTo {
				break
			}
			// A panic is a failure like another: the cut, then the
			// chain's Recoverer, retries and dead letter.
			if err := pc.Recover(Component(group), func() error {
				return e.store.InTx(ctx, func(tx smp.Tx) error { return e.fn(ctx, tx) })
			}); err != nil {
				cuts.note(b.msgs[e.msg])
				return &smp.BatchCut{At: e.msg, Err: err}
			}
			if e.done != nil {
				done := e.done
				smp.AfterCommit(ctx, func() { done(nil) })
			}
		}
		return b.record(ctx, group, upTo)
	}
}

// cutMemo remembers, per partition, the message whose deferred effect
// failed at a batch's finish: delivered again, its effect runs at once,
// inside the chain (so its retries and dead letters apply as to any
// failure).
type cutMemo struct {
	mu sync.Mutex
	at map[cutKey]int64
}

type cutKey struct {
	topic     string
	partition int32
}

func (c *cutMemo) note(m smp.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at == nil {
		c.at = map[cutKey]int64{}
	}
	c.at[cutKey{m.Topic, m.Partition}] = m.Offset
}

// find returns the index in msgs of a message noted as cut, or -1.
func (c *cutMemo) find(msgs []smp.Message) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(msgs) == 0 || len(c.at) == 0 {
		return -1
	}
	off, ok := c.at[cutKey{msgs[0].Topic, msgs[0].Partition}]
	if !ok {
		return -1
	}
	for i, m := range msgs {
		if m.Offset == off {
			return i
		}
	}
	return -1
}

// handled forgets m's cut once its effect ran at once.
func (c *cutMemo) handled(m smp.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := cutKey{m.Topic, m.Partition}
	if off, ok := c.at[k]; ok && off == m.Offset {
		delete(c.at, k)
	}
}

// flushTimeout bounds the batch's record transaction, which runs even
// when the subscription just ended (its messages are committed).
const flushTimeout = 10 * time.Second

// batchHandler runs each message of a batch through the group's chain
// (inner, as a single message goes), then records the batch's Done events
// in one transaction: the bus's own, that commits the batch's offset, when
// it takes the batch's finish (smp.SetBatchFinish), with the database
// effects the handlers deferred to it (EffectTx); else one of the
// store's. It reports as handled the messages before the first whose
// chain failed (ctx ended) or whose record could not be written.
func batchHandler(group string, inner Handler, pc *panics.Counter) smp.BatchHandler {
	cuts := &cutMemo{}
	return func(ctx context.Context, msgs []smp.Message) (int, error) {
		b := newBatch(msgs)
		if b.takes = smp.TakesBatchFinish(ctx); b.takes {
			b.runNow = cuts.find(msgs)
		}
		n := 0
		var err error
		stopped := false
		for i, m := range msgs {
			n = i
			if i > 0 && smp.BatchStopped(ctx) {
				stopped = true // the bus's lease runs out: end here, commit what was handled
				break
			}
			if g := m.Headers[smp.HeaderReplayFor]; g != "" && g != group {
				continue // a replay for another group: this one applied it
			}
			b.at = i
			mctx, d := withDelivery(ctx, group)
			d.batch, d.event = b, b.events[i]
			if err = inner(mctx, m); err != nil {
				break
			}
			if len(b.effects) > 0 {
				b.keepEffects(i, d.attempts, d.outcome == DeadLettered)
			}
			if i == b.runNow {
				cuts.handled(m)
			}
		}
		if err == nil && !stopped {
			n = len(msgs)
		}
		if (len(b.pending) > 0 || len(b.effects) > 0) && smp.SetBatchFinish(ctx, b.finish(group, cuts, pc)) {
			// The bus runs the deferred effects and writes the records in
			// the transaction of the batch's offset (the embedded log in
			// the store's database).
			return n, err
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		defer cancel()
		if upTo, ferr := b.flush(fctx, group); ferr != nil {
			return min(n, upTo), ferr
		}
		return n, err
	}
}
