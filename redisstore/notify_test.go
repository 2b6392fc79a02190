package redisstore_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"smp"
	"smp/redisstore"
)

// localHub stands for one process's WebSocket hub: it holds the
// technicians connected to it and records what reached them.
type localHub struct {
	mu   sync.Mutex
	here map[string]bool
	got  chan smp.TechnicianMessage
}

func (h *localHub) Notify(techID string, m smp.TechnicianMessage) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.here[techID] {
		return false
	}
	h.got <- m
	return true
}

func (h *localHub) Connections() int { return len(h.here) }

// TestBroadcasterCrossesProcesses: an offer for a technician connected to
// the other process goes through Redis; Stop joins the delivery loop
// (goleak in TestMain; the loop was an untracked goroutine) and is safe
// twice and before Start.
func TestBroadcasterCrossesProcesses(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := context.Background()
	a := redisstore.NewBroadcaster(s, &localHub{}, nil)
	hubB := &localHub{here: map[string]bool{"tech-1": true}, got: make(chan smp.TechnicianMessage, 1)}
	b := redisstore.NewBroadcaster(s, hubB, nil)
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	for _, x := range []*redisstore.Broadcaster{a, b} {
		if err := x.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := x.Start(ctx); err != nil { // idempotent
			t.Fatal(err)
		}
	}
	if a.Notify("tech-1", smp.TechnicianMessage{Type: "offer", OrderID: "o1"}) {
		t.Fatal("tech-1 is not connected to a")
	}
	select {
	case m := <-hubB.got:
		if m.OrderID != "o1" {
			t.Fatalf("delivered %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the offer did not cross to b")
	}
	for _, x := range []*redisstore.Broadcaster{a, b} {
		for range 2 {
			if err := x.Stop(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}
