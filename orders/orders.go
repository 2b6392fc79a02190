// Package orders implements smp.OrderService: the order lifecycle on the
// store interfaces it declares (Store), each change committed with its transition, outbox event and,
// for manual actions, audit entry.
package orders

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"smp"
	"smp/bus"
)

// Config of the order service.
type Config struct {
	// StuckAfter: an order in 02_dispatching longer than this counts in
	// order_stuck_in_stage_02_count (default 5 min).
	StuckAfter time.Duration
	Now        func() time.Time
	Registerer prometheus.Registerer
	// Logger gets a debug line per stage change, with the order id.
	Logger *slog.Logger
}

// Store is what the order service needs of the system of record: orders
// and the catalogue read, every change in one transaction, and the
// processed events of its consumer (bus.Store).
type Store interface {
	smp.Transactor
	smp.ProcessedStore
	smp.IdempotencyStore
	// FindOrderByID, CountOrdersByStage and CountInStageSince are
	// smp.OrderStore's.
	FindOrderByID(ctx context.Context, id string) (*smp.Order, error)
	CountOrdersByStage(ctx context.Context) (map[smp.Stage]int64, error)
	CountInStageSince(ctx context.Context, stage smp.Stage, before time.Time) (int64, error)
	// FindCities and FindServices are smp.CatalogStore's.
	FindCities(ctx context.Context) ([]*smp.City, error)
	FindServices(ctx context.Context) ([]*smp.Service, error)
}

// Service implements smp.OrderService.
type Service struct {
	store Store
	cfg   Config

	mu       sync.RWMutex
	cities   map[string]*smp.City
	services map[string]*smp.Service
	loaded   time.Time

	transitions   *prometheus.CounterVec
	queueFailures prometheus.Counter
	dispatchTo    atomic.Pointer[IntakeConfig]
}

var _ smp.OrderService = (*Service)(nil)

// New loads the catalogue (cities, services) and returns the service.
func New(ctx context.Context, store Store, cfg Config) (*Service, error) {
	if cfg.StuckAfter <= 0 {
		cfg.StuckAfter = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{store: store, cfg: cfg}
	if err := s.Reload(ctx); err != nil {
		return nil, err
	}
	s.transitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "smp_order_transitions_total", Help: "Order stage transitions, by target stage.",
	}, []string{"to"})
	for _, st := range smp.Stages {
		s.transitions.WithLabelValues(string(st))
	}
	s.queueFailures = prometheus.NewCounter(prometheus.CounterOpts{Name: "smp_dispatch_queue_push_failures_total",
		Help: "Orders the order-svc intake could not queue on dispatch:queue:{city} (for example Redis out of memory); the engine's sweeper queues them."})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.transitions); err != nil {
			return nil, fmt.Errorf("orders: register metrics: %w", err)
		}
		if err := cfg.Registerer.Register(s.queueFailures); err != nil {
			return nil, fmt.Errorf("orders: register metrics: %w", err)
		}
		if err := cfg.Registerer.Register(&collector{s: s}); err != nil {
			return nil, fmt.Errorf("orders: register metrics: %w", err)
		}
	}
	return s, nil
}

// catalogMaxAge is how long the cached cities and services are trusted
// before an order reads them again (a city deactivated or re-bounded by
// onboarding takes effect within it; a new one at its first order).
const catalogMaxAge = 30 * time.Second

func (s *Service) lookup(city, service string) (*smp.City, *smp.Service) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cities[city], s.services[service]
}

func (s *Service) loadedAt() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.loaded
}

