// Package fraudtest is the conformance suite of smp.FraudWindows, run by
// inmem and redisstore.
package fraudtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"smp"
)

// T0 is the suite's clock.
var T0 = time.Date(2026, 5, 28, 3, 0, 0, 0, time.UTC)

// RunWindows holds an implementation to smp.FraudWindows's contract.
// open returns fresh windows (a fresh key prefix on a shared server);
// calling it twice with the same t must give two handles on the same
// windows where the backend is shared (second is nil otherwise).
func RunWindows(t *testing.T, open func(t *testing.T) (first, second smp.FraudWindows)) {
	ctx := context.Background()
	rec := func(t *testing.T, w smp.FraudWindows, ev, partner, ip string, vnd int64, at time.Time) *smp.FraudWindowView {
		t.Helper()
		v, err := w.RecordTopup(ctx, smp.FraudTopupObs{EventID: ev, TxnID: "W" + ev, PartnerID: partner, IP: ip, AmountVND: vnd, At: at}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	t.Run("History", func(t *testing.T) {
		w, _ := open(t)
		v := rec(t, w, "e1", "P1", "203.0.113.7", 100_000, T0)
		if v.PriorCount != 0 || v.PriorSumVND != 0 || len(v.Partner) != 1 || len(v.IP) != 1 {
			t.Fatalf("first: %+v", v)
		}
		rec(t, w, "e2", "P1", "203.0.113.7", 300_000, T0.Add(time.Minute))
		v = rec(t, w, "e3", "P1", "", 2_000_000, T0.Add(2*time.Minute))
		// e2: 300,000 against an average of 100,000 = 3.000.
		if v.PriorCount != 2 || v.PriorSumVND != 400_000 || v.PriorMaxRatioMilli != 3000 || len(v.Partner) != 3 || len(v.IP) != 0 {
			t.Fatalf("third: %+v", v)
		}
		if got := v.Partner[2]; got.TxnID != "We3" || got.AmountVND != 2_000_000 || !got.At.Equal(T0.Add(2*time.Minute)) || got.PartnerID != "P1" {
			t.Fatalf("window entry %+v", got)
		}
		v = rec(t, w, "e4", "P1", "", 100_000, T0.Add(3*time.Minute))
		// e3: 2,000,000 × 2 / 400,000 = 10.000.
		if v.PriorMaxRatioMilli != 10_000 || v.PriorCount != 3 {
			t.Fatalf("fourth: %+v", v)
		}
	})
	t.Run("OncePerEvent", func(t *testing.T) {
		w, _ := open(t)
		first := rec(t, w, "e1", "P1", "203.0.113.7", 100_000, T0)
		rec(t, w, "e2", "P1", "203.0.113.7", 100_000, T0.Add(time.Second))
		again := rec(t, w, "e1", "P1", "203.0.113.7", 100_000, T0)
		if fmt.Sprint(first) != fmt.Sprint(again) {
			t.Fatalf("redelivered event saw %+v, first time %+v", again, first)
		}
		v := rec(t, w, "e3", "P1", "203.0.113.7", 100_000, T0.Add(2*time.Second))
		if v.PriorCount != 2 || len(v.Partner) != 3 || len(v.IP) != 3 {
			t.Fatalf("e1 counted twice? %+v", v)
		}
	})
	t.Run("Keep", func(t *testing.T) {
		w, _ := open(t)
		rec(t, w, "e1", "P1", "203.0.113.7", 100_000, T0)
		rec(t, w, "e2", "P2", "203.0.113.7", 100_000, T0.Add(30*time.Minute))
		v := rec(t, w, "e3", "P1", "203.0.113.7", 100_000, T0.Add(61*time.Minute))
		if len(v.Partner) != 1 || len(v.IP) != 2 || v.PriorCount != 1 {
			t.Fatalf("after an hour the first top-up is out of the windows, still in the history: %+v", v)
		}
	})
	t.Run("Country", func(t *testing.T) {
		w, _ := open(t)
		if c, err := w.PartnerCountry(ctx, "P9"); err != nil || c != "" {
			t.Fatalf("unknown partner: %q %v", c, err)
		}
		if err := w.SetPartnerCountry(ctx, "P9", "VN"); err != nil {
			t.Fatal(err)
		}
		rec(t, w, "e1", "P9", "", 100_000, T0)
		if c, err := w.PartnerCountry(ctx, "P9"); err != nil || c != "VN" {
			t.Fatalf("country %q %v", c, err)
		}
	})
	t.Run("Shared", func(t *testing.T) {
		a, b := open(t)
		if b == nil {
			t.Skip("in-process windows are not shared")
		}
		rec(t, a, "e1", "P1", "203.0.113.7", 100_000, T0)
		v := rec(t, b, "e2", "P2", "203.0.113.7", 100_000, T0.Add(time.Second))
		if len(v.IP) != 2 {
			t.Fatalf("the other process's top-up is not in the IP window: %+v", v)
		}
	})
}
