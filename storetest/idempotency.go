package storetest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"smp"
)

var idempotencyTests = []Test{
	{"Idempotency/OK", testIdempotencyOK},
	{"Idempotency/ErrNotFound", testIdempotencyNotFound},
	{"Idempotency/ErrConflict", testIdempotencyConflict},
	{"Idempotency/Expired", testIdempotencyExpired},
	{"Idempotency/RolledBack", testIdempotencyRolledBack},
	{"Idempotency/Limits", testIdempotencyLimits},
	{"Idempotency/Concurrent/OneOrder", testIdempotencyConcurrent},
}

func idemRequest(customer, key, orderID string, at time.Time) *smp.IdempotentRequest {
	return &smp.IdempotentRequest{CustomerID: customer, Key: key, RequestHash: strings.Repeat("a", 64), OrderID: orderID,
		Response: []byte(`{"id":"` + orderID + `"}`), CreatedAt: at}
}

func recordIdem(s Store, r *smp.IdempotentRequest, expiredBefore time.Time) error {
	return s.InTx(ctx, func(tx smp.Tx) error { return tx.RecordIdempotentRequest(ctx, r, expiredBefore) })
}

// testIdempotencyOK: a recorded request is found with every field.
func testIdempotencyOK(t *testing.T, s Store) {
	want := idemRequest("C1", "key-1", "o1", T0)
	must(t, recordIdem(s, want, T0.Add(-smp.IdempotencyKeyTTL)))
	got, err := s.FindIdempotentRequest(ctx, "C1", "key-1", T0.Add(-smp.IdempotencyKeyTTL))
	must(t, err)
	if got.CustomerID != want.CustomerID || got.Key != want.Key || got.RequestHash != want.RequestHash || got.OrderID != want.OrderID ||
		string(got.Response) != string(want.Response) || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("found %+v, want %+v", got, want)
	}
	// since is inclusive.
	if _, err := s.FindIdempotentRequest(ctx, "C1", "key-1", T0); err != nil {
		t.Fatalf("since = created_at: %v", err)
	}
}

// testIdempotencyNotFound: an unknown key, another customer's key and a
// key older than since are ENOTFOUND.
func testIdempotencyNotFound(t *testing.T, s Store) {
	must(t, recordIdem(s, idemRequest("C1", "key-1", "o1", T0), T0))
	for _, c := range []struct {
		customer, key string
		since         time.Time
	}{{"C1", "key-2", T0}, {"C2", "key-1", T0}, {"C1", "key-1", T0.Add(time.Microsecond)}} {
		_, err := s.FindIdempotentRequest(ctx, c.customer, c.key, c.since)
		wantCode(t, fmt.Sprintf("find %s/%s since %v", c.customer, c.key, c.since), err, smp.ENOTFOUND)
	}
}

// testIdempotencyConflict: a key recorded (and not expired) cannot be
// recorded again by the same customer; another customer may use it.
func testIdempotencyConflict(t *testing.T, s Store) {
	must(t, recordIdem(s, idemRequest("C1", "key-1", "o1", T0), T0.Add(-time.Hour)))
	wantCode(t, "same customer and key", recordIdem(s, idemRequest("C1", "key-1", "o2", T0.Add(time.Minute)), T0.Add(-time.Hour)), smp.ECONFLICT)
	must(t, recordIdem(s, idemRequest("C2", "key-1", "o3", T0), T0.Add(-time.Hour)))
	got, err := s.FindIdempotentRequest(ctx, "C1", "key-1", T0.Add(-time.Hour))
	must(t, err)
	if got.OrderID != "o1" {
		t.Fatalf("the conflicting record replaced the first: %+v", got)
	}
}

// testIdempotencyExpired: a record created before expiredBefore is
// replaced by a new one with the same key.
func testIdempotencyExpired(t *testing.T, s Store) {
	must(t, recordIdem(s, idemRequest("C1", "key-1", "o1", T0), T0.Add(-time.Hour)))
	later := T0.Add(smp.IdempotencyKeyTTL + time.Hour)
	must(t, recordIdem(s, idemRequest("C1", "key-1", "o2", later), later.Add(-smp.IdempotencyKeyTTL)))
	got, err := s.FindIdempotentRequest(ctx, "C1", "key-1", later.Add(-smp.IdempotencyKeyTTL))
	must(t, err)
	if got.OrderID != "o2" || !got.CreatedAt.Equal(later) {
		t.Fatalf("found %+v, want the new record", got)
	}
}

// testIdempotencyRolledBack: a record whose transaction failed is not
// kept.
func testIdempotencyRolledBack(t *testing.T, s Store) {
	err := s.InTx(ctx, func(tx smp.Tx) error {
		if err := tx.RecordIdempotentRequest(ctx, idemRequest("C1", "key-1", "o1", T0), T0); err != nil {
			return err
		}
		return errBoom
	})
	if err != errBoom {
		t.Fatalf("InTx: %v, want errBoom", err)
	}
	_, err = s.FindIdempotentRequest(ctx, "C1", "key-1", T0.Add(-time.Hour))
	wantCode(t, "after rollback", err, smp.ENOTFOUND)
}

// testIdempotencyLimits: a key of MaxIdempotencyKey characters (multibyte
// included) is kept whole; one more is EINVALID and nothing is written.
func testIdempotencyLimits(t *testing.T, s Store) {
	long := strings.Repeat("ý", smp.MaxIdempotencyKey)
	must(t, recordIdem(s, idemRequest("C1", long, "o1", T0), T0))
	got, err := s.FindIdempotentRequest(ctx, "C1", long, T0)
	must(t, err)
	if got.Key != long {
		t.Fatalf("key kept as %d characters", len([]rune(got.Key)))
	}
	wantCode(t, "key one character too long", recordIdem(s, idemRequest("C1", long+"x", "o2", T0), T0), smp.EINVALID)
	wantCode(t, "customer id too long", recordIdem(s, idemRequest(strings.Repeat("c", 65), "k", "o3", T0), T0), smp.EINVALID)
	_, err = s.FindIdempotentRequest(ctx, "C1", long+"x", T0)
	wantCode(t, "the refused key", err, smp.ENOTFOUND)
}

// testIdempotencyConcurrent: transactions creating an order each and
// recording the same key at once: one commits, the others get ECONFLICT
// and their orders are rolled back.
func testIdempotencyConcurrent(t *testing.T, s Store) {
	seed(t, s)
	errs := race(func(i int) error {
		return s.InTx(ctx, func(tx smp.Tx) error {
			id := fmt.Sprintf("o%d", i)
			if err := tx.InsertOrder(ctx, order(id, T0)); err != nil {
				return err
			}
			return tx.RecordIdempotentRequest(ctx, idemRequest("C1", "key-1", id, T0), T0.Add(-time.Hour))
		})
	})
	winner := -1
	for i, err := range errs {
		switch smp.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Fatalf("racers %d and %d both recorded the key", winner, i)
			}
			winner = i
		case smp.ECONFLICT:
		default:
			t.Fatalf("racer %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer recorded the key")
	}
	got, err := s.FindIdempotentRequest(ctx, "C1", "key-1", T0.Add(-time.Hour))
	must(t, err)
	if got.OrderID != fmt.Sprintf("o%d", winner) {
		t.Fatalf("recorded order %s, the winner was racer %d", got.OrderID, winner)
	}
	for i := range racers {
		_, err := s.FindOrderByID(ctx, fmt.Sprintf("o%d", i))
		if i == winner {
			must(t, err)
		} else {
			wantCode(t, fmt.Sprintf("order of losing racer %d", i), err, smp.ENOTFOUND)
		}
	}
}
