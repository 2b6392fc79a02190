// Package wait is the tests' one way to wait for a condition: poll with a
// deadline, never sleep blind.
package wait

import (
	"testing"
	"time"
)

// Until polls cond until it holds, failing tb after d.
func Until(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}
