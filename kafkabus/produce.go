package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"smp"
)

// The asynchronous produce of the pipelined outbox relay (smp.AsyncPublisher).
//
// Why a failed call stops every later one until Resume, and why this
// producer is not Publish's: franz-go's idempotent producer appends a
// partition's records in the order they were produced, and the broker
// takes a producer epoch's records of a partition only in sequence, so
// what it appends of them is a prefix. But when a record fails, franz-go
// fails every record buffered behind it in its partition and bumps the
// epoch, and a record produced after that moment starts a new sequence and
// can be appended (franz-go issue #852): had the relay gone on producing,
// a key's newer event could land before its older one, which the relay
// publishes again later. So this producer never fails a record on its own
// clock: no delivery timeout, unlimited retries, unknown topics retried
// (records produced with a context that never ends). A record ends
// acknowledged, or failed by a broker's non-retryable answer (a record
// the broker refuses: it is refused again on every retry, so the relay
// stops at it, as before), or by the client's Close. Close is the fence:
// a closed client appends nothing more. Any failure, and a call not
// acknowledged within PublishTimeout (a stuck broker), closes the client
// and fails every later call at once; Resume starts a new client for the
// caller's next attempt, made once every call has reported. Publish uses
// another client because a Publish whose context ends fails its records
// and, with them, every record buffered behind them in their partitions.
type asyncProducer struct {
	mu     sync.Mutex
	cl     *asyncClient // nil: made at the next call
	failed error        // the first failure since the last Resume
	gen    uint64       // Resume's count: a late report of an older attempt is ignored
	closed bool
	closes sync.WaitGroup // clients being closed
	// afterClient, in tests, runs between a call's taking the client and
	// its produce (where a fence or Resume may come).
	afterClient func()
}

// asyncClient is a producing client and the lock that makes a call's
// produce and the fence exclusive: a call holds it from its last check
// (the client still current, no failure recorded) through its last
// Produce, and the fence takes it to close the client. So a call that
// took the client before a failure was recorded or a Resume, and
// produces after, finds out and produces nothing: no record of it reaches
// a fenced producer. A call never waits inside it (it produces only into
// room the buffer has: Produce does not block), so the fence never waits
// long.
type asyncClient struct {
	*kgo.Client
	mu sync.Mutex
}

// maxAsyncBuffered is the producer's MaxBufferedRecords.
const maxAsyncBuffered = 100000

var _ smp.AsyncPublisher = (*Bus)(nil)

// maxAsyncRecordBytes bounds a message (key, value and headers): franz-go
// fails a record over its batch limit (1 MB) on its own, before buffering,
// and the records behind it would be appended. Such a message fails its
// whole call before anything of it is produced.
const maxAsyncRecordBytes = 1_000_000 - 4096

var errInvalid = errors.New("invalid message")

