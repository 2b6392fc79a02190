package smp

import (
	"context"
	"time"
)

// Actor identifies who caused a change, as recorded in transitions and
// audit entries: "customer:c-1", "technician:t-1", "system:dispatch-engine",
// "ops:alice".
type Actor struct {
	Kind string
	ID   string
	Role Role // for admin principals
}

func (a Actor) String() string { return a.Kind + ":" + a.ID }

// SystemActor is a platform component acting on its own.
func SystemActor(component string) Actor { return Actor{Kind: "system", ID: component} }

// OrderService owns the order lifecycle. Every change commits with its
// transition record and outbox event; manual changes also with an audit entry.
type OrderService interface {
	// CreateOrder validates and creates an order in 01_created (EINVALID).
	CreateOrder(ctx context.Context, customerID string, n NewOrder) (*Order, error)
	// CreateOrderOnce is CreateOrder under the customer's Idempotency-Key
	// (kept IdempotencyKeyTTL): the key recorded with the same request
	// returns the order as first created, with replayed set; with another
	// request, or while the first request with it is still being
	// committed, ECONFLICT. EINVALID for a key over MaxIdempotencyKey
	// characters. An empty key is CreateOrder.
	CreateOrderOnce(ctx context.Context, customerID, key string, n NewOrder) (o *Order, replayed bool, err error)
	FindOrderByID(ctx context.Context, id string) (*Order, error)
	// StartDispatch moves 01_created to 02_dispatching; a no-op for an
	// order already past 01.
	StartDispatch(ctx context.Context, id string) (*Order, error)
	// Assign gives a 02_dispatching order to a technician holding no order
	// (ECONFLICT otherwise). With audited set it is a manual assignment and
	// an audit entry (actor, before/after, reason) commits with it.
	Assign(ctx context.Context, orderID, technicianID string, actor Actor, reason string, audited bool) (*Order, error)
	// HoldDispatch keeps a 02 order from automatic dispatch until t.
	HoldDispatch(ctx context.Context, orderID string, until time.Time) error
	// Cancel moves an order to 09_cancelled (customers: only their own,
	// before work starts).
	Cancel(ctx context.Context, orderID string, actor Actor, reason string) (*Order, error)
	// StartJob and CompleteJob are the assigned technician's steps.
	StartJob(ctx context.Context, orderID, technicianID string) (*Order, error)
	CompleteJob(ctx context.Context, orderID, technicianID string) (*Order, error)
	// ServiceSkill returns the skill a technician needs for an order of
	// the service with code (Service.SkillOrCode), from the catalogue the
	// order service keeps: read again when it does not know the code (a
	// service onboarded since) or its copy is older than it trusts. The
	// code itself for a service the catalogue does not have.
	ServiceSkill(ctx context.Context, code string) (string, error)
}

// TechnicianMessage is pushed to a technician's app.
type TechnicianMessage struct {
	Type         string     `json:"type"` // offer, offer_taken, offer_expired, offer_withdrawn, assigned, cancelled, logged_out
	OrderID      string     `json:"order_id"`
	InvitationID string     `json:"invitation_id,omitempty"`
	Service      string     `json:"service,omitempty"`
	City         string     `json:"city,omitempty"`
	Lat          float64    `json:"lat,omitempty"`
	Lng          float64    `json:"lng,omitempty"`
	Address      string     `json:"address,omitempty"`
	DistanceM    float64    `json:"distance_m,omitempty"`
	PriceVND     int64      `json:"price_vnd,omitempty"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	Reason       string     `json:"reason,omitempty"`
}

// Notifier delivers messages to connected technicians.
type Notifier interface {
	// Notify queues m for the technician; false if they are not connected here.
	Notify(technicianID string, m TechnicianMessage) bool
	// Connections is the number of open technician connections.
	Connections() int
}

// TechnicianGateway is what a technician's connection may ask of dispatch.
type TechnicianGateway interface {
	// TechnicianConnected marks them online through connection connID
	// (unique across processes), which becomes their newest, and returns
	// their current job and open offers.
	TechnicianConnected(ctx context.Context, technicianID, connID string) ([]TechnicianMessage, error)
	// TechnicianDisconnected marks them offline if connID is still their
	// newest connection: an older connection closing after a reconnect
	// (to this process or another) changes nothing.
	TechnicianDisconnected(ctx context.Context, technicianID, connID string)
	UpdateLocation(ctx context.Context, technicianID string, lat, lng float64) error
	SetAvailability(ctx context.Context, technicianID string, available bool) error
	// Acknowledge records that an offer reached the technician's device.
	Acknowledge(ctx context.Context, technicianID, orderID string) error
	// Accept takes an offered order: ECONFLICT if someone else got it.
	Accept(ctx context.Context, technicianID, orderID string) (*Order, error)
	Decline(ctx context.Context, technicianID, orderID, reason string) error
}

// FlagReader answers feature-flag questions from a cache.
type FlagReader interface {
	Enabled(name string) bool
}
