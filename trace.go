package smp

import (
	"context"
	"time"
)

// DispatchTraceStore is the durable trace of what the dispatch engine did
// for each order: its waves and the offers it sent. The trace is written
// outside order transactions (it describes, it does not decide).
type DispatchTraceStore interface {
	// AddDispatchWave records a wave, replacing one with the same order,
	// round and wave. No codes.
	AddDispatchWave(ctx context.Context, w DispatchWave) error
	// AddOffers records sent invitations (none is a no-op). No codes.
	AddOffers(ctx context.Context, offers []OfferRecord) error
	// UpdateOffer records an offer's new state and when it happened:
	// delivered sets DeliveredAt (only over sent); withdrawn and expired
	// never replace a technician's answer; a final state sets RespondedAt.
	// It may be written after it returns, but before any later
	// FindDispatchTrace, DeclinedBy or UpdateOffer of an answer sees the
	// trace. Unknown invitations are ignored. No codes.
	UpdateOffer(ctx context.Context, invitationID string, state InvitationState, at time.Time) error
	// FindDispatchTrace returns the order's waves by round and wave and its
	// offers by round, wave and rank (empty, not ENOTFOUND, for an order
	// never dispatched). No codes.
	FindDispatchTrace(ctx context.Context, orderID string) (*DispatchTrace, error)
	// DeclinedBy lists technicians who declined the order (once each).
	// No codes.
	DeclinedBy(ctx context.Context, orderID string) ([]string, error)
}

// DispatchWave is one wave of offers for an order.
type DispatchWave struct {
	OrderID    string    `json:"order_id"`
	Round      int       `json:"round"`
	Wave       int       `json:"wave"`
	RadiusM    float64   `json:"radius_m"`
	StartedAt  time.Time `json:"started_at"`
	Candidates int       `json:"candidates"`
	Note       string    `json:"note,omitempty"`
}

// OfferRecord is the durable trace of one invitation.
type OfferRecord struct {
	InvitationID string          `json:"invitation_id"`
	OrderID      string          `json:"order_id"`
	TechnicianID string          `json:"technician_id"`
	Round        int             `json:"round"`
	Wave         int             `json:"wave"`
	Rank         int             `json:"rank"`
	DistanceM    float64         `json:"distance_m"`
	RankReason   string          `json:"rank_reason"`
	State        InvitationState `json:"state"`
	SentAt       time.Time       `json:"sent_at"`
	ExpiresAt    time.Time       `json:"expires_at"`
	DeliveredAt  *time.Time      `json:"delivered_at,omitempty"`
	RespondedAt  *time.Time      `json:"responded_at,omitempty"`
}

// DispatchTrace is everything the engine did for one order.
type DispatchTrace struct {
	OrderID string         `json:"order_id"`
	Waves   []DispatchWave `json:"waves"`
	Offers  []OfferRecord  `json:"offers"`
}
