// Package consumer makes SMP's event consumers idempotent: each consumer
// group applies each event at most once, deduplicated by event id in the
// processed_events table, so a redelivery, a DLQ replay or a re-published
// outbox is harmless.
package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
)

// Outcomes of one delivered event, as counted in smp_consumer_events_total.
const (
	Applied   = "applied"   // the event took effect
	Duplicate = "duplicate" // already applied by this group: skipped
	Ignored   = "ignored"   // not this group's business
)

// ErrDuplicate is returned by an Apply that found, inside its own
// transaction, that the event was already applied.
var ErrDuplicate = errors.New("event already applied")

// Metrics counts outcomes per group.
type Metrics struct {
	events *prometheus.CounterVec
}

// NewMetrics returns the counters, registered with reg when it is not nil.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smp_consumer_events_total", Help: "Events delivered to a consumer group, by outcome (applied, duplicate, ignored).",
	}, []string{"group", "outcome"})}
	if reg != nil {
		if err := reg.Register(m.events); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Count records one outcome for group.
func (m *Metrics) Count(group, outcome string) {
	if m != nil {
		m.events.WithLabelValues(group, outcome).Inc()
	}
}

// Result of an Apply.
type Result int

const (
	// Skip: the event is not this group's business; nothing is recorded.
	Skip Result = iota
	// Done: the effect happened; Idempotent records the event.
	Done
	// DoneRecorded: the effect happened and the event was recorded in the
	// effect's own transaction (tx.MarkProcessed).
	DoneRecorded
)

// Store is what an idempotent consumer needs of the system of record.
type Store interface {
	smp.Transactor
	smp.ProcessedStore
}

// Apply is a consumer's effect for one event.
type Apply func(ctx context.Context, ev smp.Event) (Result, error)

// Idempotent is the handler for effects outside the database (queues,
// geo index, notifications): an event group already applied is skipped;
// otherwise apply runs and the event is recorded after it succeeds. A
// crash between the two re-applies the effect once, so those effects must
// themselves be idempotent; effects in the database should record the
// event in their own transaction (tx.MarkProcessed) and return
// ErrDuplicate when it was already there.
func Idempotent(store Store, group string, m *Metrics, now func() time.Time, apply Apply) smp.Handler {
	return func(ctx context.Context, msg smp.Message) error {
		ev, err := smp.DecodeEvent(msg)
		if err != nil {
			return err
		}
		done, err := store.IsProcessed(ctx, group, ev.ID)
		if err != nil {
			return err
		}
		if done {
			m.Count(group, Duplicate)
			return nil
		}
		res, err := apply(ctx, ev)
		if errors.Is(err, ErrDuplicate) {
			m.Count(group, Duplicate)
			return nil
		}
		if err != nil {
			return err
		}
		switch res {
		case Skip:
			m.Count(group, Ignored)
			return nil
		case DoneRecorded:
			m.Count(group, Applied)
			return nil
		}
		var first bool
		if err := store.InTx(ctx, func(tx smp.Tx) error {
			var err error
			first, err = tx.MarkProcessed(ctx, group, ev.ID, now())
			return err
		}); err != nil {
			return err
		}
		if first {
			m.Count(group, Applied)
		} else {
			m.Count(group, Duplicate)
		}
		return nil
	}
}

// Counter returns the counter of group's outcome (tests and checks read it).
func (m *Metrics) Counter(group, outcome string) prometheus.Counter {
	return m.events.WithLabelValues(group, outcome)
}