// Reload re-reads cities and services from the store.
func (s *Service) Reload(ctx context.Context) error {
	cities, err := s.store.FindCities(ctx)
	if err != nil {
		return err
	}
	services, err := s.store.FindServices(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cities, s.services, s.loaded = map[string]*smp.City{}, map[string]*smp.Service{}, s.cfg.Now()
	for _, c := range cities {
		s.cities[c.Code] = c
	}
	for _, sv := range services {
		s.services[sv.Code] = sv
	}
	return nil
}

// ServiceSkill returns the skill a technician needs for an order of the
// service code: the cached catalogue's, read again (as CreateOrder does)
// when the code is unknown or the copy older than catalogMaxAge. The code
// itself for a service the catalogue does not have.
func (s *Service) ServiceSkill(ctx context.Context, code string) (string, error) {
	_, sv := s.lookup("", code)
	if sv == nil || s.cfg.Now().Sub(s.loadedAt()) > catalogMaxAge {
		if err := s.Reload(ctx); err != nil && sv == nil {
			return "", err
		} else if err == nil {
			_, sv = s.lookup("", code)
		}
	}
	if sv == nil {
		return code, nil
	}
	return sv.SkillOrCode(), nil
}

// Cities returns the catalogue's cities.
func (s *Service) Cities() []*smp.City {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*smp.City, 0, len(s.cities))
	for _, c := range s.cities {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *smp.City) int { return strings.Compare(a.Code, b.Code) })
	return out
}

func newID(prefix string) string { return prefix + uuid.Must(uuid.NewV7()).String() }

// CreateOrder validates and creates an order, committed in 02_dispatching
// (its 01_created transition and order.created event in the same
// transaction), then queues it for the engine (SetDispatch).
func (s *Service) CreateOrder(ctx context.Context, customerID string, n smp.NewOrder) (*smp.Order, error) {
	return s.create(ctx, customerID, n, nil)
}

