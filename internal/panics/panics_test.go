package panics_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"smp/internal/panics"
)

func TestRecover(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a, b := panics.New(reg, nil), panics.New(reg, nil) // one counter per registry
	err := a.Recover("http", func() error { panic("boom") })
	if !errors.Is(err, panics.ErrPanic) {
		t.Fatalf("err = %v, want ErrPanic", err)
	}
	b.Go("bus", func() { panic(errors.New("bad")) })
	if err := a.Recover("http", func() error { return nil }); err != nil {
		t.Fatalf("no panic: %v", err)
	}
	if got := testutil.ToFloat64(panicCount(t, reg, "http")); got != 1 {
		t.Fatalf("http panics = %v, want 1", got)
	}
	if got := testutil.ToFloat64(panicCount(t, reg, "bus")); got != 1 {
		t.Fatalf("bus panics = %v, want 1", got)
	}
	var nilCounter *panics.Counter
	if err := nilCounter.Recover("x", func() error { panic(1) }); !errors.Is(err, panics.ErrPanic) {
		t.Fatalf("nil counter: %v", err)
	}
}

func panicCount(t *testing.T, reg *prometheus.Registry, component string) prometheus.Collector {
	t.Helper()
	c := panics.New(reg, nil)
	return panics.Collector(c, component)
}
