package sqlbus

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/internal/redeliver"
	"smp/internal/sqldb"
	"smp/internal/wait"
)

// Direct tests of the idle-cost machinery of consumer.go (issue 22): the
// one poller, its back-off, idle consumers, the lease keeper and the epoch.

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTest(t *testing.T, path, owner string, cfg Config) *Bus {
	t.Helper()
	cfg.Path, cfg.Owner = path, owner
	if cfg.Partitions == 0 {
		cfg.Partitions = 2
	}
	cfg.RetryBackoff = time.Millisecond
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func keyFor(l *Bus, p int32) string {
	for i := 0; ; i++ {
		if k := fmt.Sprintf("k%d", i); l.PartitionFor(k) == p {
			return k
		}
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func startPoller(t *testing.T, l *Bus) {
	t.Helper()
	if !l.startPoller() {
		t.Fatal("closed")
	}
	t.Cleanup(l.stopPoller) // before Close (cleanups run last first)
}

// quiet waits until l ran no statement for 200 ms (what was under way has
// finished).
func quiet(t *testing.T, l *Bus) {
	t.Helper()
	last, since := l.SQLCounts().TotalStatements(), time.Now()
	wait.Until(t, 10*time.Second, "no statement for 200 ms", func() bool {
		if n := l.SQLCounts().TotalStatements(); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) >= 200*time.Millisecond
	})
}

// TestPollerWakesOnlyGrownPartitions: another process appends to
// partition 0; the poller wakes partition 0's consumers, and partition
// 1's stay asleep through later polls.
func TestPollerWakesOnlyGrownPartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "e.db")
	a := openTest(t, path, "a", Config{PollInterval: 5 * time.Millisecond})
	other := openTest(t, path, "b", Config{})
	k0, k1 := keyFor(a, 0), keyFor(a, 1)
	if err := other.Publish(ctx, smp.Message{Topic: "t", Key: k0}, smp.Message{Topic: "t", Key: k1}); err != nil {
		t.Fatal(err)
	}
	w0, _ := a.waitChan(tp{"t", 0})
	w1, _ := a.waitChan(tp{"t", 1})
	startPoller(t, a)
	wait.Until(t, 10*time.Second, "the first poll wakes both grown partitions", func() bool { return isClosed(w0) && isClosed(w1) })

	w0, _ = a.waitChan(tp{"t", 0})
	w1, _ = a.waitChan(tp{"t", 1})
	if err := other.Publish(ctx, smp.Message{Topic: "t", Key: k0}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "partition 0 woken", func() bool { return isClosed(w0) })
	polls := a.SQLCounts().Statements[sqldb.OpSelect]
	wait.Until(t, 10*time.Second, "two more polls", func() bool { return a.SQLCounts().Statements[sqldb.OpSelect] >= polls+2 })
	if isClosed(w1) {
		t.Fatal("partition 1 was woken though it did not grow")
	}
}

