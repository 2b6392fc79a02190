// Package flags serves feature flags from a cache kept in step with the
// store; changes are audited in the same transaction.
package flags

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/internal/startstop"
)

// Store is what the flag service needs of the system of record: flags
// read, and set in one transaction with their audit entry.
type Store interface {
	smp.Transactor
	smp.FlagStore
}

// Service reads and changes feature flags.
type Service struct {
	// RefreshEvery is how often a started service re-reads the flags
	// (default 5 s; set before Start).
	RefreshEvery time.Duration

	startstop.Base
	store Store
	now   func() time.Time

	mu       sync.RWMutex
	values   map[string]bool
	onChange []func(name string, value bool)
}

var _ smp.FlagReader = (*Service)(nil)

// New loads the flags.
func New(ctx context.Context, store Store, now func() time.Time) (*Service, error) {
	if now == nil {
		now = time.Now
	}
	s := &Service{store: store, now: now}
	return s, s.Refresh(ctx)
}

// Refresh re-reads flags from the store (another process may have changed
// them) and fires change callbacks for values that moved.
func (s *Service) Refresh(ctx context.Context) error {
	vals, err := s.store.FindFlags(ctx)
	if err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	s.mu.Lock()
	old := s.values
	s.values = vals
	cbs := s.onChange
	s.mu.Unlock()
	for name, v := range vals {
		if prev, ok := old[name]; ok && prev != v {
			for _, cb := range cbs {
				cb(name, v)
			}
		}
	}
	return nil
}

// Start refreshes the flags every RefreshEvery until Stop (from
// startstop.Base, bounded by its context); idempotent.
func (s *Service) Start(ctx context.Context) error {
	ctx, ok := s.StartInit(ctx)
	if !ok {
		return nil
	}
	every := s.RefreshEvery
	if every <= 0 {
		every = 5 * time.Second
	}
	s.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.Refresh(ctx)
			}
		}
	})
	s.MarkStarted()
	return nil
}

// OnChange registers fn to run after a flag changes value.
func (s *Service) OnChange(fn func(name string, value bool)) {
	s.mu.Lock()
	s.onChange = append(s.onChange, fn)
	s.mu.Unlock()
}

// Enabled returns a flag's value (false for unknown flags).
func (s *Service) Enabled(name string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.values[name]
}

// Flag is a flag's name and value, and its last change (zero while it is
// at its default).
type Flag struct {
	Name      string    `json:"name"`
	Value     bool      `json:"value"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
}

// All returns every flag, sorted by name.
func (s *Service) All() []Flag {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Flag, 0, len(s.values))
	for k, v := range s.values {
		out = append(out, Flag{Name: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Set changes a flag, auditing who, when, before/after and why.
// ENOTFOUND for unknown flags, EINVALID without a reason.
func (s *Service) Set(ctx context.Context, name string, value bool, p smp.Principal, reason string) (Flag, error) {
	if _, ok := smp.DefaultFlags[name]; !ok {
		return Flag{}, smp.Errorf(smp.ENOTFOUND, "unknown feature flag %q", name)
	}
	if len(reason) < 3 {
		return Flag{}, smp.Errorf(smp.EINVALID, "a reason is required to change a feature flag")
	}
	now := s.now().UTC()
	err := s.store.InTx(ctx, func(tx smp.Tx) error {
		before, err := tx.SetFlag(ctx, name, value, p.Name, now)
		if err != nil {
			return err
		}
		return tx.AddAudit(ctx, smp.AuditEntry{At: now, Actor: p.Name, Role: p.Role, Action: "flag.set", Target: "flag:" + name,
			Before: strconv.FormatBool(before), After: strconv.FormatBool(value), Reason: reason})
	})
	if err != nil {
		return Flag{}, err
	}
	return Flag{Name: name, Value: value, UpdatedAt: now, UpdatedBy: p.Name}, s.Refresh(ctx)
}

var flagDesc = prometheus.NewDesc("smp_feature_flag_enabled",
	"1 while the feature flag is on (ENABLE_AUTO_DISPATCH: runbook INC-001 option D is in force when 0).", []string{"name"}, nil)

type collector struct{ s *Service }

// NewCollector exports every flag's value as smp_feature_flag_enabled{name},
// so smp runbook check knows whether option D is already in force.
func NewCollector(s *Service) prometheus.Collector { return collector{s} }

func (c collector) Describe(ch chan<- *prometheus.Desc) { ch <- flagDesc }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, f := range c.s.All() {
		v := 0.0
		if f.Value {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(flagDesc, prometheus.GaugeValue, v, f.Name)
	}
}
