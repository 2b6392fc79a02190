// Package status computes the public status page and the customers'
// in-app banners: each component's state is the worse of what ops set
// and, when enabled, what the firing alerts say.
package status

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"smp"
)

// Config of the service.
type Config struct {
	// FromAlerts lets firing alerts (received from Alertmanager) degrade
	// the components of their incident.
	FromAlerts bool
	// CacheFor keeps a computed page this long: /status and /v1/banners
	// are public and every app asks. Changes made through this process
	// (Set, Invalidate) show at once; others within CacheFor. 0: no cache.
	CacheFor time.Duration
	Now      func() time.Time
	// Rules are the alert rules (deploy.AlertRules): the only alerts
	// RecordAlerts accepts.
	Rules []smp.AlertRule
}

// Store is what the status page needs of the system of record: the states
// ops set and the alerts received (each written with its audit entry).
type Store interface {
	smp.Transactor
	smp.StatusStore
	smp.AlertStore
}

// Service reads and sets component states.
type Service struct {
	cfg   Config
	store Store
	rules map[string]rule

	mu     sync.Mutex
	cached *Page
	// gen counts invalidations: a page computed while gen moved on may
	// predate the change, and is returned but never cached.
	gen uint64
}

// New returns the service.
func New(cfg Config, store Store) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, store: store, rules: compileRules(cfg.Rules)}
}