// TestPollerBacksOffWhenQuiet: with no news the poller's interval doubles
// up to 8 × PollInterval; another process's append, and a publish of this
// process, bring it back to PollInterval.
func TestPollerBacksOffWhenQuiet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "e.db")
	const every = 5 * time.Millisecond
	a := openTest(t, path, "a", Config{PollInterval: every})
	other := openTest(t, path, "b", Config{})
	startPoller(t, a)
	interval := func(d time.Duration) func() bool {
		return func() bool { return time.Duration(a.pollEvery.Load()) == d }
	}
	wait.Until(t, 10*time.Second, "backed off to 8 × PollInterval", interval(idleBackoff*every))
	// While backed off, a second of polls costs at most ~1000/40 statements.
	polls := a.SQLCounts().Statements[sqldb.OpSelect]
	if err := other.Publish(ctx, smp.Message{Topic: "t", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "back to PollInterval on another process's news", interval(every))
	if n := a.SQLCounts().Statements[sqldb.OpSelect] - polls; n > 3 {
		t.Errorf("the news took %d polls to see, want at most a few at the backed-off interval", n)
	}
	wait.Until(t, 10*time.Second, "backed off again", interval(idleBackoff*every))
	if err := a.Publish(ctx, smp.Message{Topic: "t", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, 10*time.Second, "back to PollInterval on this process's publish", interval(every))
}

// TestIdleConsumerRunsNoStatement: once a subscription has handled its
// messages, its partition consumers, lease keeper and poller run no
// statement over a period (with the keeper's and poller's intervals
// longer than it).
func TestIdleConsumerRunsNoStatement(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "e.db")
	a := openTest(t, path, "a", Config{Partitions: 4, PollInterval: time.Hour, LeaseTTL: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Subscribe(ctx, "g", []string{"t"}, func(context.Context, smp.Message) error { got <- struct{}{}; return nil })
	}()
	t.Cleanup(func() { cancel(); <-done })
	if err := a.Publish(context.Background(), smp.Message{Topic: "t", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	<-got
	quiet(t, a)
	before := a.SQLCounts()
	<-time.After(500 * time.Millisecond) // the period observed, not a wait for an event
	if d := a.SQLCounts().Sub(before); d.TotalStatements() != 0 || d.Commits != 0 {
		t.Fatalf("an idle subscription of 4 partitions ran %d statements (%v) in 500 ms; want none", d.TotalStatements(), d.Statements)
	}
}

// TestLeaseKeeperTwoStatements: the keeper takes or renews every partition
// of a subscription (two topics, 24 partitions) in two statements (three
// the first time: the lease rows), and takes over expired ones the same way.
func TestLeaseKeeperTwoStatements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "e.db")
	clk := &clock{t: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	cfg := Config{Partitions: 12, LeaseTTL: time.Minute, Now: clk.Now}
	a, b := openTest(t, path, "a", cfg), openTest(t, path, "b", cfg)
	sa, sb := a.newSubscription("g", []string{"t", "u"}), b.newSubscription("g", []string{"t", "u"})
	renew := func(s *subscription, want uint64, held int) {
		t.Helper()
		before := s.l.SQLCounts()
		if err := s.renew(ctx); err != nil {
			t.Fatal(err)
		}
		if got := s.l.SQLCounts().Sub(before).TotalStatements(); got != want {
			t.Fatalf("%s renewed in %d statements, want %d", s.l.cfg.Owner, got, want)
		}
		n := 0
		for _, ps := range s.parts {
			if h, _, _, _ := s.state(ps); h {
				n++
			}
		}
		if n != held {
			t.Fatalf("%s holds %d partitions, want %d", s.l.cfg.Owner, n, held)
		}
	}
	renew(sa, 3, 24) // insert the rows, take, read
	renew(sa, 2, 24) // renew, read
	renew(sb, 3, 0)  // a holds them all
	clk.Add(2 * time.Minute)
	renew(sb, 2, 24) // a's expired: b takes all
	renew(sa, 2, 0)
}

// TestEpochRereadsCommittedOffset: a consumer whose lease lapsed while it
// was idle, and was taken meanwhile by another member that consumed and
// committed further, re-reads the committed offset when its keeper takes
// the lease again (the epoch changed), instead of going on from its own
// position (which would deliver the other member's messages again).
func TestEpochRereadsCommittedOffset(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "e.db")
	clk := &clock{t: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	cfg := Config{Partitions: 1, LeaseTTL: time.Minute, PollInterval: time.Hour, Now: clk.Now}
	a, b := openTest(t, path, "a", cfg), openTest(t, path, "b", cfg)
	sa := a.newSubscription("g", []string{"t"})
	ps, k := sa.parts[0], sa.parts[0].k
	if err := sa.renew(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan int64, 10)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sa.consume(cctx, ps, redeliver.Each(slog.New(slog.DiscardHandler), time.Millisecond, func(_ context.Context, m smp.Message) error {
			got <- m.Offset
			return nil
		}))
	}()
	t.Cleanup(func() { cancel(); <-done })
	msg := smp.Message{Topic: "t", Key: "k"}
	if err := a.Publish(ctx, msg, msg, msg); err != nil {
		t.Fatal(err)
	}
	for want := int64(0); want < 3; want++ {
		if off := <-got; off != want {
			t.Fatalf("a got offset %d, want %d", off, want)
		}
	}
	wait.Until(t, 10*time.Second, "a committed 3", func() bool { n, err := b.committed(ctx, "g", k); return err == nil && n == 3 })
	quiet(t, a) // a's consumer waits for a wake-up

	// a's lease lapses; b takes it, consumes two more and commits, then stops.
	clk.Add(2 * time.Minute)
	sb := b.newSubscription("g", []string{"t"})
	if err := sb.renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, msg, msg); err != nil { // another process: a is not woken
		t.Fatal(err)
	}
	if ok, err := b.commit(ctx, "g", k, 5); !ok || err != nil {
		t.Fatalf("b's commit: %v %v", ok, err)
	}
	sb.release()

	// a's keeper takes the lease again: a new epoch.
	if err := sa.renew(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish(ctx, msg); err != nil {
		t.Fatal(err)
	}
	select {
	case off := <-got:
		if off != 5 {
			t.Fatalf("a got offset %d after retaking its lease, want 5 (b committed 3 and 4)", off)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a got nothing after retaking its lease")
	}
}

// TestConsumerStatementsPerMessage: a subscription fed one message at a
// time reads each with one fetch (after a batch that was the partition's
// end it waits for the next append instead of first finding nothing: two
// fetches each before) and commits its position in one statement on
// SQLite (the lease check in the offset's upsert: three before), here
// at once after each batch (CommitInterval < 0).
func TestConsumerStatementsPerMessage(t *testing.T) {
	t.Parallel()
	l := openTest(t, filepath.Join(t.TempDir(), "e.db"), "a", Config{Partitions: 1, PollInterval: time.Hour, LeaseTTL: time.Hour, CommitInterval: -1})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Subscribe(ctx, "g", []string{"t"}, func(context.Context, smp.Message) error { got <- struct{}{}; return nil })
	}()
	t.Cleanup(func() { cancel(); <-done })
	committedAt := func(want int64) func() bool {
		return func() bool {
			next, err := l.committed(context.Background(), "g", tp{topic: "t"})
			return err == nil && next == want
		}
	}
	if err := l.Publish(context.Background(), smp.Message{Topic: "t", Key: "k"}); err != nil {
		t.Fatal(err)
	}
	<-got
	wait.Until(t, 10*time.Second, "the first message committed", committedAt(1))
	l.counters.EnableCensus(100)
	before := l.counters.Census()
	const n = 10
	for i := range n {
		if err := l.Publish(context.Background(), smp.Message{Topic: "t", Key: "k"}); err != nil {
			t.Fatal(err)
		}
		<-got
		wait.Until(t, 10*time.Second, "the message committed", committedAt(int64(i+2)))
	}
	after := l.counters.Census()
	count := func(prefix string) (c uint64) {
		for text, v := range after {
			if strings.HasPrefix(text, prefix) {
				c += v - before[text]
			}
		}
		return c
	}
	if f := count("SELECT off, msg_key"); f > n+2 {
		t.Errorf("%d messages published one at a time took %d fetches, want about one each (%d before the change: two each)", n, f, 2*n)
	}
	if o, lease := count("INSERT INTO bus_offsets"), count("SELECT owner FROM bus_leases"); o != n || lease != 0 {
		t.Errorf("%d offset commits took %d offset writes and %d lease reads, want %d and 0", n, o, lease, n)
	}
	if o := count("UPDATE bus_offsets") + count("INSERT OR IGNORE INTO bus_offsets"); o != 0 {
		t.Errorf("%d offset commits took %d more offset statements, want none", n, o)
	}
}

// TestPositionOnlyBatchesCommitLater: batches with nothing to write but
// their position (a handler that records nothing, or records what it
// applied itself) do not commit it each (one commit each before): a
// graceful stop commits what was handled, and so does the interval's timer.
func TestPositionOnlyBatchesCommitLater(t *testing.T) {
	t.Parallel()
	for _, interval := range []time.Duration{time.Hour, 50 * time.Millisecond} {
		t.Run(interval.String(), func(t *testing.T) {
			t.Parallel()
			l := openTest(t, filepath.Join(t.TempDir(), "e.db"), "a", Config{Partitions: 1, PollInterval: time.Hour, LeaseTTL: 24 * time.Hour,
				CommitInterval: interval})
			ctx, cancel := context.WithCancel(context.Background())
			got := make(chan struct{}, 100)
			done := make(chan struct{})
			go func() {
				defer close(done)
				l.Subscribe(ctx, "g", []string{"t"}, func(context.Context, smp.Message) error { got <- struct{}{}; return nil })
			}()
			stop := sync.OnceFunc(func() { cancel(); <-done })
			t.Cleanup(stop)
			committed := func() int64 {
				next, err := l.committed(context.Background(), "g", tp{topic: "t"})
				if err != nil {
					t.Fatal(err)
				}
				return next
			}
			const n = 20
			l.counters.EnableCensus(100)
			for range n {
				if err := l.Publish(context.Background(), smp.Message{Topic: "t", Key: "k"}); err != nil {
					t.Fatal(err)
				}
				<-got // one batch each
			}
			if interval == time.Hour {
				var c uint64
				for text, v := range l.counters.Census() {
					if strings.HasPrefix(text, "INSERT INTO bus_offsets") || strings.HasPrefix(text, "UPDATE bus_offsets") {
						c += v
					}
				}
				if c != 0 || committed() != 0 {
					t.Errorf("%d batches cost %d offset statements (at %d), want none before the interval", n, c, committed())
				}
				stop()
				if c := committed(); c != n {
					t.Errorf("after a graceful stop the position is %d, want %d", c, n)
				}
				return
			}
			wait.Until(t, 10*time.Second, "the interval's commit", func() bool { return committed() == n })
		})
	}
}
