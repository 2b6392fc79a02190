package inmem_test

import (
	"context"
	"testing"
	"time"

	"smp/inmem"
)

func TestQueueFIFODedupeAndWait(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	q := inmem.NewQueue()
	for _, id := range []string{"a", "b", "a", "c"} {
		q.Push(ctx, "HCMC", id)
	}
	if n, _ := q.Len(ctx, "HCMC"); n != 3 {
		t.Fatalf("len = %d, want 3 (a queued once)", n)
	}
	for _, want := range []string{"a", "b", "c"} {
		if got, ok, _ := q.Pop(ctx, "HCMC", time.Second); !ok || got != want {
			t.Fatalf("pop = %q %v, want %q", got, ok, want)
		}
	}
	if _, ok, _ := q.Pop(ctx, "HCMC", 10*time.Millisecond); ok {
		t.Fatal("pop from an empty queue")
	}
	got := make(chan string)
	go func() { id, _, _ := q.Pop(ctx, "HN", 10*time.Second); got <- id }()
	q.Push(ctx, "HN", "z")
	if id := <-got; id != "z" {
		t.Fatalf("waiting pop got %q", id)
	}
}