// create validates and creates an order, committing its creation and its
// move to 02_dispatching together (dispatch on commit), then queues it for
// the engine; also, when set, commits with it what the caller records in
// the same transaction.
func (s *Service) create(ctx context.Context, customerID string, n smp.NewOrder, also func(tx smp.Tx, o *smp.Order) error) (*smp.Order, error) {
	city, service := s.lookup(n.City, n.Service)
	if (city == nil || service == nil || s.cfg.Now().Sub(s.loadedAt()) > catalogMaxAge) && n.City != "" && n.Service != "" {
		// A city or service onboarded (or changed) since the catalogue was
		// read: read it again, at most once per request.
		if err := s.Reload(ctx); err != nil {
			return nil, err
		}
		city, service = s.lookup(n.City, n.Service)
	}
	if err := n.Validate(city, service); err != nil {
		return nil, err
	}
	// An inactive customer (onboarding's deactivate) places no order:
	// InsertOrder refuses it (EFORBIDDEN) in the order's own statement.
	now := s.cfg.Now().UTC()
	o := &smp.Order{
		ID: newID("ord_"), CustomerID: customerID, City: n.City, Service: n.Service, Lat: n.Lat, Lng: n.Lng,
		Address: n.Address, PriceVND: n.PriceVND, Stage: smp.StageCreated, PaymentStatus: smp.PaymentPending,
		CreatedAt: now, StageChangedAt: now,
	}
	actor := smp.Actor{Kind: "customer", ID: customerID}
	// Dispatch on commit (issue 22): the order is written in
	// 02_dispatching, its creation and its move to dispatch (order-svc's
	// step: transition and order.dispatching event) committing together,
	// so no event-bus hop stands between the order and the engine's queue.
	created := *o
	o.Stage = smp.StageDispatching
	err := s.store.InTx(ctx, func(tx smp.Tx) error {
		if err := tx.InsertOrder(ctx, o); err != nil {
			return err
		}
		sys := smp.SystemActor("order-svc")
		if err := tx.AddTransition(ctx, smp.Transition{OrderID: o.ID, From: "", To: smp.StageCreated, At: now, Actor: actor.String(), Reason: "order placed"},
			smp.Transition{OrderID: o.ID, From: smp.StageCreated, To: smp.StageDispatching, At: now, Actor: sys.String(), Reason: "submitted to dispatch"}); err != nil {
			return err
		}
		createdEv := orderEvent(smp.EventOrderCreated, &created, "", actor, "order placed", now, smp.StageDispatching)
		if err := tx.AddEvent(ctx, createdEv); err != nil {
			return err
		}
		if err := tx.AddEvent(ctx, orderEvent(smp.EventOrderDispatching, o, smp.StageCreated, sys, "submitted to dispatch", now)); err != nil {
			return err
		}
		if also != nil {
			return also(tx, o)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.transitions.WithLabelValues(string(smp.StageCreated)).Inc()
	s.transitions.WithLabelValues(string(smp.StageDispatching)).Inc()
	s.cfg.Logger.Debug("order created", "order_id", o.ID, "city", o.City, "service", o.Service, "customer_id", customerID)
	// After the commit, straight onto the engine's queue. A crash (or a
	// refused push) between the two leaves the order in 02 in the
	// database, where the engine's sweeper finds it.
	s.enqueue(ctx, o)
	return o, nil
}

// errKeyTaken: another request recorded the key first (in create's
// transaction, which then rolls back).
var errKeyTaken = smp.Errorf(smp.ECONFLICT, "Idempotency-Key taken")

// CreateOrderOnce creates an order at most once per customer and
// Idempotency-Key: the key, the request's hash and the created order are
// recorded in the order's own transaction, so a retry after a lost reply
// (or after a crash that followed the commit) finds them.
func (s *Service) CreateOrderOnce(ctx context.Context, customerID, key string, n smp.NewOrder) (*smp.Order, bool, error) {
	if key == "" {
		o, err := s.CreateOrder(ctx, customerID, n)
		return o, false, err
	}
	if c := utf8.RuneCountInString(key); c > smp.MaxIdempotencyKey {
		return nil, false, smp.Errorf(smp.EINVALID, "Idempotency-Key is %d characters long, at most %d", c, smp.MaxIdempotencyKey)
	}
	body, err := json.Marshal(n)
	if err != nil {
		return nil, false, err
	}
	sum := sha256.Sum256(append([]byte("POST /v1/orders\n"), body...))
	hash := hex.EncodeToString(sum[:])
	now := s.cfg.Now().UTC()
	since := now.Add(-smp.IdempotencyKeyTTL)
	if o, err := s.replay(ctx, customerID, key, hash, since); o != nil || err != nil {
		return o, o != nil, err
	}
	o, err := s.create(ctx, customerID, n, func(tx smp.Tx, o *smp.Order) error {
		resp, err := json.Marshal(o)
		if err != nil {
			return err
		}
		err = tx.RecordIdempotentRequest(ctx, &smp.IdempotentRequest{CustomerID: customerID, Key: key, RequestHash: hash, OrderID: o.ID, Response: resp, CreatedAt: now}, since)
		if smp.ErrorCode(err) == smp.ECONFLICT {
			return errKeyTaken
		}
		return err
	})
	if errors.Is(err, errKeyTaken) {
		// A concurrent request with the key committed while this one ran
		// (this one waited for it): answer as a retry would be.
		if o, err := s.replay(ctx, customerID, key, hash, since); o != nil || err != nil {
			return o, o != nil, err
		}
		return nil, false, smp.Errorf(smp.ECONFLICT, "a request with this Idempotency-Key is in progress; retry it")
	}
	return o, false, err
}

// replay returns the order first created under key, nil if the key is
// not recorded, ECONFLICT if it was recorded for another request.
func (s *Service) replay(ctx context.Context, customerID, key, hash string, since time.Time) (*smp.Order, error) {
	rec, err := s.store.FindIdempotentRequest(ctx, customerID, key, since)
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if rec.RequestHash != hash {
		return nil, smp.Errorf(smp.ECONFLICT, "Idempotency-Key %q was used with another request; use a new key for a new order", key)
	}
	var o smp.Order
	if err := json.Unmarshal(rec.Response, &o); err != nil {
		return nil, fmt.Errorf("orders: recorded response of key %q: %w", key, err)
	}
	return &o, nil
}

// FindOrderByID returns an order.
func (s *Service) FindOrderByID(ctx context.Context, id string) (*smp.Order, error) {
	return s.store.FindOrderByID(ctx, id)
}

var eventTypes = map[smp.Stage]string{
	smp.StageCreated:     smp.EventOrderCreated,
	smp.StageDispatching: smp.EventOrderDispatching,
	smp.StageAssigned:    smp.EventOrderAssigned,
	smp.StageInProgress:  smp.EventOrderStarted,
	smp.StageCompleted:   smp.EventOrderCompleted,
	smp.StageCancelled:   smp.EventOrderCancelled,
}

// orderEvent is an order's event; next, when given, is the stage the
// order moved on to in the same transaction (OrderEventData.Next).
func orderEvent(typ string, o *smp.Order, from smp.Stage, actor smp.Actor, reason string, at time.Time, next ...smp.Stage) smp.Event {
	d := smp.OrderEventData{OrderID: o.ID, City: o.City, Service: o.Service, From: from, To: o.Stage,
		TechnicianID: o.TechnicianID, Actor: actor.String(), Reason: reason}
	if len(next) > 0 {
		d.Next = next[0]
	}
	data, _ := json.Marshal(d)
	return smp.Event{ID: newID("evt_"), Type: typ, SchemaVersion: smp.EventSchemaVersion, AggregateID: o.ID, OccurredAt: at, Data: data}
}

// change moves an order to stage to in one transaction: guard checks the
// current order, mutate adjusts it, and the transition, event and (when
// audited) audit entry commit together.
type change struct {
	to      smp.Stage
	actor   smp.Actor
	reason  string
	audited bool
	guard   func(o *smp.Order) error
	mutate  func(tx smp.Tx, o *smp.Order) error
	// noop: return the order unchanged, without error, when guard says so.
	noop func(o *smp.Order) bool
	// once, when set, records the triggering event as processed by a
	// consumer group in the same transaction (bus.ErrDuplicate if it
	// already was).
	once *processed
}

type processed struct{ group, eventID string }

func (s *Service) apply(ctx context.Context, id string, c change) (*smp.Order, error) {
	var out *smp.Order
	changed := false
	err := s.store.InTx(ctx, func(tx smp.Tx) error {
		var err error
		out, changed, err = s.applyTx(ctx, tx, id, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.applied(c, out, changed)
	return out, nil
}

// applyTx is apply's transaction: the order after c, and whether c
// changed it.
func (s *Service) applyTx(ctx context.Context, tx smp.Tx, id string, c change) (*smp.Order, bool, error) {
	if c.once != nil {
		first, err := tx.MarkProcessed(ctx, c.once.group, c.once.eventID, s.cfg.Now().UTC())
		if err != nil {
			return nil, false, err
		}
		if !first {
			return nil, false, bus.ErrDuplicate
		}
	}
	o, err := tx.OrderForUpdate(ctx, id)
	if err != nil {
		return nil, false, err
	}
	if c.noop != nil && c.noop(o) {
		return o, false, nil
	}
	if c.guard != nil {
		if err := c.guard(o); err != nil {
			return nil, false, err
		}
	}
	if !smp.CanTransition(o.Stage, c.to) {
		return nil, false, smp.Errorf(smp.ECONFLICT, "order %s is %s and cannot move to %s", o.ID, o.Stage, c.to)
	}
	before := *o
	o.Stage = c.to
	if c.mutate != nil {
		if err := c.mutate(tx, o); err != nil {
			return nil, false, err
		}
	}
	// Read the clock once every lock is held (mutate may have waited
	// for a technician's row), so recorded times follow the order in
	// which the database serialized the changes.
	now := s.cfg.Now().UTC()
	o.StageChangedAt = now
	if err := tx.UpdateOrder(ctx, o); err != nil {
		return nil, false, err
	}
	if err := tx.AddTransition(ctx, smp.Transition{OrderID: o.ID, From: before.Stage, To: c.to, At: now, Actor: c.actor.String(), Reason: c.reason}); err != nil {
		return nil, false, err
	}
	if err := tx.AddEvent(ctx, orderEvent(eventTypes[c.to], o, before.Stage, c.actor, c.reason, now)); err != nil {
		return nil, false, err
	}
	if c.audited {
		if err := tx.AddAudit(ctx, smp.AuditEntry{At: now, Actor: c.actor.ID, Role: c.actor.Role, Action: "order." + string(c.to),
			Target: "order:" + o.ID, Before: summary(&before), After: summary(o), Reason: c.reason}); err != nil {
			return nil, false, err
		}
	}
	return o, true, nil
}

// applied counts and logs a committed change.
func (s *Service) applied(c change, o *smp.Order, changed bool) {
	if changed {
		s.transitions.WithLabelValues(string(c.to)).Inc()
		s.cfg.Logger.Debug("order stage changed", "order_id", o.ID, "to", c.to, "actor", c.actor.String(), "reason", c.reason)
	}
}

func summary(o *smp.Order) string {
	b, _ := json.Marshal(map[string]any{"stage": o.Stage, "technician_id": o.TechnicianID, "payment_status": o.PaymentStatus})
	return string(b)
}

// StartDispatch moves an order from 01 to 02 (idempotent).
func (s *Service) StartDispatch(ctx context.Context, id string) (*smp.Order, error) {
	return s.apply(ctx, id, s.startDispatch())
}

func (s *Service) startDispatch() change {
	return change{
		to: smp.StageDispatching, actor: smp.SystemActor("order-svc"), reason: "submitted to dispatch",
		noop: func(o *smp.Order) bool { return o.Stage != smp.StageCreated },
	}
}

// Assign gives an order in 02 to a technician who holds no order.
func (s *Service) Assign(ctx context.Context, orderID, technicianID string, actor smp.Actor, reason string, audited bool) (*smp.Order, error) {
	if technicianID == "" {
		return nil, smp.Errorf(smp.EINVALID, "technician_id is required")
	}
	if audited && len(reason) < 3 {
		return nil, smp.Errorf(smp.EINVALID, "a reason is required for a manual assignment")
	}
	return s.apply(ctx, orderID, change{
		to: smp.StageAssigned, actor: actor, reason: reason, audited: audited,
		guard: func(o *smp.Order) error {
			if o.Stage != smp.StageDispatching {
				return smp.Errorf(smp.ECONFLICT, "order %s is already %s", o.ID, o.Stage)
			}
			return nil
		},
		mutate: func(tx smp.Tx, o *smp.Order) error {
			o.TechnicianID = technicianID
			return tx.ClaimTechnician(ctx, technicianID, o.ID)
		},
	})
}

// HoldDispatch sets the time before which the sweeper will not re-queue a 02 order.
func (s *Service) HoldDispatch(ctx context.Context, orderID string, until time.Time) error {
	return s.store.InTx(ctx, func(tx smp.Tx) error {
		o, err := tx.OrderForUpdate(ctx, orderID)
		if err != nil {
			return err
		}
		if o.Stage != smp.StageDispatching {
			return nil
		}
		o.DispatchNotBefore = until
		return tx.UpdateOrder(ctx, o)
	})
}

// Cancel cancels an order. Customers may cancel their own orders until
// work starts; admin principals (audited) at any non-final stage. An order
// already paid moves to payment status refund_required, with its
// payment.status_changed event, in the same transaction.
func (s *Service) Cancel(ctx context.Context, orderID string, actor smp.Actor, reason string) (*smp.Order, error) {
	audited := actor.Kind != "customer" && actor.Kind != "system"
	if audited && len(reason) < 3 {
		return nil, smp.Errorf(smp.EINVALID, "a reason is required")
	}
	if err := smp.CheckLen("reason", reason, smp.MaxReason); err != nil {
		return nil, err // before anything is read or locked
	}
	if reason == "" {
		reason = "cancelled by customer"
	}
	return s.apply(ctx, orderID, change{
		to: smp.StageCancelled, actor: actor, reason: reason, audited: audited,
		guard: func(o *smp.Order) error {
			if actor.Kind == "customer" {
				if o.CustomerID != actor.ID {
					return smp.Errorf(smp.ENOTFOUND, "order %s not found", o.ID)
				}
				if o.Stage == smp.StageInProgress {
					return smp.Errorf(smp.ECONFLICT, "the job has started; contact support to cancel")
				}
			}
			return nil
		},
		mutate: func(tx smp.Tx, o *smp.Order) error {
			if o.TechnicianID != "" {
				if err := tx.ReleaseTechnician(ctx, o.TechnicianID, o.ID); err != nil {
					return err
				}
			}
			if o.PaymentStatus == smp.PaymentPaid {
				// Paid, now cancelled: the money goes back (the refund path).
				o.PaymentStatus = smp.PaymentRefundRequired
				data, _ := json.Marshal(smp.PaymentEventData{OrderID: o.ID, From: smp.PaymentPaid, To: smp.PaymentRefundRequired, AmountVND: o.PriceVND,
					Source: "cancellation", Actor: actor.String(), Reason: reason})
				return tx.AddEvent(ctx, smp.Event{ID: newID("evt_"), Type: smp.EventPaymentChanged, SchemaVersion: smp.EventSchemaVersion,
					AggregateID: o.ID, OccurredAt: s.cfg.Now().UTC(), Data: data})
			}
			return nil
		},
	})
}

func (s *Service) byTechnician(technicianID string) func(o *smp.Order) error {
	return func(o *smp.Order) error {
		if o.TechnicianID != technicianID {
			return smp.Errorf(smp.EFORBIDDEN, "order %s is not assigned to you", o.ID)
		}
		return nil
	}
}

// already makes a technician's step idempotent: repeating it (a retry
// after a lost response) returns the order unchanged.
func already(technicianID string, stages ...smp.Stage) func(o *smp.Order) bool {
	return func(o *smp.Order) bool {
		return o.TechnicianID == technicianID && slices.Contains(stages, o.Stage)
	}
}

// StartJob moves the technician's order from 03 to 04 (a no-op if they
// already started or finished it).
func (s *Service) StartJob(ctx context.Context, orderID, technicianID string) (*smp.Order, error) {
	return s.apply(ctx, orderID, change{
		to: smp.StageInProgress, actor: smp.Actor{Kind: "technician", ID: technicianID}, reason: "technician started the job",
		guard: s.byTechnician(technicianID),
		noop:  already(technicianID, smp.StageInProgress, smp.StageCompleted),
	})
}

// CompleteJob moves the technician's order from 04 to 05 and frees them
// (a no-op if they already completed it).
func (s *Service) CompleteJob(ctx context.Context, orderID, technicianID string) (*smp.Order, error) {
	return s.apply(ctx, orderID, change{
		to: smp.StageCompleted, actor: smp.Actor{Kind: "technician", ID: technicianID}, reason: "technician completed the job",
		guard: s.byTechnician(technicianID),
		noop:  already(technicianID, smp.StageCompleted),
		mutate: func(tx smp.Tx, o *smp.Order) error {
			return tx.ReleaseTechnician(ctx, technicianID, o.ID)
		},
	})
}

// collector exports order gauges read from the store at scrape time.
type collector struct{ s *Service }

var (
	stuckDesc = prometheus.NewDesc("order_stuck_in_stage_02_count",
		"Orders in 02_dispatching for longer than the stuck threshold (runbook INC-001).", nil, nil)
	stageDesc = prometheus.NewDesc("smp_orders", "Orders currently in each stage.", []string{"stage"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) { ch <- stuckDesc; ch <- stageDesc }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if n, err := c.s.store.CountInStageSince(ctx, smp.StageDispatching, c.s.cfg.Now().Add(-c.s.cfg.StuckAfter)); err == nil {
		ch <- prometheus.MustNewConstMetric(stuckDesc, prometheus.GaugeValue, float64(n))
	} else {
		ch <- prometheus.NewInvalidMetric(stuckDesc, err)
	}
	if counts, err := c.s.store.CountOrdersByStage(ctx); err == nil {
		for st, n := range counts {
			ch <- prometheus.MustNewConstMetric(stageDesc, prometheus.GaugeValue, float64(n), string(st))
		}
	} else {
		ch <- prometheus.NewInvalidMetric(stageDesc, err)
	}
}
