package sqlbus

import (
	"context"
	"strings"
	"sync"
	"time"

	"smp"
	"smp/internal/redeliver"
)

// A process's consumers cost the database almost nothing while idle
// (issue 22):
//
//   - one poller per Bus, not one per partition: every PollInterval it reads
//     the end of every partition in one statement and wakes the consumers
//     of the partitions that grew (appended by another process; this
//     process's own publishes wake theirs at once); after a quiet second
//     its interval doubles up to 8 × PollInterval, and news or a publish
//     of this process brings it back;
//   - one lease keeper per subscription, not one per partition: every
//     LeaseTTL/3 it takes or renews the group's partitions in two
//     statements;
//   - an idle partition consumer runs no statement: it waits to be woken.

// idleFallback bounds how long an idle partition consumer trusts its
// wake-ups alone before it looks at its partition again.
const idleFallback = time.Minute

// fetchBatch is the most messages of a partition read and handed over at once.
const fetchBatch = 256

type poller struct {
	stop   chan struct{}
	exited chan struct{}
}

// startPoller counts a subscription and starts the process's poller with
// the first; false once the bus is closed.
func (l *Bus) startPoller() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.subs++
	if l.poller == nil {
		p := &poller{stop: make(chan struct{}), exited: make(chan struct{})}
		l.poller = p
		go l.poll(p)
	}
	return true
}

// stopPoller uncounts a subscription and stops the poller with the last.
func (l *Bus) stopPoller() {
	l.mu.Lock()
	l.subs--
	var p *poller
	if l.subs == 0 && l.poller != nil {
		p, l.poller = l.poller, nil
	}
	l.mu.Unlock()
	if p != nil {
		close(p.stop)
		<-p.exited
	}
}

// idleBackoff: after a second without news the poller's interval doubles,
// up to this many times PollInterval; any news brings it back.
const idleBackoff = 8

func (l *Bus) poll(p *poller) {
	defer close(p.exited)
	interval, quietSince := l.cfg.PollInterval, time.Now()
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-l.done:
			return
		case <-l.activity:
			// This process published: others are likely busy too.
			interval, quietSince = l.cfg.PollInterval, time.Now()
			l.pollEvery.Store(int64(interval))
			t.Reset(interval)
			continue
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ends, err := l.ends(ctx)
		cancel()
		news := false
		if err != nil {
			l.cfg.Logger.Warn("sqlbus: poll partitions", "err", err)
		} else {
			l.mu.Lock()
			if l.closed {
				l.mu.Unlock()
				return
			}
			for k, n := range ends {
				if n > l.known[k] {
					l.known[k] = n
					l.wakeLocked(k)
					news = true
				}
			}
			l.mu.Unlock()
		}
		if news {
			interval, quietSince = l.cfg.PollInterval, time.Now()
		} else if time.Since(quietSince) > time.Second {
			interval = min(interval*2, idleBackoff*l.cfg.PollInterval)
		}
		l.pollEvery.Store(int64(interval))
		t.Reset(interval)
	}
}

