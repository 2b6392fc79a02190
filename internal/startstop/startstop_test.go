package startstop_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"smp/internal/startstop"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counting is a service whose loop counts its runs and, when hold is set,
// ignores cancellation until hold is closed.
func counting(runs *atomic.Int32, hold chan struct{}) *startstop.Func {
	return startstop.NewFunc(func(ctx context.Context) {
		runs.Add(1)
		<-ctx.Done()
		if hold != nil {
			<-hold
		}
	})
}

func TestStopWithoutStart(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	s := counting(&runs, nil)
	for range 2 {
		if err := s.Stop(context.Background()); err != nil {
			t.Fatalf("Stop before Start: %v", err)
		}
	}
	if s.Running() {
		t.Fatal("running without a Start")
	}
}

func TestStartTwiceStopTwice(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	s := counting(&runs, nil)
	ctx := context.Background()
	for range 2 {
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	<-s.Started()
	// Concurrent and repeated stops all return once the loop is joined.
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := s.Stop(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	<-s.Stopped()
	if n := runs.Load(); n != 1 {
		t.Fatalf("loop ran %d times, want 1 (the second Start is a no-op)", n)
	}
	if s.Running() {
		t.Fatal("still running after Stop")
	}
}

func TestStopBoundedByContext(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	hold := make(chan struct{})
	s := counting(&runs, hold)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with a loop that will not end = %v, want context.Canceled", err)
	}
	select {
	case <-s.Stopped():
		t.Fatal("stopped while the loop still runs")
	default:
	}
	close(hold)
	if err := s.Stop(context.Background()); err != nil {
		t.Fatalf("Stop once the loop can end: %v", err)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	s := counting(&runs, nil)
	ctx := context.Background()
	for range 2 {
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
		<-s.Started()
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("runs = %d, want 2", n)
	}
}

func TestCancelledStartContextStopsTheWork(t *testing.T) {
	t.Parallel()
	var runs atomic.Int32
	done := make(chan struct{})
	s := startstop.NewFunc(func(ctx context.Context) {
		runs.Add(1)
		<-ctx.Done()
		close(done)
	})
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// failing shows the failed-start path: Abort joins what the start launched.
type failing struct{ startstop.Base }

func (f *failing) Start(ctx context.Context) error {
	ctx, ok := f.StartInit(ctx)
	if !ok {
		return nil
	}
	f.Go(func() { <-ctx.Done() })
	f.Abort()
	return errors.New("bind: address in use")
}

func TestFailedStartLeavesNothingRunning(t *testing.T) {
	t.Parallel()
	f := &failing{}
	if err := f.Start(context.Background()); err == nil {
		t.Fatal("want the start's error")
	}
	if f.Running() {
		t.Fatal("running after a failed start")
	}
	select {
	case <-f.Started():
		t.Fatal("Started closed after a failed start")
	default:
	}
	if err := f.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// goleak in TestMain checks that the goroutine was joined.
}
