package bus

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
)

// Metrics counts delivered messages per group and outcome in
// smp_consumer_events_total{group,outcome}.
type Metrics struct {
	events *prometheus.CounterVec
}

// NewMetrics returns the counters, registered with reg when it is not nil;
// routers given the same Registerer share them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smp_consumer_events_total", Help: "Events delivered to a consumer group, by outcome (applied, duplicate, ignored, dead_lettered).",
	}, []string{"group", "outcome"})
	if reg != nil {
		if err := reg.Register(vec); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, err
			}
			vec = existing
		}
	}
	return &Metrics{events: vec}, nil
}

// Count records one outcome for group.
func (m *Metrics) Count(group, outcome string) {
	if m != nil {
		m.events.WithLabelValues(group, outcome).Inc()
	}
}

// Counter returns the counter of group's outcome (tests and checks read it).
func (m *Metrics) Counter(group, outcome string) prometheus.Counter {
	return m.events.WithLabelValues(group, outcome)
}

// Middleware counts each acknowledged message once, by the outcome the
// inner middleware reported (Applied when none was). A failure is not
// counted: the message comes again.
func (m *Metrics) Middleware() Middleware {
	return func(h Handler) Handler {
		return func(ctx context.Context, msg smp.Message) error {
			if err := h(ctx, msg); err != nil {
				return err
			}
			d := deliveryOf(ctx)
			outcome := d.outcome
			if outcome == "" {
				outcome = Applied
			}
			m.Count(d.group, outcome)
			return nil
		}
	}
}
