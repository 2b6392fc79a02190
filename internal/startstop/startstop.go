// Package startstop gives every long-running part of SMP one lifecycle, in
// the manner of River's BaseStartStop: Start(ctx) error starts it (and
// fails fast when it cannot), Stop(ctx) error stops it and joins every
// goroutine it started, bounded by ctx. Both are idempotent: Start on a
// running service and Stop on a stopped (or never started) one do nothing.
package startstop

import (
	"context"
	"fmt"
	"sync"
)

// Service is the shape of every long-running part.
type Service interface {
	// Start starts the service's goroutines and returns once it runs (or
	// failed to start: then nothing is left running). Cancelling ctx stops
	// the work as Stop does, but only Stop joins it.
	Start(ctx context.Context) error
	// Stop cancels the service's work and waits for its goroutines until
	// ctx ends (then it returns ctx's error; a later Stop waits again).
	Stop(ctx context.Context) error
}

// Base implements the lifecycle's bookkeeping; a service embeds it (or
// holds one) and calls StartInit at the top of its Start. The zero value
// is ready to use.
type Base struct {
	mu      sync.Mutex
	cancel  context.CancelFunc // nil while not running
	wg      sync.WaitGroup
	started chan struct{} // closed by Started once a start succeeded
	stopped chan struct{} // closed once a stop has joined every goroutine
	joining bool
}

func (b *Base) init() {
	if b.started == nil {
		b.started = make(chan struct{})
	}
	if b.stopped == nil {
		b.stopped = make(chan struct{})
	}
}

// StartInit begins a start. ok is false when the service already runs:
// Start then returns nil. Otherwise the returned context is the run's,
// cancelled by Stop (or by ctx), and the caller must end with
// MarkStarted or, when its start fails, with Abort.
func (b *Base) StartInit(ctx context.Context) (run context.Context, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cancel != nil {
		return ctx, false
	}
	b.init()
	select {
	case <-b.stopped: // a previous run: start afresh
		b.started, b.stopped = make(chan struct{}), make(chan struct{})
	default:
	}
	run, b.cancel = context.WithCancel(ctx)
	return run, true
}

// MarkStarted signals that the start succeeded (Started is closed).
func (b *Base) MarkStarted() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	select {
	case <-b.started:
	default:
		close(b.started)
	}
}

// Abort undoes a failed start: it cancels and joins what the start
// launched, leaving the service stopped.
func (b *Base) Abort() { _ = b.Stop(context.Background()) }

// Go runs fn in a goroutine that Stop joins. Call it between StartInit and
// MarkStarted, or from a goroutine started with Go.
func (b *Base) Go(fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn()
	}()
}

// Started is closed once the service has started.
func (b *Base) Started() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	return b.started
}

// Stopped is closed once a Stop has joined every goroutine.
func (b *Base) Stopped() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.init()
	return b.stopped
}

// Running reports whether the service was started and not yet stopped.
func (b *Base) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cancel != nil
}

// Stop cancels the run and waits for its goroutines until ctx ends. It is
// safe before Start, twice, and concurrently.
func (b *Base) Stop(ctx context.Context) error {
	b.mu.Lock()
	if b.cancel == nil {
		b.mu.Unlock()
		return nil
	}
	b.init()
	stopped := b.stopped
	if !b.joining {
		b.joining = true
		b.cancel()
		// The joiner ends when the last goroutine does; it is what lets
		// Stop give up at ctx's deadline without losing the join.
		go func() {
			b.wg.Wait()
			b.mu.Lock()
			b.cancel, b.joining = nil, false
			close(stopped)
			b.mu.Unlock()
		}()
	}
	b.mu.Unlock()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop: goroutines still running: %w", ctx.Err())
	}
}

// Func is a Service made of one loop: run is called in a goroutine by
// Start and must return when its context ends.
type Func struct {
	Base
	run func(ctx context.Context)
}

// NewFunc returns a Service that runs run until stopped.
func NewFunc(run func(ctx context.Context)) *Func { return &Func{run: run} }

// Start runs the loop.
func (f *Func) Start(ctx context.Context) error {
	ctx, ok := f.StartInit(ctx)
	if !ok {
		return nil
	}
	f.Go(func() { f.run(ctx) })
	f.MarkStarted()
	return nil
}

var _ Service = (*Func)(nil)
