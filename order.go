package smp

import (
	"context"
	"math"
	"strings"
	"time"
)

// Stage is an order's position in its lifecycle. The codes are the ones
// the runbook uses ("stuck in stage 02").
type Stage string

const (
	StageCreated     Stage = "01_created"
	StageDispatching Stage = "02_dispatching"
	StageAssigned    Stage = "03_assigned"
	StageInProgress  Stage = "04_in_progress"
	StageCompleted   Stage = "05_completed"
	StageCancelled   Stage = "09_cancelled"
)

// Stages lists every stage in order.
var Stages = []Stage{StageCreated, StageDispatching, StageAssigned, StageInProgress, StageCompleted, StageCancelled}

var transitions = map[Stage][]Stage{
	StageCreated:     {StageDispatching, StageCancelled},
	StageDispatching: {StageAssigned, StageCancelled},
	StageAssigned:    {StageInProgress, StageCancelled},
	StageInProgress:  {StageCompleted, StageCancelled},
}

// CanTransition reports whether an order may move from one stage to another.
func CanTransition(from, to Stage) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Terminal reports whether no transition leaves s.
func (s Stage) Terminal() bool { return len(transitions[s]) == 0 }

// PaymentStatus of an order.
type PaymentStatus string

const (
	PaymentPending PaymentStatus = "pending"
	PaymentPaid    PaymentStatus = "paid"
	// PaymentRefundRequired: inside collected money for an order that is
	// cancelled (the customer paid, then cancelled, or the payment landed
	// after the cancellation): it must go back to the customer, and stays
	// so until inside reports the refund (docs/payments.md).
	PaymentRefundRequired PaymentStatus = "refund_required"
	PaymentRefunded       PaymentStatus = "refunded"
)

// Order is a customer's request for a home service.
type Order struct {
	ID             string        `json:"id"`
	CustomerID     string        `json:"customer_id"`
	City           string        `json:"city"`
	Service        string        `json:"service"`
	Lat            float64       `json:"lat"`
	Lng            float64       `json:"lng"`
	Address        string        `json:"address,omitempty"`
	PriceVND       int64         `json:"price_vnd"`
	Stage          Stage         `json:"stage"`
	PaymentStatus  PaymentStatus `json:"payment_status"`
	TechnicianID   string        `json:"technician_id,omitempty"`
	CreatedAt      time.Time     `json:"created_at"`
	StageChangedAt time.Time     `json:"stage_changed_at"`
	// DispatchNotBefore holds a 02_dispatching order back from automatic
	// dispatch until then (set when a dispatch round found nobody).
	DispatchNotBefore time.Time `json:"-"`
}

