package dispatch_test

import (
	"context"
	"testing"
)

// TestEngineLifecycle: the engine has the one lifecycle: Stop before Start
// and twice is fine, Start twice starts once, Started signals readiness,
// Healthy follows; goleak (TestMain) checks that Stop joined the workers,
// the sweeper and the rounds.
func TestEngineLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, options{noStart: true})
	ctx := context.Background()
	must(t, h.engine.Stop(ctx))
	if h.engine.Healthy() == nil {
		t.Fatal("healthy before Start")
	}
	must(t, h.engine.Start(ctx))
	must(t, h.engine.Start(ctx))
	<-h.engine.Started()
	if err := h.engine.Healthy(); err != nil {
		t.Fatalf("after Start: %v", err)
	}
	must(t, h.engine.Stop(ctx))
	must(t, h.engine.Stop(ctx))
	if h.engine.Healthy() == nil {
		t.Fatal("healthy after Stop")
	}
}
