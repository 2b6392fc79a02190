package sqlbus_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"smp"
	"smp/bustest"
	"smp/internal/sqldb"
	"smp/sqlbus"
	"smp/sqlstore/sqlstoretest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	bustest.Run(t, bustest.Features{MaxAttempts: 3}, func(t *testing.T) bustest.Connect {
		path := filepath.Join(t.TempDir(), "events.db")
		return func(t *testing.T) smp.EventBus {
			l, err := sqlbus.Open(sqlbus.Config{Path: path, Partitions: 4, RetryBackoff: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}
	})
}

func TestConformanceMySQL(t *testing.T) {
	t.Parallel()
	bustest.Run(t, bustest.Features{MaxAttempts: 3}, func(t *testing.T) bustest.Connect {
		dsn := sqlstoretest.MySQLDSN(t)
		return func(t *testing.T) smp.EventBus {
			l, err := sqlbus.Open(sqlbus.Config{MySQLDSN: dsn, Partitions: 4, RetryBackoff: time.Millisecond,
				PollInterval: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}
	})
}

// TestLeaseTakeover: a member that dies without releasing its leases
// loses its partitions after the lease TTL.
func TestLeaseTakeover(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "e.db")
	open := func(owner string) *sqlbus.Bus {
		l, err := sqlbus.Open(sqlbus.Config{Path: path, Partitions: 2, Owner: owner, LeaseTTL: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	a, b := open("a"), open("b")
	ctx, cancelA := context.WithCancel(context.Background())
	got := make(chan string, 100)
	doneA := make(chan struct{})
	go func() {
		defer close(doneA)
		a.Subscribe(ctx, "g", []string{"t"}, func(_ context.Context, m smp.Message) error { got <- "a:" + string(m.Value); return nil })
	}()
	must(t, a.Publish(context.Background(), smp.Message{Topic: "t", Key: "k", Value: []byte("1")}))
	if v := <-got; v != "a:1" {
		t.Fatalf("got %s", v)
	}
	// Let a commit it (redelivery of an uncommitted message is allowed).
	deadline := time.Now().Add(10 * time.Second)
	for {
		lag, err := a.Lag(context.Background(), "g", []string{"t"})
		must(t, err)
		if lag["t"][0]+lag["t"][1] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a never committed")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	// a "dies": its consumer stops without releasing (Close first, so the release fails).
	a.Close()
	cancelA()
	<-doneA
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	go b.Subscribe(ctxB, "g", []string{"t"}, func(_ context.Context, m smp.Message) error { got <- "b:" + string(m.Value); return nil })
	must(t, b.Publish(context.Background(), smp.Message{Topic: "t", Key: "k", Value: []byte("2")}))
	select {
	case v := <-got:
		if v != "b:2" {
			t.Fatalf("after takeover got %s, want b:2", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b never took over the dead member's partition")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPublishWakesItsPartition: with polling practically off (an hour), a
// publish must wake the consumers of the partitions it appended to, and
// only by that are the messages delivered at once.
func TestPublishWakesItsPartition(t *testing.T) {
	t.Parallel()
	l, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(t.TempDir(), "events.db"), Partitions: 4, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 100)
	go l.Subscribe(ctx, "g", []string{smp.TopicOrders}, func(_ context.Context, m smp.Message) error {
		got <- m.Key
		return nil
	})
	for round := 0; round < 2; round++ { // the second round finds every consumer idle
		want := map[string]bool{}
		var msgs []smp.Message
		for i := 0; i < 8; i++ {
			k := fmt.Sprintf("r%d-o%d", round, i)
			want[k] = true
			msgs = append(msgs, smp.Message{Topic: smp.TopicOrders, Key: k, Value: []byte(`{}`)})
		}
		if err := l.Publish(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(10 * time.Second)
		for len(want) > 0 {
			select {
			case k := <-got:
				delete(want, k)
			case <-deadline:
				t.Fatalf("round %d: %d messages not delivered: no wake-up reached their partitions", round, len(want))
			}
		}
	}
}

// TestInjectedClock: lease expiries are read on Config.Now, not the wall
// clock. A member holds a partition; an operator whose clock is past the
// lease's TTL may reset the offset, one on the member's clock may not.
func TestInjectedClock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "e.db")
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	open := func(owner string, now func() time.Time) *sqlbus.Bus {
		l, err := sqlbus.Open(sqlbus.Config{Path: path, Partitions: 1, Owner: owner, LeaseTTL: time.Minute, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	member := open("member", func() time.Time { return base })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	got := make(chan struct{}, 1)
	go func() {
		defer close(done)
		member.Subscribe(ctx, "g", []string{"t"}, func(context.Context, smp.Message) error { got <- struct{}{}; return nil })
	}()
	defer func() { cancel(); <-done }()
	must(t, member.Publish(context.Background(), smp.Message{Topic: "t", Key: "k", Value: []byte("1")}))
	select {
	case <-got: // the member holds the lease now
	case <-time.After(10 * time.Second):
		t.Fatal("not delivered")
	}
	same := open("op1", func() time.Time { return base.Add(30 * time.Second) })
	if err := same.ResetOffset(context.Background(), "g", "t", 0, 0); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("reset within the lease on the injected clock: %v, want ECONFLICT", err)
	}
	later := open("op2", func() time.Time { return base.Add(2 * time.Minute) })
	if err := later.ResetOffset(context.Background(), "g", "t", 0, 0); err != nil {
		t.Fatalf("reset after the lease expired on the injected clock: %v", err)
	}
}

// TestMigrations: the schema comes from migrations/<dialect>/ and is
// recorded once; reopening applies nothing again.
func TestMigrations(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "e.db")
	for i := 0; i < 2; i++ {
		l, err := sqlbus.Open(sqlbus.Config{Path: path})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		must(t, l.Publish(context.Background(), smp.Message{Topic: "t", Key: "k", Value: []byte("v")}))
		l.Close()
	}
	dsn, err := sqldb.SQLiteDSN(path, false)
	must(t, err)
	db, err := sql.Open("sqlite", dsn)
	must(t, err)
	defer db.Close()
	var versions []string
	rows, err := db.Query(`SELECT version FROM bus_schema_migrations ORDER BY version`)
	must(t, err)
	for rows.Next() {
		var v string
		must(t, rows.Scan(&v))
		versions = append(versions, v)
	}
	must(t, rows.Err())
	if len(versions) != 1 || versions[0] != "0001_bus" {
		t.Fatalf("applied migrations %v, want [0001_bus]", versions)
	}
}