// Transition is one recorded stage change of an order.
type Transition struct {
	OrderID string    `json:"order_id"`
	From    Stage     `json:"from"`
	To      Stage     `json:"to"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	Reason  string    `json:"reason"`
}

// OrderFilter narrows FindOrders.
type OrderFilter struct {
	Stage        Stage
	City         string
	CustomerID   string
	TechnicianID string
	// ChangedBefore keeps orders whose stage changed before it (stuck ones).
	ChangedBefore time.Time
	// PaymentStatus keeps orders whose payment is in it ("pending": the
	// list INC-002's option B reconciles).
	PaymentStatus PaymentStatus
	// After continues a listing after this order (the last of the
	// previous page): orders older than it, by creation then id.
	After *OrderCursor
	Limit int
}

// OrderCursor is where a page of FindOrders ended.
type OrderCursor struct {
	CreatedAt time.Time
	ID        string
}

// NewOrder is a customer's order request, validated by Validate.
type NewOrder struct {
	City     string  `json:"city"`
	Service  string  `json:"service"`
	Lat      float64 `json:"lat"`
	Lng      float64 `json:"lng"`
	Address  string  `json:"address"`
	PriceVND int64   `json:"price_vnd"`
}

// Validate checks the request against the known cities and services.
// It returns EINVALID naming the first offending field.
func (n *NewOrder) Validate(city *City, service *Service) error {
	switch {
	case strings.TrimSpace(n.City) == "":
		return Errorf(EINVALID, "city is required")
	case city == nil:
		return Errorf(EINVALID, "unknown city %q", n.City)
	case !city.Status.Active():
		return Errorf(EINVALID, "city %s is not served now", n.City)
	case strings.TrimSpace(n.Service) == "":
		return Errorf(EINVALID, "service is required")
	case service == nil:
		return Errorf(EINVALID, "unknown service %q", n.Service)
	case !service.Status.Active():
		return Errorf(EINVALID, "service %s is not offered now", n.Service)
	case math.IsNaN(n.Lat) || math.IsNaN(n.Lng) || math.IsInf(n.Lat, 0) || math.IsInf(n.Lng, 0):
		return Errorf(EINVALID, "lat and lng must be numbers")
	case !city.Contains(n.Lat, n.Lng):
		return Errorf(EINVALID, "location (%.5f, %.5f) is outside %s", n.Lat, n.Lng, city.Code)
	case n.PriceVND <= 0:
		return Errorf(EINVALID, "price_vnd must be a positive number of VND")
	case len(n.Address) > 500:
		return Errorf(EINVALID, "address is longer than 500 characters")
	}
	return nil
}

// City is a served city with its bounds and dispatch settings.
type City struct {
	Code   string  `json:"code"`
	Name   string  `json:"name"`
	MinLat float64 `json:"min_lat"`
	MaxLat float64 `json:"max_lat"`
	MinLng float64 `json:"min_lng"`
	MaxLng float64 `json:"max_lng"`
	// RadiusStepsKm: the candidate search radius widens through these.
	RadiusStepsKm []float64 `json:"radius_steps_km"`
	// WaveSize is how many technicians one wave of offers reaches.
	WaveSize int `json:"wave_size"`
	// MaxWaves bounds one dispatch round; after it the order waits and is retried.
	MaxWaves int `json:"max_waves"`
	// Lat and Lng are the city's centre (0 for cities created before
	// onboarding had them).
	Lat float64 `json:"lat"`
	Lng float64 `json:"lng"`
	// Status is active or inactive (no new orders).
	Status CatalogStatus `json:"status"`
}

// Contains reports whether the point lies inside the city's bounds.
func (c *City) Contains(lat, lng float64) bool {
	return lat >= c.MinLat && lat <= c.MaxLat && lng >= c.MinLng && lng <= c.MaxLng
}

// Service is a kind of job customers order and technicians are skilled in.
type Service struct {
	Code string `json:"code"`
	Name string `json:"name"`
	// Skill is what a technician needs to take the job (the service's code
	// when empty).
	Skill string `json:"skill"`
	// PriceVND is the list price in whole VND.
	PriceVND int64 `json:"price_vnd"`
	// Commission is the platform's share of the price, in basis points
	// (1 % = 100); JSON carries it as commission_pct, a percentage with at
	// most two decimals, never a float in between.
	Commission BasisPoints `json:"commission_pct"`
	// Status is active or inactive (no new orders).
	Status CatalogStatus `json:"status"`
}

// SkillOrCode is the skill a technician needs for the service.
func (s *Service) SkillOrCode() string {
	if s.Skill != "" {
		return s.Skill
	}
	return s.Code
}

// Partner is a business that employs technicians, identified by the
// runbook's P001-style id.
type Partner struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Country is where the partner is registered (ISO 3166-1 alpha-2; the
	// fraud rules compare it with top-ups' IP country).
	Country string `json:"country"`
	// Contact is how to reach the partner (the runbook's "registered number").
	Contact string `json:"contact"`
	// Status is active or inactive.
	Status CatalogStatus `json:"status"`
}

// Technician ("thợ") works for a partner in one city.
type Technician struct {
	ID        string   `json:"id"`
	PartnerID string   `json:"partner_id"`
	Name      string   `json:"name"`
	City      string   `json:"city"`
	Skills    []string `json:"skills"`
	// Phone is the technician's mobile number in E.164 (+84...), unique
	// among technicians ("" only for rows created before onboarding).
	Phone string `json:"phone"`
	// Status is active or suspended (no offers, no login).
	Status CatalogStatus `json:"status"`
	// Lat and Lng are the technician's home base, inside their city (0 when
	// unknown).
	Lat           float64 `json:"lat,omitempty"`
	Lng           float64 `json:"lng,omitempty"`
	ActiveOrderID string  `json:"active_order_id,omitempty"`
}

// HasSkill reports whether t can do service.
func (t *Technician) HasSkill(service string) bool {
	for _, s := range t.Skills {
		if s == service {
			return true
		}
	}
	return false
}

// Customer places orders.
type Customer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Phone is the customer's mobile number in E.164 (+84...), unique among
	// customers ("" only for rows created before onboarding).
	Phone string `json:"phone"`
	// Status is active or inactive.
	Status CatalogStatus `json:"status"`
}

// DistanceMeters is the great-circle distance between two points.
func DistanceMeters(lat1, lng1, lat2, lng2 float64) float64 {
	const r = 6371000.0
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLng := (lng2 - lng1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(a)))
}

// OrderStore reads orders. Reads that callers act on (FindOrderByID,
// FindTransitions, FindDispatchable) see every committed write; listings
// and counts may come from a replica that lags.
type OrderStore interface {
	// FindOrderByID returns an order; ENOTFOUND if there is none with id.
	FindOrderByID(ctx context.Context, id string) (*Order, error)
	// FindOrders lists orders matching f, newest first (by creation, then
	// id, descending), after f.After when set. A Limit of 0, negative or
	// above 1000 means 100. No codes.
	FindOrders(ctx context.Context, f OrderFilter) ([]*Order, error)
	// FindTransitions returns an order's stage history, oldest first
	// (empty, not ENOTFOUND, for an unknown order). No codes.
	FindTransitions(ctx context.Context, orderID string) ([]Transition, error)
	// CountOrdersByStage counts orders in every stage; every stage of
	// Stages is present, zero when empty. No codes.
	CountOrdersByStage(ctx context.Context) (map[Stage]int64, error)
	// CountInStageSince counts orders in stage whose stage began before
	// before. No codes.
	CountInStageSince(ctx context.Context, stage Stage, before time.Time) (int64, error)
	// FindDispatchable returns 02_dispatching orders whose hold
	// (DispatchNotBefore) is at or before now, longest waiting first, at
	// most limit; EINVALID if limit is not positive.
	FindDispatchable(ctx context.Context, now time.Time, limit int) ([]*Order, error)
	// CountPaymentOverdue counts completed orders still pending or failed
	// in payment whose job finished before before. No codes.
	CountPaymentOverdue(ctx context.Context, before time.Time) (int64, error)
}

// OrderTx is the order writes of a transaction.
type OrderTx interface {
	// OrderForUpdate reads an order and locks it for the rest of the tx;
	// ENOTFOUND if there is none with id.
	OrderForUpdate(ctx context.Context, id string) (*Order, error)
	// InsertOrder inserts a new order; ECONFLICT if its id exists,
	// EINVALID if PriceVND is not positive, EFORBIDDEN if its customer
	// exists and is not active (an unknown customer is no refusal).
	InsertOrder(ctx context.Context, o *Order) error
	// UpdateOrder writes stage, payment status, technician and
	// timestamps; ENOTFOUND if the order does not exist.
	UpdateOrder(ctx context.Context, o *Order) error
	// AddTransition records a stage change, and more after it in the same
	// statement (an order created straight into dispatch). No codes.
	AddTransition(ctx context.Context, t Transition, more ...Transition) error
}