// View is a component as the status page shows it.
type View struct {
	smp.Component
	State   smp.ComponentState `json:"state"`
	Message string             `json:"message,omitempty"`
	// Source says who set the state: "ops" or "alert:<name>" (empty when operational).
	Source    string    `json:"source,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Set is what ops set, kept apart from the effective state.
	Set *smp.ComponentStatus `json:"set,omitempty"`
	// Alerts firing against this component.
	Alerts []string `json:"alerts,omitempty"`
}

// Page is the whole status page.
type Page struct {
	// Overall is the worst component state.
	Overall    smp.ComponentState `json:"status"`
	Components []View             `json:"components"`
	At         time.Time          `json:"generated_at"`
}

// Invalidate drops the cached page (an alert arrived, a state was set).
func (s *Service) Invalidate() {
	s.mu.Lock()
	s.cached = nil
	s.gen++
	s.mu.Unlock()
}

// Page returns every component's effective state, computed at most once
// per CacheFor. A computation that an Invalidate overtook (it may have
// read the store before the change) is not cached: the next call computes
// again, so a change made through this process shows at once.
func (s *Service) Page(ctx context.Context) (Page, error) {
	now := s.cfg.Now()
	s.mu.Lock()
	if c := s.cached; c != nil && now.Sub(c.At) < s.cfg.CacheFor {
		s.mu.Unlock()
		return clonePage(*c), nil
	}
	gen := s.gen
	s.mu.Unlock()
	p, err := s.compute(ctx)
	if err != nil {
		return Page{}, err
	}
	if s.cfg.CacheFor > 0 {
		s.mu.Lock()
		if s.gen == gen {
			s.cached = &p
		}
		s.mu.Unlock()
	}
	return clonePage(p), nil
}

// clonePage copies the slices a caller might change.
func clonePage(p Page) Page {
	p.Components = slices.Clone(p.Components)
	return p
}

func (s *Service) compute(ctx context.Context) (Page, error) {
	set, err := s.store.FindComponentStatuses(ctx)
	if err != nil {
		return Page{}, err
	}
	byID := map[string]smp.ComponentStatus{}
	for _, cs := range set {
		byID[cs.Component] = cs
	}
	firing := map[string][]*smp.Alert{}
	if s.cfg.FromAlerts {
		as, err := s.store.FindAlerts(ctx, "firing", 1000)
		if err != nil {
			return Page{}, err
		}
		for _, a := range as {
			c := a.Labels["component"]
			if c == "" {
				c = smp.IncidentComponents[a.Labels["incident"]]
			}
			if c != "" {
				firing[c] = append(firing[c], a)
			}
		}
	}
	p := Page{Overall: smp.StateOperational, At: s.cfg.Now().UTC()}
	for _, c := range smp.Components {
		v := View{Component: c, State: smp.StateOperational}
		if cs, ok := byID[c.ID]; ok {
			cs := cs
			v.Set = &cs
			if cs.State != smp.StateOperational {
				v.State, v.Message, v.Source, v.UpdatedAt = cs.State, cs.Message, "ops", cs.UpdatedAt
			} else if cs.Message != "" {
				v.Message, v.UpdatedAt = cs.Message, cs.UpdatedAt
			}
		}
		for _, a := range firing[c.ID] {
			v.Alerts = append(v.Alerts, a.Name)
			st := smp.StateDegraded
			if a.Labels["status_state"] == string(smp.StateOutage) {
				st = smp.StateOutage
			}
			if st.Rank() > v.State.Rank() {
				v.State, v.Source, v.UpdatedAt = st, "alert:"+a.Name, a.StartsAt
				v.Message = a.Annotations["summary"]
			}
		}
		if v.State.Rank() > p.Overall.Rank() {
			p.Overall = v.State
		}
		p.Components = append(p.Components, v)
	}
	return p, nil
}

// Set records ops' state for a component, with its audit entry, in one
// transaction. EINVALID for an unknown component or state or a missing reason.
func (s *Service) Set(ctx context.Context, p smp.Principal, component string, state smp.ComponentState, message, reason string) (smp.ComponentStatus, error) {
	if _, ok := smp.FindComponent(component); !ok {
		var ids []string
		for _, c := range smp.Components {
			ids = append(ids, c.ID)
		}
		return smp.ComponentStatus{}, smp.Errorf(smp.EINVALID, "unknown component %q: use one of %s", component, strings.Join(ids, ", "))
	}
	if state.Rank() < 0 {
		return smp.ComponentStatus{}, smp.Errorf(smp.EINVALID, "state must be operational, degraded or outage")
	}
	message, reason = strings.TrimSpace(message), strings.TrimSpace(reason)
	if len(reason) < 3 {
		return smp.ComponentStatus{}, smp.Errorf(smp.EINVALID, "reason is required")
	}
	if len(message) > 500 {
		return smp.ComponentStatus{}, smp.Errorf(smp.EINVALID, "message is longer than 500 characters")
	}
	now := s.cfg.Now().UTC()
	cs := smp.ComponentStatus{Component: component, State: state, Message: message, UpdatedBy: p.Name, UpdatedAt: now}
	err := s.store.InTx(ctx, func(tx smp.Tx) error {
		before, err := tx.SetComponentStatus(ctx, cs)
		if err != nil {
			return err
		}
		return tx.AddAudit(ctx, smp.AuditEntry{At: now, Actor: p.Name, Role: p.Role, Action: "status.set", Target: "component:" + component,
			Before: fmt.Sprintf(`{"state":%q}`, before.State), After: fmt.Sprintf(`{"state":%q}`, state), Reason: reason})
	})
	if err != nil {
		return smp.ComponentStatus{}, err
	}
	s.Invalidate()
	return cs, nil
}

// bannerTexts are the runbook's customer messages, per component.
var bannerTexts = map[string]map[string]string{
	"dispatch": {"vi": "Đang xử lý chậm, mời thông cảm", "en": "Things are running slowly, thank you for your patience"},
	"payments": {"vi": "Thanh toán đang xác nhận, mời đợi 5 phút", "en": "Your payment is being confirmed, please wait 5 minutes"},
	"accounts": {"vi": "Vui lòng đăng nhập lại", "en": "Please log in again"},
}

// Banners returns the in-app banners for a page, in lang (vi or en).
func Banners(p Page, lang string) []smp.Banner {
	if lang != "en" {
		lang = "vi"
	}
	out := []smp.Banner{}
	for _, v := range p.Components {
		texts, ok := bannerTexts[v.ID]
		if !ok || v.State == smp.StateOperational {
			continue
		}
		sev := "warning"
		if v.State == smp.StateOutage {
			sev = "critical"
		}
		out = append(out, smp.Banner{ID: v.ID + "-" + string(v.State), Component: v.ID, Severity: sev, Message: texts[lang],
			Messages: map[string]string{"vi": texts["vi"], "en": texts["en"]}})
	}
	return out
}
