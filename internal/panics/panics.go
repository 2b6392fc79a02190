// Package panics recovers panics at SMP's edges (HTTP handlers, WebSocket
// loops, bus handlers, background loops), logs each once with its stack and
// counts it in smp_panics_total{component}.
package panics

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricName is the counter of recovered panics, labelled by component.
const MetricName = "smp_panics_total"

// Counter counts recovered panics. The zero value and nil are usable: they
// log but count nothing.
type Counter struct {
	vec *prometheus.CounterVec
	log *slog.Logger
}

// New returns the registry's panic counter, registering it on first use;
// components given the same Registerer share one counter. reg and log may
// be nil.
func New(reg prometheus.Registerer, log *slog.Logger) *Counter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricName,
		Help: "Panics recovered at SMP's edges (HTTP, WebSocket, bus handlers, loops), by component."}, []string{"component"})
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err) // a name clash is a programming error
			}
			vec = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return &Counter{vec: vec, log: log}
}

// ErrPanic is wrapped by the error Recover reports for a panic.
var ErrPanic = errors.New("panic")

// Record logs a recovered value once, with the stack, counts it and returns
// it as an error wrapping ErrPanic. Call it from a deferred recover.
func (c *Counter) Record(component string, v any) error {
	err := fmt.Errorf("%w in %s: %v", ErrPanic, component, v)
	if c == nil {
		slog.Default().Error("panic recovered", "component", component, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		return err
	}
	c.vec.WithLabelValues(component).Inc()
	c.log.Error("panic recovered", "component", component, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return err
}

// Recover runs fn and turns a panic in it into an error (see Record).
func (c *Counter) Recover(component string, fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = c.Record(component, v)
		}
	}()
	return fn()
}

// Go runs fn in the calling goroutine with panics recovered and recorded;
// use it as the body of a tracked goroutine: go func() { defer wg.Done(); c.Go("x", loop) }().
func (c *Counter) Go(component string, fn func()) {
	defer func() {
		if v := recover(); v != nil {
			_ = c.Record(component, v)
		}
	}()
	fn()
}

// Collector returns the counter of one component, for tests.
func Collector(c *Counter, component string) prometheus.Collector {
	return c.vec.WithLabelValues(component)
}
