package storetest

import (
	"fmt"
	"sync"
	"testing"

	"smp"
)

var concurrentTests = []Test{
	{"Concurrent/ClaimTechnician/OneWinner", testConcurrentClaim},
	{"Concurrent/MarkProcessed/OneFirst", testConcurrentMarkProcessed},
}

const racers = 8

// race runs fn from racers goroutines at once and returns their errors.
func race(fn func(i int) error) []error {
	errs := make([]error, racers)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range racers {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			errs[i] = fn(i)
		}()
	}
	start.Done()
	done.Wait()
	return errs
}

// testConcurrentClaim: several transactions claim one technician for
// different orders at once; exactly one wins, the others get ECONFLICT
// (no double booking, decided by the store, whatever the process).
func testConcurrentClaim(t *testing.T, s Store) {
	seed(t, s)
	errs := race(func(i int) error {
		return s.InTx(ctx, func(tx smp.Tx) error { return tx.ClaimTechnician(ctx, "T1", fmt.Sprint("o", i)) })
	})
	winner := -1
	for i, err := range errs {
		switch smp.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Fatalf("claims %d and %d both won", winner, i)
			}
			winner = i
		case smp.ECONFLICT:
		default:
			t.Fatalf("claim %d: %v, want nil or ECONFLICT", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no claim won")
	}
	if tech, _ := s.FindTechnicianByID(ctx, "T1"); tech.ActiveOrderID != fmt.Sprint("o", winner) {
		t.Fatalf("T1 holds %q, the winner was o%d", tech.ActiveOrderID, winner)
	}
}

// testConcurrentMarkProcessed: the same event delivered to several members
// of a group at once is first for exactly one.
func testConcurrentMarkProcessed(t *testing.T, s Store) {
	firsts := make([]bool, racers)
	errs := race(func(i int) error {
		return s.InTx(ctx, func(tx smp.Tx) (err error) {
			firsts[i], err = tx.MarkProcessed(ctx, "order-svc", "e1", T0)
			return err
		})
	})
	n := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("mark %d: %v", i, err)
		}
		if firsts[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d marks reported first, want exactly 1", n)
	}
}
