// Package inmem holds the embedded, in-process implementations of SMP's
// dispatch-side interfaces: the per-city queue, the invitation store, the
// geo index of technicians and a lease locker. They keep what the Redis
// implementations keep under the same key names.
package inmem

import (
	"context"
	"sync"
	"time"

	"smp"
)

// Queue is an in-process smp.DispatchQueue: one FIFO per city key, with
// duplicates suppressed.
type Queue struct {
	mu     sync.Mutex
	lists  map[string][]string
	queued map[string]map[string]bool
	wake   map[string]chan struct{}
}

var _ smp.DispatchQueue = (*Queue)(nil)

// NewQueue returns an empty queue.
func NewQueue() *Queue {
	return &Queue{lists: map[string][]string{}, queued: map[string]map[string]bool{}, wake: map[string]chan struct{}{}}
}

func (q *Queue) wakeChan(key string) chan struct{} {
	ch, ok := q.wake[key]
	if !ok {
		ch = make(chan struct{})
		q.wake[key] = ch
	}
	return ch
}

// Push appends orderID unless it is already queued.
func (q *Queue) Push(_ context.Context, city, orderID string) error {
	key := smp.QueueKey(city)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.queued[key] == nil {
		q.queued[key] = map[string]bool{}
	}
	if q.queued[key][orderID] {
		return nil
	}
	q.queued[key][orderID] = true
	q.lists[key] = append(q.lists[key], orderID)
	close(q.wakeChan(key))
	delete(q.wake, key)
	return nil
}

// Pop removes the oldest order, waiting up to wait.
func (q *Queue) Pop(ctx context.Context, city string, wait time.Duration) (string, bool, error) {
	key := smp.QueueKey(city)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		q.mu.Lock()
		if l := q.lists[key]; len(l) > 0 {
			id := l[0]
			q.lists[key] = l[1:]
			delete(q.queued[key], id)
			q.mu.Unlock()
			return id, true, nil
		}
		ch := q.wakeChan(key)
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", false, ctx.Err()
		case <-timer.C:
			return "", false, nil
		case <-ch:
		}
	}
}

// Len returns the queue's length.
func (q *Queue) Len(_ context.Context, city string) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(len(q.lists[smp.QueueKey(city)])), nil
}

// Locker is an in-process smp.Locker.
type Locker struct {
	mu   sync.Mutex
	held map[string]lease
	Now  func() time.Time
}

type lease struct {
	owner   string
	expires time.Time
}

var _ smp.Locker = (*Locker)(nil)

// NewLocker returns a locker on the wall clock.
func NewLocker() *Locker { return &Locker{held: map[string]lease{}, Now: time.Now} }

// TryLock takes key for ttl unless another owner holds an unexpired lease.
func (l *Locker) TryLock(_ context.Context, key, owner string, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	if cur, ok := l.held[key]; ok && cur.owner != owner && now.Before(cur.expires) {
		return false, nil
	}
	l.held[key] = lease{owner: owner, expires: now.Add(ttl)}
	return true, nil
}

// Renew extends owner's unexpired lease.
func (l *Locker) Renew(_ context.Context, key, owner string, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	cur, ok := l.held[key]
	if !ok || cur.owner != owner || !now.Before(cur.expires) {
		return false, nil
	}
	l.held[key] = lease{owner: owner, expires: now.Add(ttl)}
	return true, nil
}

// Unlock releases key if owner holds it.
func (l *Locker) Unlock(_ context.Context, key, owner string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.held[key]; ok && cur.owner == owner {
		delete(l.held, key)
	}
	return nil
}
