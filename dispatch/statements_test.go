package dispatch_test

import (
	"strings"
	"testing"
	"time"

	"smp"
)

// TestRoundChecksCandidatesInOneRead: a wave's candidates (one of them
// with settings) are checked for suspension and for their settings in one
// statement, and the round reads the order's trace in one (issue 22:
// statements per order to the first offer).
func TestRoundChecksCandidatesInOneRead(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{waveSize: 3, maxWaves: 1, ttl: time.Minute})
	h.addTech("T1", lat0+0.001, lng0)
	h.addTech("T2", lat0+0.002, lng0)
	if _, err := h.engine.SetSettings(t.Context(), smp.TechnicianSettings{TechnicianID: "T2", MaxRadiusKm: 50}, nil, ""); err != nil {
		t.Fatal(err)
	}
	c := h.store.SQLCounters()
	c.EnableCensus(0)
	before := c.Census()
	o := h.createOrder(lat0, lng0)
	h.waitOffered(o.ID, 2)
	after := c.Census()
	count := func(match func(string) bool) (n uint64) {
		for text, v := range after {
			if match(text) {
				n += v - before[text]
			}
		}
		return n
	}
	if n := count(func(q string) bool {
		return strings.HasPrefix(q, "SELECT ") && (strings.Contains(q, " FROM technicians ") || strings.Contains(q, " FROM technician_settings "))
	}); n != 1 {
		t.Errorf("%d reads of the candidates' technicians and settings, want 1: %v", n, after)
	}
	if n := count(func(q string) bool {
		return strings.HasPrefix(q, "SELECT ") && (strings.Contains(q, " FROM dispatch_waves ") || strings.Contains(q, " FROM dispatch_offers "))
	}); n != 1 {
		t.Errorf("%d reads of the order's trace, want 1: %v", n, after)
	}
}