func (b *Bus) newAsyncProducer() (*kgo.Client, error) {
	return kgo.NewClient(append(b.cfg.common(),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent (franz-go's default), acks=all
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.UnknownTopicRetries(-1),
		kgo.MaxBufferedRecords(maxAsyncBuffered),
	)...)
}

// PublishAsync produces msgs and calls done once every one is acknowledged
// by the cluster (acks=all) or the call failed (smp.AsyncPublisher has
// the order contract). A call not acknowledged within PublishTimeout fails,
// and the producing client is replaced, as Publish does.
func (b *Bus) PublishAsync(ctx context.Context, msgs []smp.Message, done func(error)) {
	a := &b.async
	recs := make([]*kgo.Record, len(msgs))
	topics := map[string]bool{}
	for i, m := range msgs {
		size := len(m.Key) + len(m.Value)
		for k, v := range m.Headers {
			size += len(k) + len(v)
		}
		switch {
		case m.Topic == "":
			a.fail(a.generation(), nil, errInvalid)
			done(smp.Errorf(smp.EINVALID, "kafkabus: message without topic"))
			return
		case size > maxAsyncRecordBytes:
			a.fail(a.generation(), nil, errInvalid)
			done(smp.Errorf(smp.EINVALID, "kafkabus: message of %d bytes on %s (at most %d)", size, m.Topic, maxAsyncRecordBytes))
			return
		}
		topics[m.Topic] = true
		r := &kgo.Record{Topic: m.Topic, Key: []byte(m.Key), Value: m.Value}
		for k, v := range m.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		recs[i] = r
	}
	if len(recs) == 0 {
		done(nil)
		return
	}
	var names []string
	for t := range topics {
		names = append(names, t)
	}
	gen := a.generation()
	if err := b.EnsureTopics(ctx, names...); err != nil {
		a.fail(gen, nil, err)
		done(err)
		return
	}
	cl, gen, err := a.client(b)
	if err != nil {
		done(err)
		return
	}
	if a.afterClient != nil {
		a.afterClient()
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if err := a.usable(cl, gen); err != nil {
		done(err)
		return
	}
	if n := cl.BufferedProduceRecords(); n+int64(len(recs)) > maxAsyncBuffered {
		// Produce would wait for room holding the lock the fence needs;
		// the call fails instead (and fences, as any failure does).
		err := fmt.Errorf("producer buffer full (%d records buffered, %d more asked)", n, len(recs))
		a.fail(gen, cl, err)
		done(smp.Errorf(smp.EUNAVAILABLE, "kafkabus: produce: %v", err))
		return
	}
	c := &asyncCall{a: a, cl: cl, gen: gen, done: done}
	c.left.Store(int64(len(recs)))
	c.timer = time.AfterFunc(b.cfg.PublishTimeout, func() {
		c.report(errors.New("not acknowledged within the publish timeout"))
	})
	for _, r := range recs {
		// Never a context that ends: a record cancelled by its context
		// fails the records behind it (see asyncProducer).
		cl.Produce(context.Background(), r, func(_ *kgo.Record, err error) {
			if err != nil {
				c.timer.Stop()
				c.report(err)
			}
			if c.left.Add(-1) == 0 {
				c.timer.Stop()
				c.report(nil)
			}
		})
	}
}

// asyncCall is one PublishAsync waiting for its acknowledgements.
type asyncCall struct {
	a     *asyncProducer
	cl    *asyncClient
	gen   uint64
	left  atomic.Int64
	timer *time.Timer
	once  sync.Once
	done  func(error)
}

// report ends the call: nil once every record is acknowledged, or at its
// first failure (which fences the client).
func (c *asyncCall) report(err error) {
	if err != nil {
		c.a.fail(c.gen, c.cl, err)
	}
	c.once.Do(func() {
		if err != nil {
			err = smp.Errorf(smp.EUNAVAILABLE, "kafkabus: produce: %v", err)
		}
		c.done(err)
	})
}

func (a *asyncProducer) generation() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gen
}

// client returns the producing client for a call, or the failure that
// stops every call until Resume.
func (a *asyncProducer) client(b *Bus) (*asyncClient, uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.closed:
		return nil, a.gen, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: closed")
	case a.failed != nil:
		return nil, a.gen, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: an earlier publish failed (%v); waiting for Resume", a.failed)
	case a.cl == nil:
		cl, err := b.newAsyncProducer()
		if err != nil {
			return nil, a.gen, smp.Errorf(smp.EUNAVAILABLE, "kafkabus: new producer: %v", err)
		}
		a.cl = &asyncClient{Client: cl}
	}
	return a.cl, a.gen, nil
}

// usable checks, under cl's lock, that cl is still the producing client of
// attempt gen with no failure recorded: a fence or Resume since the call
// took it fails the call before it produces anything.
func (a *asyncProducer) usable(cl *asyncClient, gen uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.closed:
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: closed")
	case a.failed != nil:
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: an earlier publish failed (%v); waiting for Resume", a.failed)
	case a.gen != gen || a.cl != cl:
		return smp.Errorf(smp.EUNAVAILABLE, "kafkabus: the producer was fenced after an earlier failure; this call produced nothing")
	}
	return nil
}

// fail records a failure of attempt gen and closes cl, the fence: a
// closed client appends nothing more, and its buffered records fail.
func (a *asyncProducer) fail(gen uint64, cl *asyncClient, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if gen != a.gen {
		return // an older attempt's late report
	}
	if a.failed == nil {
		a.failed = err
	}
	if cl != nil && a.cl == cl {
		a.cl = nil
		a.closes.Add(1)
		go func() {
			defer a.closes.Done()
			cl.mu.Lock() // a call producing now finishes first; the next finds the failure
			defer cl.mu.Unlock()
			cl.Close()
		}()
	}
}

// Resume ends a failure: the next call produces on a new client.
func (b *Bus) Resume(context.Context) error {
	a := &b.async
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen++
	a.failed = nil
	return nil
}

// close closes the client and waits for the ones being closed.
func (a *asyncProducer) close() {
	a.mu.Lock()
	a.closed = true
	cl := a.cl
	a.cl = nil
	a.mu.Unlock()
	if cl != nil {
		cl.mu.Lock()
		cl.Close()
		cl.mu.Unlock()
	}
	a.closes.Wait()
}
