package outbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"smp"
	"smp/outbox"
	"smp/sqlbus"
	"smp/sqlstore"
)

// The embedded default (issue 22): the event log's tables are in the
// store's database and the outbox append is the log append.

// openSharedLog opens a store and the log on its database, the outbox
// appending to the log (as app wires the embedded default).
func openSharedLog(t *testing.T, partitions int) (*sqlstore.DB, *sqlbus.Bus) {
	t.Helper()
	return openSharedLogAt(t, filepath.Join(t.TempDir(), "smp.db"), partitions)
}

// openSharedLogAt is openSharedLog on the database file at path.
func openSharedLogAt(t *testing.T, path string, partitions int) (*sqlstore.DB, *sqlbus.Bus) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	shared, err := store.Shared()
	if err != nil {
		t.Fatal(err)
	}
	// PollInterval of an hour: a consumer sees this process's appends only
	// by the wake-up after the store's commit.
	log, err := sqlbus.Open(sqlbus.Config{Shared: &shared, Partitions: partitions, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		log.Close()
		store.Close()
	})
	if err := store.SetOutboxLog(log.AppendTx); err != nil {
		t.Fatal(err)
	}
	return store, log
}

// orderEvents are an order's first events, as orders.CreateOrder adds them.
func orderEvents(order string, at time.Time) []smp.Event {
	return []smp.Event{
		{ID: order + "-created", Type: smp.EventOrderCreated, SchemaVersion: 1, AggregateID: order, OccurredAt: at, Data: json.RawMessage(`{"order_id": "` + order + `", "city": "HCMC"}`)},
		{ID: order + "-dispatching", Type: smp.EventOrderDispatching, SchemaVersion: 1, AggregateID: order, OccurredAt: at, Data: json.RawMessage(`{"order_id":"` + order + `"}`)},
	}
}

