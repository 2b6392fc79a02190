package kafkabus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"smp"
	"smp/internal/redeliver"
)

var _ smp.BatchSubscriber = (*Bus)(nil)

// Consumers (issue 22): each assigned partition has its own worker
// goroutine, fed by the poll loop, so a slow partition holds up only
// itself. A worker hands its partition's records to the handler in
// batches (up to workerBatch), marks what was handled, and franz-go
// commits the marks in the background (AutoCommitMarks, every
// CommitInterval). A worker whose queue passes workerQueue records has
// its partition's fetching paused until it catches up (paused records stay
// unfetched, not dropped). When partitions are revoked (a rebalance, or
// leaving the group) their workers stop after their batch in flight (its
// context ends after revokeGrace) and the marks are committed before the
// revoke returns, so a partition moves to another member only at a
// committed position; lost partitions (the session expired) are stopped
// and nothing is committed: another member owns them already.
const (
	workerBatch = 256
	workerQueue = 4 * workerBatch
	revokeGrace = 5 * time.Second
)

// Subscribe consumes topics as a member of group until ctx is done: it is
// SubscribeBatch with h taking the records one by one.
func (b *Bus) Subscribe(ctx context.Context, group string, topics []string, h smp.Handler) error {
	return b.SubscribeBatch(ctx, group, topics, redeliver.Each(b.cfg.Logger.With("group", group), b.cfg.RetryBackoff, h, "bus", "kafkabus"))
}

// SubscribeBatch consumes topics as a member of group until ctx is done,
// each partition in its own worker (in order within the partition, no
// wait across partitions). What h reports handled is marked and committed
// in the background, on revoke and when ctx ends (a handled message does
// not come again after a graceful stop); the rest is delivered again.
func (b *Bus) SubscribeBatch(ctx context.Context, group string, topics []string, h smp.BatchHandler) error {
	log := b.cfg.Logger.With("group", group)
	// Brokers away at start: wait for them here rather than fail (the
	// caller would resubscribe in a loop).
	for backoff := 500 * time.Millisecond; ; backoff = min(backoff*2, 10*time.Second) {
		err := b.EnsureTopics(ctx, topics...)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn("kafkabus: topics not ready; waiting for the brokers", "err", err, "retry_in", backoff)
		if !smp.Sleep(ctx, backoff) {
			return ctx.Err()
		}
	}
	c := &consumer{ctx: ctx, log: log, h: h, backoff: b.cfg.RetryBackoff, workers: map[partition]*worker{}}
	cl, err := kgo.NewClient(append(b.cfg.common(),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(b.cfg.CommitInterval),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
		kgo.SessionTimeout(b.cfg.SessionTimeout),
		kgo.HeartbeatInterval(b.cfg.SessionTimeout/10),
		kgo.FetchMaxWait(250*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("kafkabus: %w", err)
	}
	c.cl = cl
	defer func() {
		// Every worker finishes (ctx ended: their handlers too), then what
		// they handled is committed before the group is left.
		c.stop(c.all(), true)
		lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.commit(lctx)
		cl.LeaveGroupContext(lctx)
		cl.Close()
	}()
	for {
		fetches := cl.PollRecords(ctx, 1000)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			cl.AllowRebalance()
			return ctx.Err()
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				log.Warn("kafkabus: fetch", "topic", t, "partition", p, "err", err)
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				c.feed(partition{p.Topic, p.Partition}, p.Records)
			}
		})
		cl.AllowRebalance()
	}
}

type partition struct {
	topic string
	part  int32
}

// consumer is one member's partition workers.
type consumer struct {
	ctx     context.Context // the subscription's
	log     *slog.Logger
	h       smp.BatchHandler
	backoff time.Duration
	cl      *kgo.Client

	mu      sync.Mutex
	workers map[partition]*worker
}

// worker consumes one assigned partition.
type worker struct {
	p      partition
	cancel context.CancelFunc // ends its handler's context
	quit   chan struct{}      // closed: stop after the batch in flight
	done   chan struct{}      // closed when it has stopped
	wake   chan struct{}      // (1) records were queued

	mu     sync.Mutex
	queue  []*kgo.Record
	paused bool
}

