package smp

import (
	"context"
	"time"
)

// Store is SMP's system of record (SQLite embedded, MySQL in production).
// Every change of an order or of money goes through InTx together with its
// outbox event and, for manual actions, its audit entry.
type Store interface {
	// InTx runs fn in one transaction, committing if it returns nil.
	InTx(ctx context.Context, fn func(Tx) error) error

	FindOrderByID(ctx context.Context, id string) (*Order, error) // ENOTFOUND
	FindOrders(ctx context.Context, f OrderFilter) ([]*Order, error)
	FindTransitions(ctx context.Context, orderID string) ([]Transition, error)
	CountOrdersByStage(ctx context.Context) (map[Stage]int64, error)
	// CountInStageSince counts orders in stage whose stage began before t.
	CountInStageSince(ctx context.Context, stage Stage, before time.Time) (int64, error)
	// FindDispatchable returns 02_dispatching orders whose hold has passed.
	FindDispatchable(ctx context.Context, now time.Time, limit int) ([]*Order, error)

	FindCities(ctx context.Context) ([]*City, error)
	FindServices(ctx context.Context) ([]*Service, error)
	FindTechnicianByID(ctx context.Context, id string) (*Technician, error) // ENOTFOUND
	FindTechnicians(ctx context.Context, city string) ([]*Technician, error)
	// FindTokenOwner resolves a bearer token's hash: kind is "customer",
	// "technician" or "admin"; for admin tokens role is set.
	FindTokenOwner(ctx context.Context, tokenHash string) (kind, ownerID string, role Role, err error) // EUNAUTHORIZED

	FindFlags(ctx context.Context) (map[string]bool, error)
	FindAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)

	AddDispatchWave(ctx context.Context, w DispatchWave) error
	AddOffers(ctx context.Context, offers []OfferRecord) error
	// UpdateOffer records an offer's new state and when it happened.
	UpdateOffer(ctx context.Context, invitationID string, state InvitationState, at time.Time) error
	FindDispatchTrace(ctx context.Context, orderID string) (*DispatchTrace, error)
	// DeclinedBy lists technicians who declined the order.
	DeclinedBy(ctx context.Context, orderID string) ([]string, error)

	// IsProcessed reports whether consumer already handled eventID.
	IsProcessed(ctx context.Context, consumer, eventID string) (bool, error)

	// The provider event inbox (event_log).
	InsertInboxEvent(ctx context.Context, e *InboxEvent) (existing *InboxEvent, inserted bool, err error)
	FindInboxEvent(ctx context.Context, eventID string) (*InboxEvent, error) // ENOTFOUND
	FindInboxEvents(ctx context.Context, f InboxFilter) ([]*InboxEvent, error)
	DueInboxEvents(ctx context.Context, now time.Time, limit int) ([]*InboxEvent, error)
	CountInboxEvents(ctx context.Context) (map[InboxStatus]int64, error)
	// CountPaymentOverdue counts completed orders not paid, finished before before.
	CountPaymentOverdue(ctx context.Context, before time.Time) (int64, error)

	// Alerts received from Alertmanager.
	UpsertAlert(ctx context.Context, a *Alert) error
	FindAlerts(ctx context.Context, status string, limit int) ([]*Alert, error)

	// FindComponentStatuses lists the states ops set on the status page.
	FindComponentStatuses(ctx context.Context) ([]ComponentStatus, error)

	// Outbox access for the relay.
	FetchOutbox(ctx context.Context, limit int) ([]OutboxRecord, error)
	MarkOutboxPublished(ctx context.Context, ids []int64, at time.Time) error
	OutboxBacklog(ctx context.Context) (count int64, oldest time.Time, err error)

	// Seeding and setup.
	UpsertCity(ctx context.Context, c *City) error
	UpsertService(ctx context.Context, s *Service) error
	UpsertPartner(ctx context.Context, p *Partner) error
	UpsertTechnician(ctx context.Context, t *Technician) error
	UpsertCustomer(ctx context.Context, c *Customer) error
	// PutToken stores a token hash for an owner (kind as in FindTokenOwner).
	PutToken(ctx context.Context, tokenHash, kind, ownerID string, role Role) error

	Ping(ctx context.Context) error
	Close() error
}

// Tx is the set of writes that must commit together.
type Tx interface {
	// OrderForUpdate reads an order and locks it for the rest of the tx.
	OrderForUpdate(ctx context.Context, id string) (*Order, error) // ENOTFOUND
	InsertOrder(ctx context.Context, o *Order) error
	// UpdateOrder writes stage, payment status, technician and timestamps.
	UpdateOrder(ctx context.Context, o *Order) error
	AddTransition(ctx context.Context, t Transition) error
	// AddEvent appends the event to the transactional outbox.
	AddEvent(ctx context.Context, e Event) error
	AddAudit(ctx context.Context, a AuditEntry) error
	// ClaimTechnician marks the technician as holding orderID; ECONFLICT if
	// they already hold an order, ENOTFOUND if unknown.
	ClaimTechnician(ctx context.Context, technicianID, orderID string) error
	// ReleaseTechnician clears the technician's active order if it is orderID.
	ReleaseTechnician(ctx context.Context, technicianID, orderID string) error
	// SetComponentStatus sets a status-page component's state and returns
	// the previous one (operational when never set).
	SetComponentStatus(ctx context.Context, cs ComponentStatus) (before ComponentStatus, err error)
	// SetFlag sets a flag and returns its previous value.
	SetFlag(ctx context.Context, name string, value bool, actor string, at time.Time) (before bool, err error)
	// InboxEventForUpdate reads and locks a provider event.
	InboxEventForUpdate(ctx context.Context, eventID string) (*InboxEvent, error) // ENOTFOUND
	UpdateInboxEvent(ctx context.Context, e *InboxEvent) error
	// MarkProcessed records that consumer handled eventID; first is false
	// if it had already been recorded (the event is a duplicate).
	MarkProcessed(ctx context.Context, consumer, eventID string, at time.Time) (first bool, err error)
}

// OutboxRecord is an event waiting in the outbox.
type OutboxRecord struct {
	ID        int64
	Event     Event
	CreatedAt time.Time
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