// ends reads every partition's next offset.
func (l *Bus) ends(ctx context.Context) (map[tp]int64, error) {
	rows, err := l.read.QueryContext(ctx, `SELECT topic, part, next_off FROM bus_partitions`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[tp]int64{}
	for rows.Next() {
		var k tp
		var n int64
		if err := rows.Scan(&k.topic, &k.partition, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// wakeLocked wakes k's waiting consumers; l.mu held.
func (l *Bus) wakeLocked(k tp) {
	if ch, ok := l.wakes[k]; ok {
		close(ch)
		delete(l.wakes, k)
	}
}

func (l *Bus) waitChan(k tp) (<-chan struct{}, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, true
	}
	ch, ok := l.wakes[k]
	if !ok {
		ch = make(chan struct{})
		l.wakes[k] = ch
	}
	return ch, false
}

// Subscribe consumes topics as a member of group until ctx is done. Each
// partition is consumed by the member holding its lease; members started
// in several processes share the partitions and take over each other's
// when one stops. It is SubscribeBatch with h taking the messages one by
// one.
func (l *Bus) Subscribe(ctx context.Context, group string, topics []string, h smp.Handler) error {
	return l.SubscribeBatch(ctx, group, topics, redeliver.Each(l.cfg.Logger, l.cfg.RetryBackoff, h, "bus", "sqlbus", "group", group))
}

// SubscribeBatch is Subscribe delivering each partition's messages in
// batches of up to fetchBatch messages (one fetch): what h reports handled
// is committed in one transaction, and the rest is delivered again.
func (l *Bus) SubscribeBatch(ctx context.Context, group string, topics []string, h smp.BatchHandler) error {
	if !l.startPoller() {
		return smp.Errorf(smp.EUNAVAILABLE, "sqlbus: closed")
	}
	defer l.stopPoller()
	s := l.newSubscription(group, topics)
	stopLeases := make(chan struct{})
	leasesDone := make(chan struct{})
	go func() {
		defer close(leasesDone)
		s.keepLeases(ctx, stopLeases)
	}()
	var wg sync.WaitGroup
	for _, ps := range s.parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.consume(ctx, ps, h)
		}()
	}
	wg.Wait()
	// Every partition has committed what it handled: now give the leases up.
	close(stopLeases)
	<-leasesDone
	s.release()
	return ctx.Err()
}

// subscription is one member of group on topics in this process.
type subscription struct {
	l      *Bus
	group  string
	topics []string
	parts  []*partState
	poke   chan struct{} // asks the lease keeper to renew now

	inserted bool // the group's lease rows exist (the lease keeper's own)

	mu sync.Mutex // guards parts' fields below k
}

func (l *Bus) newSubscription(group string, topics []string) *subscription {
	s := &subscription{l: l, group: group, topics: topics, poke: make(chan struct{}, 1)}
	for _, topic := range topics {
		for p := 0; p < l.cfg.Partitions; p++ {
			s.parts = append(s.parts, &partState{k: tp{topic, int32(p)}, changed: make(chan struct{})})
		}
	}
	return s
}

// partState is what the lease keeper tells a partition's consumer.
type partState struct {
	k       tp
	held    bool
	epoch   uint64        // counts the times the lease was newly taken
	renewed time.Time     // on Config.Now
	changed chan struct{} // closed (and replaced) when held or epoch changes
}

func (s *subscription) topicsIn() (string, []any) {
	args := make([]any, len(s.topics))
	for i, t := range s.topics {
		args[i] = t
	}
	return "(" + strings.TrimSuffix(strings.Repeat("?,", len(s.topics)), ",") + ")", args
}

// keepLeases takes or renews the group's partitions now and every
// LeaseTTL/3 (or at once when a consumer pokes it) until stop.
func (s *subscription) keepLeases(ctx context.Context, stop <-chan struct{}) {
	l := s.l
	for {
		if err := s.renew(ctx); err != nil && ctx.Err() == nil {
			l.cfg.Logger.Warn("sqlbus: lease", "group", s.group, "err", err)
		}
		t := time.NewTimer(l.cfg.LeaseTTL / 3)
		select {
		case <-stop:
			t.Stop()
			return
		case <-ctx.Done():
			// Consumers are finishing their batches; their commits need
			// the leases held, so keep them until stop.
			t.Stop()
			<-stop
			return
		case <-s.poke:
		case <-t.C:
		}
		t.Stop()
	}
}

// renew: two statements for all of the subscription's partitions (three the
// first time, to create the group's lease rows).
func (s *subscription) renew(ctx context.Context) error {
	l := s.l
	now := l.cfg.Now()
	exp := now.Add(l.cfg.LeaseTTL).UnixMilli()
	in, targs := s.topicsIn()
	if !s.inserted {
		var q strings.Builder
		q.WriteString(l.insertIgnore() + ` INTO bus_leases (grp, topic, part, owner, expires_at) VALUES `)
		args := make([]any, 0, 5*len(s.parts))
		for i, ps := range s.parts {
			if i > 0 {
				q.WriteString(",")
			}
			q.WriteString("(?,?,?,?,?)")
			// A new row starts expired: the UPDATE below takes it.
			args = append(args, s.group, ps.k.topic, ps.k.partition, l.cfg.Owner, int64(0))
		}
		if _, err := l.write.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		s.inserted = true
	}
	args := append([]any{l.cfg.Owner, exp, s.group}, targs...)
	args = append(args, l.cfg.Owner, now.UnixMilli(), int64(l.cfg.Partitions))
	if _, err := l.write.ExecContext(ctx, `UPDATE bus_leases SET owner = ?, expires_at = ? WHERE grp = ? AND topic IN `+in+
		` AND (owner = ? OR expires_at < ?) AND part < ?`, args...); err != nil {
		return err
	}
	rows, err := l.write.QueryContext(ctx, `SELECT topic, part, owner, expires_at FROM bus_leases WHERE grp = ? AND topic IN `+in, append([]any{s.group}, targs...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	mine := map[tp]bool{}
	for rows.Next() {
		var k tp
		var owner string
		var e int64
		if err := rows.Scan(&k.topic, &k.partition, &owner, &e); err != nil {
			return err
		}
		mine[k] = owner == l.cfg.Owner && e == exp
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.parts {
		held := mine[ps.k]
		// A lease that had expired on the clock counts as newly taken: in
		// between, another member may have consumed the partition.
		renewedStale := held && ps.held && now.Sub(ps.renewed) >= l.cfg.LeaseTTL
		if held {
			ps.renewed = now
		}
		if held != ps.held || renewedStale {
			ps.held = held
			if held {
				ps.epoch++ // newly ours: its consumer starts where the group committed
			}
			close(ps.changed)
			ps.changed = make(chan struct{})
		}
	}
	return nil
}

// state reports whether this member holds ps's lease (taken and not
// expired on Config.Now), whether it was taken but expired on the clock
// (stale: not renewed in time), the lease's epoch, and a channel closed
// when the holding changes.
func (s *subscription) state(ps *partState) (held, stale bool, epoch uint64, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.l.cfg.Now().Sub(ps.renewed) < s.l.cfg.LeaseTTL
	return ps.held && live, ps.held && !live, ps.epoch, ps.changed
}

// fresh reports whether ps's lease has at least a third of its TTL left.
func (s *subscription) fresh(ps *partState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ps.held && s.l.cfg.Now().Sub(ps.renewed) < s.l.cfg.LeaseTTL*2/3
}

// lost: a commit found the lease taken by another member.
func (s *subscription) lost(ps *partState) {
	s.mu.Lock()
	if ps.held {
		ps.held = false
		close(ps.changed)
		ps.changed = make(chan struct{})
	}
	s.mu.Unlock()
	s.renewSoon()
}

func (s *subscription) renewSoon() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

func (s *subscription) release() {
	l := s.l
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, targs := s.topicsIn()
	if _, err := l.write.ExecContext(ctx, `UPDATE bus_leases SET expires_at = 0 WHERE grp = ? AND owner = ? AND topic IN `+in,
		append([]any{s.group, l.cfg.Owner}, targs...)...); err != nil {
		// Not fatal: another member takes the partitions when the lease
		// expires, a TTL later.
		l.cfg.Logger.Warn("sqlbus: release lease", "group", s.group, "err", err)
	}
}

func (s *subscription) consume(ctx context.Context, ps *partState, h smp.BatchHandler) {
	l, k := s.l, ps.k
	log := l.cfg.Logger.With("group", s.group, "topic", k.topic, "partition", k.partition)
	var next int64
	var epoch uint64 // 0: no position read yet (epochs start at 1)
	// drained is the wake channel taken before the fetch of a batch that
	// was the partition's end (shorter than fetchBatch, all handled): the
	// next fetch waits for it, instead of finding nothing first (one read
	// per batch saved; an append closes it after its commit).
	var drained <-chan struct{}
	// pending is the position after batches that had nothing to write
	// but it (no smp.BatchFinish), not yet committed (-1: none), since
	// pendingSince: committed within Config.CommitInterval, or with the
	// next batch that writes (whose commit moves past it).
	pending, pendingSince := int64(-1), time.Time{}
	flush := func() {
		if !s.fresh(ps) {
			s.renewSoon() // the commit is fenced: it fails if the lease was lost
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		held, err := l.commit(cctx, s.group, k, pending)
		cancel()
		if err != nil {
			log.Error("sqlbus: commit offset", "err", err)
			pendingSince = time.Now() // again in an interval
			return
		}
		pending = -1
		if !held {
			epoch = 0
			s.lost(ps)
		}
	}
	// flushDue is when pending is due (nil: nothing pending).
	flushDue := func() <-chan time.Time {
		if pending < 0 {
			return nil
		}
		return time.After(time.Until(pendingSince.Add(l.cfg.CommitInterval)))
	}
	defer func() {
		// A graceful stop: what was handled does not come again. (Closed,
		// the log's own database is gone; a shared one is the store's.)
		if pending >= 0 && (l.shared || !l.isClosed()) {
			flush()
		}
	}()
	backoff := redeliver.Backoff{First: l.cfg.RetryBackoff}
	for ctx.Err() == nil {
		held, stale, ep, changed := s.state(ps)
		if !held {
			epoch, drained, pending = 0, nil, -1 // when it is ours again, read the committed position again
			if stale {
				s.renewSoon() // expired on the clock before its renewal: renew now
			}
			select {
			case <-ctx.Done():
			case <-l.done:
				return
			case <-changed:
			case <-time.After(l.cfg.LeaseTTL / 3):
			}
			continue
		}
		if ep != epoch {
			// Newly ours: start where the group committed (a position
			// still pending from an earlier hold is not ours to commit).
			pending = -1
			var err error
			if next, err = l.committed(ctx, s.group, k); err != nil {
				if ctx.Err() == nil {
					log.Error("sqlbus: read committed offset", "err", err)
					smp.Sleep(ctx, time.Second)
				}
				continue
			}
			epoch, drained = ep, nil
		}
		if pending >= 0 && (time.Since(pendingSince) >= l.cfg.CommitInterval || !s.fresh(ps)) && !l.isClosed() {
			flush()
			continue
		}
		if drained != nil {
			select {
			case <-ctx.Done():
			case <-drained: // closed by Close too
			case <-changed:
			case <-flushDue():
				continue // drained stays: the top of the loop commits
			case <-time.After(idleFallback):
			}
			drained = nil
			continue
		}
		wake, closed := l.waitChan(k)
		if closed {
			return
		}
		batch, err := l.fetch(ctx, k, next, fetchBatch)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("sqlbus: fetch", "err", err)
				smp.Sleep(ctx, time.Second)
			}
			continue
		}
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
			case <-wake: // closed by Close too
			case <-changed:
			case <-flushDue():
			case <-time.After(idleFallback):
			}
			continue
		}
		// Deliver the batch, then commit once: a crash replays at most the
		// batch, which idempotent consumers absorb.
		// The handler ends the batch early once the lease is no longer
		// fresh (smp.BatchStopped), so the commit below happens while it
		// still holds.
		hctx := smp.WithBatchStop(ctx, func() bool { return !s.fresh(ps) })
		var finish smp.BatchFinish
		if l.shared {
			// The handler's store is this database: the effects it
			// deferred and the records of what it applied commit with
			// the offset (smp.WithBatchFinish).
			hctx = smp.WithBatchFinish(hctx, func(f smp.BatchFinish) { finish = f })
		}
		n, herr := h(hctx, batch)
		if n > 0 && finish == nil && l.cfg.CommitInterval > 0 {
			// Nothing to write but the position: later (pending).
			if pending < 0 {
				pendingSince = time.Now()
			}
			pending, next = batch[n-1].Offset+1, batch[n-1].Offset+1
		} else if n > 0 {
			if !s.fresh(ps) {
				s.renewSoon() // the commit below is fenced: it fails if the lease was lost
			}
			// Commit even when ctx was just cancelled: a handled message
			// must not come again after a graceful stop.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			held, done, cut, err := l.commitBatch(cctx, s.group, k, batch, n, finish)
			cancel()
			if err != nil || !held && done > 0 {
				if err != nil && ctx.Err() == nil {
					log.Error("sqlbus: commit offset", "err", err)
				}
				// Lost the lease (or the database): re-lease and re-read the offset.
				epoch = 0
				if err == nil {
					s.lost(ps)
				}
				continue
			}
			if cut != nil {
				n, herr = done, cut // a deferred effect failed: deliver the batch again from it
			}
			if n > 0 {
				next, pending = batch[n-1].Offset+1, -1 // committed past what was pending
			}
		}
		if n == len(batch) && len(batch) < fetchBatch {
			drained = wake
		}
		if n < len(batch) && herr != nil && ctx.Err() == nil {
			// The handler failed on batch[n]: deliver it again after a backoff.
			wait := backoff.Failed()
			log.Warn("sqlbus: batch handler failed; delivering again", "offset", batch[n].Offset, "err", herr, "retry_in", wait)
			smp.Sleep(ctx, wait)
		} else {
			backoff.OK()
		}
	}
}

// isClosed reports whether Close was called.
func (l *Bus) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}
