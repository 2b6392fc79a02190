package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"smp"
)

var outboxTests = []Test{
	{"Outbox/FetchAndMarkPublished", testOutbox},
	{"Outbox/FetchOutbox/ErrInvalid", testFetchOutboxInvalid},
	{"Outbox/FetchOutboxAfter", testFetchOutboxAfter},
	{"Outbox/Backlog", testOutboxBacklog},
}

// testOutbox: events in commit order, as written; at most limit; a
// published event is not fetched again.
func testOutbox(t *testing.T, s Store) {
	e1, e2, e3 := event("e1", "o1", T0.Add(time.Second)), event("e2", "o2", T0), event("e3", "o1", T0.Add(2*time.Second))
	inTx(t, s, func(tx smp.Tx) error {
		if err := tx.AddEvent(ctx, e1); err != nil {
			return err
		}
		return tx.AddEvent(ctx, e2)
	})
	inTx(t, s, func(tx smp.Tx) error { return tx.AddEvent(ctx, e3) })
	recs, err := s.FetchOutbox(ctx, 10)
	must(t, err)
	if len(recs) != 3 {
		t.Fatalf("fetched %d events, want 3", len(recs))
	}
	for i, want := range []smp.Event{e1, e2, e3} {
		if !reflect.DeepEqual(recs[i].Event, want) {
			t.Errorf("record %d\n got %+v\nwant %+v", i, recs[i].Event, want)
		}
		if !recs[i].CreatedAt.Equal(want.OccurredAt) {
			t.Errorf("record %d created at %v, want the event's time %v", i, recs[i].CreatedAt, want.OccurredAt)
		}
	}
	if recs[0].ID >= recs[1].ID || recs[1].ID >= recs[2].ID {
		t.Fatalf("ids not in commit order: %d %d %d", recs[0].ID, recs[1].ID, recs[2].ID)
	}
	if two, _ := s.FetchOutbox(ctx, 2); len(two) != 2 || two[0].Event.ID != "e1" {
		t.Fatalf("limit 2: %+v", two)
	}
	must(t, s.MarkOutboxPublished(ctx, nil, T0))
	must(t, s.MarkOutboxPublished(ctx, []int64{recs[0].ID, recs[2].ID, 999999}, T0))
	left, err := s.FetchOutbox(ctx, 10)
	must(t, err)
	if len(left) != 1 || left[0].Event.ID != "e2" {
		t.Fatalf("after publishing e1 and e3: %+v", left)
	}
}

func testFetchOutboxInvalid(t *testing.T, s Store) {
	for _, limit := range []int{0, -1} {
		_, err := s.FetchOutbox(ctx, limit)
		wantCode(t, fmt.Sprintf("FetchOutbox(limit %d)", limit), err, smp.EINVALID)
		_, err = s.FetchOutboxAfter(ctx, 0, limit)
		wantCode(t, fmt.Sprintf("FetchOutboxAfter(limit %d)", limit), err, smp.EINVALID)
	}
}

// testFetchOutboxAfter: the pipelined relay's fetch: unpublished events
// above an id, in commit order, at most limit; 0 is from the first; an id
// past the last gives none.
func testFetchOutboxAfter(t *testing.T, s Store) {
	inTx(t, s, func(tx smp.Tx) error {
		for i := range 5 {
			if err := tx.AddEvent(ctx, event(fmt.Sprint("e", i), "o1", T0)); err != nil {
				return err
			}
		}
		return nil
	})
	all, err := s.FetchOutboxAfter(ctx, 0, 10)
	must(t, err)
	if len(all) != 5 {
		t.Fatalf("after 0: %d events, want 5", len(all))
	}
	ids := func(recs []smp.OutboxRecord) (out []string) {
		for _, r := range recs {
			out = append(out, r.Event.ID)
		}
		return out
	}
	next, err := s.FetchOutboxAfter(ctx, all[1].ID, 2)
	must(t, err)
	if got := ids(next); !reflect.DeepEqual(got, []string{"e2", "e3"}) {
		t.Fatalf("after the 2nd, limit 2: %v, want [e2 e3]", got)
	}
	// A published event is skipped; the fetch does not wait for marks.
	must(t, s.MarkOutboxPublished(ctx, []int64{all[3].ID}, T0))
	next, err = s.FetchOutboxAfter(ctx, all[1].ID, 10)
	must(t, err)
	if got := ids(next); !reflect.DeepEqual(got, []string{"e2", "e4"}) {
		t.Fatalf("after the 2nd with the 4th published: %v, want [e2 e4]", got)
	}
	if none, err := s.FetchOutboxAfter(ctx, all[4].ID, 10); err != nil || len(none) != 0 {
		t.Fatalf("after the last: %v, %v", ids(none), err)
	}
	if first, _ := s.FetchOutbox(ctx, 1); len(first) != 1 || first[0].Event.ID != "e0" {
		t.Fatalf("FetchOutbox after FetchOutboxAfter: %v", ids(first))
	}
}

// testOutboxBacklog: count and oldest unpublished event; zero when empty.
func testOutboxBacklog(t *testing.T, s Store) {
	n, oldest, err := s.OutboxBacklog(ctx)
	if err != nil || n != 0 || !oldest.IsZero() {
		t.Fatalf("empty: %d %v %v", n, oldest, err)
	}
	inTx(t, s, func(tx smp.Tx) error {
		for i, at := range []time.Time{T0.Add(time.Minute), T0, T0.Add(time.Hour)} {
			if err := tx.AddEvent(ctx, event(fmt.Sprint("e", i), "o1", at)); err != nil {
				return err
			}
		}
		return nil
	})
	n, oldest, err = s.OutboxBacklog(ctx)
	if err != nil || n != 3 || !oldest.Equal(T0) {
		t.Fatalf("backlog: %d, oldest %v, %v; want 3, %v", n, oldest, err, T0)
	}
	recs, _ := s.FetchOutbox(ctx, 10)
	must(t, s.MarkOutboxPublished(ctx, []int64{recs[1].ID}, T0))
	if n, oldest, _ := s.OutboxBacklog(ctx); n != 2 || !oldest.Equal(T0.Add(time.Minute)) {
		t.Fatalf("after publishing the oldest: %d, %v", n, oldest)
	}
}