// feed queues records of p for its worker, starting it with the first.
// Called from the poll loop, between a poll and AllowRebalance: the
// partition is assigned.
func (c *consumer) feed(p partition, recs []*kgo.Record) {
	c.mu.Lock()
	w := c.workers[p]
	if w == nil {
		ctx, cancel := context.WithCancel(c.ctx)
		w = &worker{p: p, cancel: cancel, quit: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1)}
		c.workers[p] = w
		go c.run(ctx, w)
	}
	c.mu.Unlock()
	w.mu.Lock()
	w.queue = append(w.queue, recs...)
	if len(w.queue) >= workerQueue && !w.paused {
		w.paused = true
		c.cl.PauseFetchPartitions(map[string][]int32{p.topic: {p.part}})
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run hands w's queued records to the handler until it is stopped.
func (c *consumer) run(ctx context.Context, w *worker) {
	defer close(w.done)
	backoff := redeliver.Backoff{First: c.backoff}
	for {
		select {
		case <-w.quit:
			return
		case <-ctx.Done():
			return
		default:
		}
		w.mu.Lock()
		recs := w.queue[:min(len(w.queue), workerBatch)]
		w.mu.Unlock()
		if len(recs) == 0 {
			select {
			case <-w.quit:
				return
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			continue
		}
		msgs := make([]smp.Message, len(recs))
		for i, r := range recs {
			msgs[i] = toMessage(r)
		}
		n, err := c.h(ctx, msgs)
		if n > 0 {
			c.cl.MarkCommitRecords(recs[n-1])
			w.mu.Lock()
			w.queue = w.queue[n:]
			if w.paused && len(w.queue) < workerQueue/2 {
				w.paused = false
				c.cl.ResumeFetchPartitions(map[string][]int32{w.p.topic: {w.p.part}})
			}
			w.mu.Unlock()
		}
		if n < len(msgs) && ctx.Err() == nil {
			wait := backoff.Failed()
			c.log.Warn("kafkabus: batch handler failed; delivering again", "topic", w.p.topic, "partition", w.p.part, "offset", msgs[n].Offset, "err", err, "retry_in", wait)
			smp.Sleep(ctx, wait)
		} else {
			backoff.OK()
		}
	}
}

func (c *consumer) all() map[string][]int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]int32{}
	for p := range c.workers {
		out[p.topic] = append(out[p.topic], p.part)
	}
	return out
}

// stop stops the workers of parts and waits for them: at once (now), or
// after their batch in flight, whose context ends after revokeGrace.
func (c *consumer) stop(parts map[string][]int32, now bool) {
	var ws []*worker
	c.mu.Lock()
	for topic, ps := range parts {
		for _, part := range ps {
			p := partition{topic, part}
			if w := c.workers[p]; w != nil {
				ws = append(ws, w)
				delete(c.workers, p)
			}
		}
	}
	c.mu.Unlock()
	for _, w := range ws {
		close(w.quit)
		if now {
			w.cancel()
		}
	}
	for _, w := range ws {
		t := time.AfterFunc(revokeGrace, w.cancel)
		<-w.done
		t.Stop()
		w.cancel()
		w.mu.Lock()
		if w.paused {
			// Fetching it again is the next owner's (or this member's, if
			// the partition comes back).
			c.cl.ResumeFetchPartitions(map[string][]int32{w.p.topic: {w.p.part}})
		}
		w.mu.Unlock()
	}
}

// commit commits the marked offsets now.
func (c *consumer) commit(ctx context.Context) {
	if err := c.cl.CommitMarkedOffsets(ctx); err != nil {
		// The group moved on (session lost while brokers were away):
		// these messages come again; consumers dedupe.
		c.log.Warn("kafkabus: commit failed; the handled messages will be redelivered", "err", err)
	}
}

// revoked: the partitions go to another member; theirs is the position
// committed here, after their workers stopped.
func (c *consumer) revoked(ctx context.Context, _ *kgo.Client, parts map[string][]int32) {
	c.stop(parts, c.ctx.Err() != nil)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c.commit(cctx)
}

// lost: another member owns the partitions already; nothing to commit.
func (c *consumer) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	c.stop(parts, true)
}
