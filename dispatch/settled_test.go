package dispatch

import (
	"fmt"
	"testing"
	"time"
)

// TestSettledSetBounded: the set never holds more than its capacity, even
// when every entry is young (it used to grow without bound, scanning the
// whole map on every add past 4,096), and the oldest entries leave first.
func TestSettledSetBounded(t *testing.T) {
	t.Parallel()
	const capacity = 8
	s := newSettledSet(capacity)
	now := time.Unix(1_700_000_000, 0)
	for i := range 3 * capacity {
		s.add(fmt.Sprintf("o%d", i), "T", now)
		if len(s.m) > capacity || s.n > capacity {
			t.Fatalf("after %d adds: %d entries, %d in the ring; want at most %d", i+1, len(s.m), s.n, capacity)
		}
	}
	if s.take("o0", "T") {
		t.Fatal("the oldest entry is still there after the set overflowed")
	}
	if !s.take(fmt.Sprintf("o%d", 3*capacity-1), "T") {
		t.Fatal("the newest entry is gone")
	}
	if s.take(fmt.Sprintf("o%d", 3*capacity-1), "T") {
		t.Fatal("an entry was taken twice")
	}
}

// TestSettledSetExpires: entries older than settledFor leave at the next
// add; a taken and re-added order is not dropped by its older slot; a
// different technician is no match.
func TestSettledSetExpires(t *testing.T) {
	t.Parallel()
	s := newSettledSet(8)
	now := time.Unix(1_700_000_000, 0)
	s.add("old", "T1", now)
	s.add("again", "T1", now)
	if !s.take("again", "T1") {
		t.Fatal("again: not settled")
	}
	s.add("again", "T2", now.Add(time.Minute))
	s.add("new", "T1", now.Add(settledFor+time.Second))
	if _, ok := s.m["old"]; ok {
		t.Fatal("an entry older than settledFor survived an add")
	}
	if s.take("again", "T1") {
		t.Fatal("again: matched the wrong technician")
	}
	s.add("again", "T2", now.Add(settledFor+2*time.Second))
	for range 6 {
		s.add("filler", "T9", now.Add(settledFor+3*time.Second))
	}
	if !s.take("again", "T2") {
		t.Fatal("a re-added entry was dropped with its older slot")
	}
	if !s.take("new", "T1") {
		t.Fatal("new: not settled")
	}
}