func addEvents(ctx context.Context, store *sqlstore.DB, evs []smp.Event) error {
	return store.InTx(ctx, func(tx smp.Tx) error {
		for _, e := range evs {
			if err := tx.AddEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// TestOutboxAppendReachesConsumerWithoutRelay: with no relay running, an
// order's events reach a consumer of the log, woken by the store's
// commit, and the transaction that wrote them is the only write commit.
func TestOutboxAppendReachesConsumerWithoutRelay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, log := openSharedLog(t, 4)
	at := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)

	before := store.SQLCounts()
	if err := addEvents(ctx, store, orderEvents("O1", at)); err != nil {
		t.Fatal(err)
	}
	d := store.SQLCounts().Sub(before)
	if d.WriteCommits != 1 {
		t.Fatalf("an order's two events cost %d write commits, want 1 (the order's own transaction)", d.WriteCommits)
	}
	t.Logf("two events in one transaction: %d statements, %d write commit", d.TotalStatements(), d.WriteCommits)
	if n, _, err := store.OutboxBacklog(ctx); err != nil || n != 0 {
		t.Fatalf("outbox backlog = %d (%v), want 0: the rows are written published", n, err)
	}

	got := make(chan string, 16)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- log.Subscribe(sctx, "g", []string{smp.TopicOrders}, func(ctx context.Context, m smp.Message) error {
			got <- m.Headers["event_id"]
			return nil
		})
	}()
	defer func() {
		cancel()
		<-done
	}()
	want := []string{"O1-created", "O1-dispatching"}
	// The second order is committed while the consumer waits: only the
	// commit's wake-up brings it (the poller looks once an hour).
	for i := 0; i < len(want); i++ {
		select {
		case id := <-got:
			if id != want[i] {
				t.Fatalf("event %d = %s, want %s", i, id, want[i])
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %s never arrived (no relay runs)", want[i])
		}
	}
	if err := addEvents(ctx, store, orderEvents("O1", at.Add(time.Second))[:1]); err == nil {
		t.Fatal("a duplicate event id was accepted")
	}
	if err := addEvents(ctx, store, orderEvents("O2", at)); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"O2-created", "O2-dispatching"} {
		select {
		case id := <-got:
			if id != w {
				t.Fatalf("event = %s, want %s", id, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %s never arrived: the store's commit did not wake the consumer", w)
		}
	}
}

// TestOutboxAppendMatchesRelay: the messages appended in the store's
// transaction are byte for byte those the relay publishes from the
// outbox (topic, key, partition, offset, value, headers).
func TestOutboxAppendMatchesRelay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Date(2026, 12, 2, 7, 0, 0, 123456000, time.UTC)
	var evs []smp.Event
	for i := 0; i < 5; i++ {
		evs = append(evs, orderEvents(fmt.Sprintf("O%d", i), at)...)
	}
	evs = append(evs, smp.Event{ID: "p1", Type: "payment.received", SchemaVersion: 1, AggregateID: "O1", OccurredAt: at, Data: json.RawMessage(`{"amount":150000}`)})

	// Before: the outbox row, then the relay's copy into the log's own file.
	dir := t.TempDir()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(dir, "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fileLog, err := sqlbus.Open(sqlbus.Config{Path: filepath.Join(dir, "events.db"), Partitions: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer fileLog.Close()
	countsBefore := store.SQLCounts().Add(fileLog.SQLCounts())
	if err := addEvents(ctx, store, evs); err != nil {
		t.Fatal(err)
	}
	// Woken by the commit only (no timed polls in the counts).
	relay, err := outbox.New(store, fileLog, outbox.Config{Signal: store.CommitSignal(), PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	relay.Start(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _, err := store.OutboxBacklog(ctx)
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay never drained the outbox (%d left, %v)", n, err)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	relay.Stop(ctx)
	relayed := store.SQLCounts().Add(fileLog.SQLCounts()).Sub(countsBefore)

	// After: appended in the order's transaction.
	shared, log := openSharedLog(t, 3)
	countsBefore = shared.SQLCounts().Add(log.SQLCounts())
	if err := addEvents(ctx, shared, evs); err != nil {
		t.Fatal(err)
	}
	appended := shared.SQLCounts().Add(log.SQLCounts()).Sub(countsBefore)
	t.Logf("%d events in one transaction to the log: relayed %d statements, %d write commits; appended %d statements, %d write commits",
		len(evs), relayed.TotalStatements(), relayed.WriteCommits, appended.TotalStatements(), appended.WriteCommits)
	if appended.WriteCommits != 1 || relayed.WriteCommits <= appended.WriteCommits {
		t.Errorf("write commits: appended %d, relayed %d: want 1, and fewer than the relay's", appended.WriteCommits, relayed.WriteCommits)
	}
	for _, topic := range []string{smp.TopicOrders, smp.TopicPayments} {
		want, err := fileLog.Read(ctx, topic, 100)
		if err != nil {
			t.Fatal(err)
		}
		got, err := log.Read(ctx, topic, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) == 0 || len(got) != len(want) {
			t.Fatalf("%s: %d messages appended, the relay published %d", topic, len(got), len(want))
		}
		for i := range want {
			w, g := want[i], got[i]
			if !bytes.Equal(g.Value, w.Value) || g.Key != w.Key || g.Topic != w.Topic || g.Partition != w.Partition || g.Offset != w.Offset || !reflect.DeepEqual(g.Headers, w.Headers) {
				t.Fatalf("%s message %d differs:\nappended %+v %s\nrelayed  %+v %s", topic, i, g, g.Value, w, w.Value)
			}
		}
	}
}

// TestOutboxAppendRolledBack: a transaction that fails appends nothing
// (no message, no offset taken), and the next one starts where the log
// ended.
func TestOutboxAppendRolledBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, log := openSharedLog(t, 1)
	at := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	boom := errors.New("boom")
	err := store.InTx(ctx, func(tx smp.Tx) error {
		for _, e := range orderEvents("O1", at) {
			if err := tx.AddEvent(ctx, e); err != nil {
				return err
			}
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx = %v, want boom", err)
	}
	if msgs, err := log.Read(ctx, smp.TopicOrders, 10); err != nil || len(msgs) != 0 {
		t.Fatalf("after a rollback the log holds %d messages (%v), want none", len(msgs), err)
	}
	if err := addEvents(ctx, store, orderEvents("O2", at)); err != nil {
		t.Fatal(err)
	}
	msgs, err := log.Read(ctx, smp.TopicOrders, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Offset != 0 || msgs[0].Headers["event_id"] != "O2-created" || msgs[1].Offset != 1 {
		t.Fatalf("log after a rollback and a commit = %+v, want O2's two events at offsets 0 and 1", msgs)
	}
}

// TestOutboxAppendAfterBacklog: events the relay has not yet published
// when the log is switched on go first; the transactions after them are
// left to the relay until the outbox is empty, so each key keeps its
// order.
func TestOutboxAppendAfterBacklog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlstore.Open(ctx, sqlstore.Config{Path: filepath.Join(t.TempDir(), "smp.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	at := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	if err := addEvents(ctx, store, orderEvents("O1", at)[:1]); err != nil { // before the switch
		t.Fatal(err)
	}
	shared, _ := store.Shared()
	log, err := sqlbus.Open(sqlbus.Config{Shared: &shared, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	if err := store.SetOutboxLog(log.AppendTx); err != nil {
		t.Fatal(err)
	}
	if err := addEvents(ctx, store, orderEvents("O1", at)[1:]); err != nil { // backlog: the relay's
		t.Fatal(err)
	}
	if n, _, _ := store.OutboxBacklog(ctx); n != 2 {
		t.Fatalf("backlog = %d, want 2: behind an unpublished event the next one waits for the relay", n)
	}
	relay, err := outbox.New(store, log, outbox.Config{Signal: store.OutboxSignal(), PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	relay.Start(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _, err := store.OutboxBacklog(ctx); err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the relay never drained the outbox")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	relay.Stop(ctx)
	if err := addEvents(ctx, store, orderEvents("O2", at)); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := store.OutboxBacklog(ctx); n != 0 {
		t.Fatalf("backlog = %d after the relay drained it, want 0: appended directly", n)
	}
	msgs, err := log.Read(ctx, smp.TopicOrders, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range msgs {
		if m.Key == "O1" {
			ids = append(ids, m.Headers["event_id"])
		}
	}
	if !reflect.DeepEqual(ids, []string{"O1-created", "O1-dispatching"}) {
		t.Fatalf("O1's events in the log: %v, want created then dispatching", ids)
	}
	if len(msgs) != 4 {
		t.Fatalf("%d messages, want 4", len(msgs))
	}
}

// TestOutboxAppendAfterAnotherWriter: another process writing the same
// database without the log (smp import, smp demo's loading) leaves its
// events unpublished for the relay; a transaction of the server's after
// that, for the same key, must not overtake it by appending directly,
// however long the outbox was empty before.
func TestOutboxAppendAfterAnotherWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "smp.db")
	store, _ := openSharedLogAt(t, path, 2)
	at := time.Date(2026, 12, 2, 7, 0, 0, 0, time.UTC)
	if err := addEvents(ctx, store, orderEvents("O0", at)); err != nil { // the outbox is empty: appended directly
		t.Fatal(err)
	}
	other, err := sqlstore.Open(ctx, sqlstore.Config{Path: path}) // another process, no log
	if err != nil {
		t.Fatal(err)
	}
	err = addEvents(ctx, other, orderEvents("O1", at)[:1])
	other.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := addEvents(ctx, store, orderEvents("O1", at)[1:]); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := store.OutboxBacklog(ctx); n != 2 {
		t.Fatalf("backlog = %d, want 2: O1's second event waits behind the first, which another process left to the relay", n)
	}
}
