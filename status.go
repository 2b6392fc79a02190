package smp

import (
	"context"
	"time"
)

// ComponentState is a status-page state.
type ComponentState string

// The states of a status-page component, from best to worst.
const (
	StateOperational ComponentState = "operational"
	StateDegraded    ComponentState = "degraded"
	StateOutage      ComponentState = "outage"
)

// Rank orders states: operational < degraded < outage (-1 if unknown).
func (s ComponentState) Rank() int {
	switch s {
	case StateOperational:
		return 0
	case StateDegraded:
		return 1
	case StateOutage:
		return 2
	}
	return -1
}

// Component is a part of SMP shown on the public status page.
type Component struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// NameVI is the Vietnamese name.
	NameVI string `json:"name_vi"`
}

// Components of the status page, in display order.
var Components = []Component{
	{ID: "dispatch", Name: "Dispatch", NameVI: "Điều phối thợ"},
	{ID: "payments", Name: "Payments", NameVI: "Thanh toán"},
	{ID: "integrations", Name: "Integrations", NameVI: "Kết nối đối tác"},
	{ID: "orders", Name: "Orders", NameVI: "Đặt dịch vụ"},
	{ID: "accounts", Name: "Accounts & login", NameVI: "Tài khoản & đăng nhập"},
	{ID: "events", Name: "Event pipeline", NameVI: "Xử lý sự kiện"},
}

// FindComponent returns the component with id.
func FindComponent(id string) (Component, bool) {
	for _, c := range Components {
		if c.ID == id {
			return c, true
		}
	}
	return Component{}, false
}

// IncidentComponents says which component a firing alert of each runbook
// incident degrades (an alert's "component" label overrides it). INC-004
// (Redis memory) is left to ops: only sessions actually lost call for the
// "log in again" banner, and the alert cannot tell.
var IncidentComponents = map[string]string{
	"INC-001": "dispatch",     // dispatch engine down
	"INC-002": "payments",     // payment webhooks failing
	"INC-003": "orders",       // replica lag: stale order reads
	"INC-005": "integrations", // circuit breaker open
	"INC-006": "events",       // Kafka brokers down
	"INC-007": "dispatch",     // dispatch consumer lag
}

// ComponentStatus is the state ops set for a component.
type ComponentStatus struct {
	Component string         `json:"component"`
	State     ComponentState `json:"state"`
	Message   string         `json:"message"`
	UpdatedBy string         `json:"updated_by"`
	UpdatedAt time.Time      `json:"updated_at"`
}

// Banner is a customer in-app banner (runbook "Communicate" messages).
type Banner struct {
	ID        string `json:"id"`
	Component string `json:"component"`
	Severity  string `json:"severity"` // warning or critical
	Message   string `json:"message"`  // in the requested language
	// Messages holds every language: vi and en.
	Messages map[string]string `json:"messages"`
}

// StatusStore reads the states ops set on the status page.
type StatusStore interface {
	// FindComponentStatuses lists the states ops set, by component
	// (components never set are absent). No codes.
	FindComponentStatuses(ctx context.Context) ([]ComponentStatus, error)
}

// StatusTx sets a status-page state in the transaction of its audit entry.
type StatusTx interface {
	// SetComponentStatus sets a component's state and returns the previous
	// one (StateOperational, empty otherwise, when never set). No codes.
	SetComponentStatus(ctx context.Context, cs ComponentStatus) (before ComponentStatus, err error)
}
