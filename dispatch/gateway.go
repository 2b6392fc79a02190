package dispatch

import (
	"context"
	"fmt"
	"strings"
	"time"

	"smp"
)

var openStates = []smp.InvitationState{smp.InvitationSent, smp.InvitationDelivered}

// settled returns a context for the bookkeeping that follows a committed
// change (trace, notifications): the caller leaving (a closed WebSocket)
// must not leave it half done.
func settled(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
}

// TechnicianConnected marks a technician online through connection
// connID, their newest, and returns what their app must show again: their
// current job and their open offers. EFORBIDDEN for a suspended
// technician (onboarding's deactivate): they get no offers.
func (e *Engine) TechnicianConnected(ctx context.Context, techID, connID string) ([]smp.TechnicianMessage, error) {
	t, err := e.d.Store.FindTechnicianByID(ctx, techID)
	if err != nil {
		return nil, err
	}
	if !t.Status.Active() {
		return nil, smp.Errorf(smp.EFORBIDDEN, "technician %s is suspended", techID)
	}
	err = e.d.Geo.Update(ctx, techID, smp.TechnicianChange{Create: true,
		Set: smp.FieldCity | smp.FieldSkills | smp.FieldOnline | smp.FieldBusy | smp.FieldConn | smp.FieldUpdatedAt,
		To:  smp.TechnicianPosition{City: t.City, Skills: t.Skills, Online: true, Busy: t.ActiveOrderID != "", Conn: connID, UpdatedAt: e.cfg.Now()}})
	if err != nil {
		return nil, err
	}
	var out []smp.TechnicianMessage
	if t.ActiveOrderID != "" {
		if o, err := e.d.Store.FindOrderByID(ctx, t.ActiveOrderID); err == nil {
			out = append(out, smp.TechnicianMessage{Type: "assigned", OrderID: o.ID, Service: o.Service, City: o.City, Lat: o.Lat, Lng: o.Lng, Address: o.Address, PriceVND: o.PriceVND})
		}
	}
	invs, err := e.d.Invitations.ForTechnician(ctx, techID)
	if err != nil {
		return nil, err
	}
	for _, inv := range invs {
		if !inv.ExpiresAt.After(e.cfg.Now()) {
			continue
		}
		o, err := e.d.Store.FindOrderByID(ctx, inv.OrderID)
		if err != nil {
			continue
		}
		out = append(out, offerMessage(o, inv))
	}
	return out, nil
}

// TechnicianDisconnected marks a technician offline, unless a newer
// connection than connID (in any process) has marked them online since:
// the check and the change are one atomic update of the geo index.
func (e *Engine) TechnicianDisconnected(ctx context.Context, techID, connID string) {
	// A newer connection owning the technician now is left alone.
	err := e.d.Geo.Update(ctx, techID, smp.TechnicianChange{Set: smp.FieldOnline | smp.FieldConn, IfConn: connID})
	if err != nil && ctx.Err() == nil {
		e.log.Warn("dispatch: mark technician offline", "technician_id", techID, "err", err)
	}
}

// TechnicianSuspended takes a technician onboarding has just suspended
// out of dispatch at once, whatever process holds their connection:
// offline in the geo index (a reconnect is refused: TechnicianConnected),
// and their open offers withdrawn so that the rounds waiting on them move
// on. Closing their WebSocket is the caller's (the logged-out notice).
// Candidate selection skips suspended technicians even without it.
func (e *Engine) TechnicianSuspended(ctx context.Context, techID string) error {
	err := e.d.Geo.Update(ctx, techID, smp.TechnicianChange{Set: smp.FieldOnline | smp.FieldConn})
	if err != nil {
		return fmt.Errorf("dispatch: mark suspended technician %s offline: %w", techID, err)
	}
	invs, err := e.d.Invitations.ForTechnician(ctx, techID)
	if err != nil {
		return fmt.Errorf("dispatch: offers of suspended technician %s: %w", techID, err)
	}
	for _, inv := range invs {
		_, ok, err := e.d.Invitations.CompareAndSet(ctx, inv.OrderID, techID, openStates, smp.InvitationWithdrawn)
		if err != nil {
			return fmt.Errorf("dispatch: withdraw offer of %s from suspended technician %s: %w", inv.OrderID, techID, err)
		}
		if !ok {
			continue
		}
		e.m.offers.WithLabelValues(string(smp.InvitationWithdrawn)).Inc()
		if err := e.d.Store.UpdateOffer(ctx, inv.ID, smp.InvitationWithdrawn, e.cfg.Now()); err != nil {
			e.log.Warn("dispatch: record withdrawn offer", "order_id", inv.OrderID, "technician_id", techID, "err", err)
		}
		e.signal(inv.OrderID) // a round in another process sees it at its next poll
	}
	return nil
}

// UpdateLocation moves a technician (EINVALID for impossible coordinates).
func (e *Engine) UpdateLocation(ctx context.Context, techID string, lat, lng float64) error {
	if lat < -90 || lat > 90 || lng < -180 || lng > 180 || lat != lat || lng != lng {
		return smp.Errorf(smp.EINVALID, "invalid location (%v, %v)", lat, lng)
	}
	return e.d.Geo.Update(ctx, techID, smp.TechnicianChange{Set: smp.FieldLocation | smp.FieldUpdatedAt,
		To: smp.TechnicianPosition{Lat: lat, Lng: lng, UpdatedAt: e.cfg.Now()}})
}

// SetAvailability records whether the technician takes jobs now.
func (e *Engine) SetAvailability(ctx context.Context, techID string, available bool) error {
	return e.d.Geo.Update(ctx, techID, smp.TechnicianChange{Set: smp.FieldAvailable, To: smp.TechnicianPosition{Available: available}})
}

// Acknowledge records an offer's delivery to the technician's device.
func (e *Engine) Acknowledge(ctx context.Context, techID, orderID string) error {
	// One call (one script on Redis), which returns the invitation: no
	// read before it.
	inv, ok, err := e.d.Invitations.CompareAndSet(ctx, orderID, techID, []smp.InvitationState{smp.InvitationSent}, smp.InvitationDelivered)
	if err != nil {
		return err
	}
	if inv.ID == "" {
		return smp.Errorf(smp.ENOTFOUND, "no offer of order %s for you", orderID)
	}
	if !ok {
		return nil // delivered already, or answered
	}
	ctx, cancel := settled(ctx)
	defer cancel()
	now := e.cfg.Now()
	e.m.offers.WithLabelValues(string(smp.InvitationDelivered)).Inc()
	e.mu.Lock()
	r := e.runs[orderID]
	e.mu.Unlock()
	if r != nil && r.firstAck.CompareAndSwap(false, true) {
		d := now.Sub(time.Unix(0, r.createdAt.Load()))
		e.m.firstOffer.Observe(d.Seconds())
		e.firstLat.add(d)
	}
	return e.d.Store.UpdateOffer(ctx, inv.ID, smp.InvitationDelivered, now)
}

// Accept gives the order to the technician if their offer is open and
// nobody else got it first. ECONFLICT: taken, expired, or they are busy.
func (e *Engine) Accept(ctx context.Context, techID, orderID string) (*smp.Order, error) {
	// The claim, one call (one script on Redis) that also reads the
	// invitation: one accept per order at a time goes on to the database;
	// the others are refused here, without a transaction (their offers
	// stay open until the winner's assignment withdraws them, or the
	// claim is released by a failed one). The store's conditional
	// assignment still decides the winner.
	inv, ok, holder, err := e.d.Invitations.Claim(ctx, orderID, techID, e.cfg.Now())
	if err != nil {
		return nil, err
	}
	if !ok {
		switch {
		case inv.ID == "":
			return nil, smp.Errorf(smp.ECONFLICT, "order %s is no longer offered to you", orderID)
		case holder != "":
			e.m.offers.WithLabelValues("refused").Inc()
			return nil, smp.Errorf(smp.ECONFLICT, "order %s is being taken by another technician", orderID)
		case inv.State.Open(): // open but past its expiry
			e.expire(ctx, inv)
			e.signal(orderID)
			return nil, smp.Errorf(smp.ECONFLICT, "the offer of order %s has expired", orderID)
		}
		return nil, smp.Errorf(smp.ECONFLICT, "order %s is no longer offered to you", orderID)
	}
	o, err := e.d.Orders.Assign(ctx, orderID, techID, smp.Actor{Kind: "technician", ID: techID}, "accepted offer "+inv.ID, false)
	ctx, cancel := settled(ctx)
	defer cancel()
	now := e.cfg.Now()
	if err != nil {
		e.d.Invitations.CompareAndSet(ctx, orderID, techID, []smp.InvitationState{smp.InvitationAccepted}, smp.InvitationWithdrawn)
		e.d.Store.UpdateOffer(ctx, inv.ID, smp.InvitationWithdrawn, now)
		e.m.offers.WithLabelValues("lost").Inc()
		e.signal(orderID)
		if smp.ErrorCode(err) != smp.ECONFLICT {
			return nil, err
		}
		if cur, ferr := e.d.Store.FindOrderByID(ctx, orderID); ferr == nil && cur.Stage == smp.StageCancelled {
			e.d.Notifier.Notify(techID, smp.TechnicianMessage{Type: "offer_withdrawn", OrderID: orderID, InvitationID: inv.ID, Reason: "order cancelled"})
			return nil, smp.Errorf(smp.ECONFLICT, "order %s was cancelled", orderID)
		} else if ferr == nil && cur.Stage != smp.StageDispatching {
			e.d.Notifier.Notify(techID, smp.TechnicianMessage{Type: "offer_taken", OrderID: orderID, InvitationID: inv.ID})
			return nil, smp.Errorf(smp.ECONFLICT, "order %s was taken by another technician", orderID)
		}
		return nil, err // e.g. they already hold an order
	}
	e.m.offers.WithLabelValues(string(smp.InvitationAccepted)).Inc()
	if err := e.d.Store.UpdateOffer(ctx, inv.ID, smp.InvitationAccepted, now); err != nil {
		e.log.Error("dispatch: record accept", "order_id", orderID, "err", err)
	}
	e.assigned(ctx, o, "auto")
	return o, nil
}

// assigned does what follows an assignment in this process, before the
// order.assigned event arrives (which repeats it idempotently).
func (e *Engine) assigned(ctx context.Context, o *smp.Order, mode string) {
	d := o.StageChangedAt.Sub(o.CreatedAt)
	e.m.latency.Observe(d.Seconds())
	e.lat.add(d)
	e.m.assignments.WithLabelValues(mode).Inc()
	busyErr := e.setBusy(ctx, o.TechnicianID, true)
	if err := e.closeRun(ctx, o.ID, o.TechnicianID, "offer_taken"); err == nil && busyErr == nil {
		// Done here: the order.assigned event, if this process's engine
		// consumes it, need not do it again.
		e.settled.add(o.ID, o.TechnicianID, e.cfg.Now())
	}
	e.d.Notifier.Notify(o.TechnicianID, smp.TechnicianMessage{Type: "assigned", OrderID: o.ID, Service: o.Service, City: o.City,
		Lat: o.Lat, Lng: o.Lng, Address: o.Address, PriceVND: o.PriceVND})
}

// Decline records a technician's refusal; they are not offered the order again.
func (e *Engine) Decline(ctx context.Context, techID, orderID, reason string) error {
	inv, ok, err := e.d.Invitations.CompareAndSet(ctx, orderID, techID, openStates, smp.InvitationDeclined)
	if err != nil {
		return err
	}
	if inv.ID == "" {
		return smp.Errorf(smp.ENOTFOUND, "no offer of order %s for you", orderID)
	}
	if !ok {
		return smp.Errorf(smp.ECONFLICT, "the offer of order %s is already %s", orderID, inv.State)
	}
	ctx, cancel := settled(ctx)
	defer cancel()
	e.m.offers.WithLabelValues(string(smp.InvitationDeclined)).Inc()
	err = e.d.Store.UpdateOffer(ctx, inv.ID, smp.InvitationDeclined, e.cfg.Now())
	e.signal(orderID)
	return err
}

// ManualAssign is ops' manual dispatch (runbook INC-001 Option C): it
// assigns, audits (who, when, before/after, reason) in the same
// transaction, withdraws open offers and notifies the technician.
//
// It first checks that the technician could do the job: active, in the
// order's city, with the order's skill, online. Unless override is set it
// refuses (ECONFLICT) and says every reason; with override it assigns
// anyway and the audit entry's reason says what was overridden. A
// suspended technician is refused even so. EINVALID for an unknown
// technician, ENOTFOUND for an unknown order.
func (e *Engine) ManualAssign(ctx context.Context, orderID, techID string, p smp.Principal, reason string, override bool) (*smp.Order, error) {
	tech, err := e.d.Store.FindTechnicianByID(ctx, techID)
	if err != nil {
		if smp.ErrorCode(err) == smp.ENOTFOUND {
			return nil, smp.Errorf(smp.EINVALID, "unknown technician %q", techID)
		}
		return nil, err
	}
	if len(strings.TrimSpace(reason)) < 3 {
		return nil, smp.Errorf(smp.EINVALID, "a reason is required for a manual assignment")
	}
	o, err := e.d.Store.FindOrderByID(ctx, orderID)
	if err != nil {
		return nil, err
	}
	if !tech.Status.Active() {
		return nil, smp.Errorf(smp.ECONFLICT, "technician %s is %s: no job can be assigned to them", techID, tech.Status)
	}
	var why []string
	if tech.City != o.City {
		why = append(why, fmt.Sprintf("works in %s, the order is in %s", tech.City, o.City))
	}
	skill, err := e.d.Orders.ServiceSkill(ctx, o.Service)
	if err != nil {
		return nil, err
	}
	if !tech.HasSkill(skill) {
		if skill == o.Service {
			why = append(why, fmt.Sprintf("has no %s skill", skill))
		} else {
			why = append(why, fmt.Sprintf("has no %s skill (service %s)", skill, o.Service))
		}
	}
	pos, ok, err := e.d.Geo.Get(ctx, techID)
	if err != nil {
		return nil, err
	}
	if !ok || !pos.Online {
		why = append(why, "is offline (the app is not connected)")
	}
	if len(why) > 0 {
		if !override {
			return nil, smp.Errorf(smp.ECONFLICT, "technician %s cannot take order %s: %s; to assign anyway, send \"override\": true with your reason (audited)",
				techID, orderID, strings.Join(why, "; "))
		}
		reason = fmt.Sprintf("override (%s): %s", strings.Join(why, "; "), strings.TrimSpace(reason))
		if err := smp.CheckLen("reason", reason, smp.MaxReason); err != nil {
			return nil, smp.Errorf(smp.EINVALID, "reason: with the override's note it is too long (%s)", smp.ErrorMessage(err))
		}
	}
	o, err = e.d.Orders.Assign(ctx, orderID, techID, smp.Actor{Kind: string(p.Role), ID: p.Name, Role: p.Role}, reason, true)
	if err != nil {
		return nil, err
	}
	ctx, cancel := settled(ctx)
	defer cancel()
	e.assigned(ctx, o, "manual")
	return o, nil
}

// ManualCandidate is a technician ops could assign by hand.
type ManualCandidate struct {
	smp.Candidate
	Name string `json:"name"`
}

// Candidates lists free, active technicians with the order's skill (the
// service's, from the catalogue) near an order for manual dispatch.
func (e *Engine) Candidates(ctx context.Context, orderID string, limit int) ([]ManualCandidate, error) {
	o, err := e.d.Store.FindOrderByID(ctx, orderID)
	if err != nil {
		return nil, err
	}
	city := e.city(o.City)
	if city == nil {
		return nil, smp.Errorf(smp.ENOTFOUND, "city %s is not served", o.City)
	}
	skill, err := e.d.Orders.ServiceSkill(ctx, o.Service)
	if err != nil {
		return nil, err
	}
	radius := city.RadiusStepsKm[len(city.RadiusStepsKm)-1] * 1000
	found, err := e.d.Geo.Nearby(ctx, o.City, skill, o.Lat, o.Lng, radius, limit)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return []ManualCandidate{}, nil
	}
	ids := make([]string, len(found))
	for i, c := range found {
		ids[i] = c.TechnicianID
	}
	techs, err := e.d.Store.FindTechniciansByID(ctx, ids...)
	if err != nil {
		return nil, err
	}
	out := make([]ManualCandidate, 0, len(found))
	for _, c := range found {
		t := techs[c.TechnicianID]
		if t == nil || !t.Status.Active() {
			continue // suspended since the geo index listed them
		}
		out = append(out, ManualCandidate{Candidate: c, Name: t.Name})
	}
	return out, nil
}

// Stats is the engine's view for /admin/stats.
type Stats struct {
	// EngineUp: a dispatch engine runs somewhere (its heartbeat is
	// fresh); EnginesUp counts them and Processes the live smp processes.
	EngineUp     bool `json:"engine_up"`
	EnginesUp    int  `json:"engines_up"`
	Processes    int  `json:"processes"`
	AutoDispatch bool `json:"auto_dispatch"`
	// WebSocketConnections: technicians connected to every live process.
	WebSocketConnections   int                 `json:"websocket_connections"`
	QueueLength            map[string]int64    `json:"queue_length"`
	Backpressure           map[string]bool     `json:"backpressure"`
	BackpressureThreshold  int64               `json:"backpressure_threshold"`
	OutstandingInvitations int64               `json:"outstanding_invitations"`
	ActiveDispatches       int                 `json:"active_dispatches"`
	OrdersPerStage         map[smp.Stage]int64 `json:"orders_per_stage"`
	DispatchLatencyMs      Quantiles           `json:"dispatch_latency_ms"`
	FirstOfferLatencyMs    Quantiles           `json:"first_offer_latency_ms"`
}

// Quantiles of recent latencies, in milliseconds.
type Quantiles struct {
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	Count int     `json:"samples"`
}

// Latencies returns the recent dispatch (created → assigned) and first-offer
// latencies: in memory, no I/O (the dashboard samples them every few seconds).
func (e *Engine) Latencies() (dispatch, firstOffer Quantiles) {
	return e.lat.quantiles(), e.firstLat.quantiles()
}

// Stats gathers the engine's figures.
func (e *Engine) Stats(ctx context.Context) (Stats, error) {
	s := Stats{EngineUp: e.Healthy() == nil, AutoDispatch: e.d.Flags.Enabled(smp.FlagEnableAutoDispatch),
		WebSocketConnections: e.d.Notifier.Connections(), QueueLength: map[string]int64{}, Backpressure: map[string]bool{},
		BackpressureThreshold: e.cfg.BackpressureThreshold}
	for _, code := range e.cityCodes() {
		n, err := e.d.Queue.Len(ctx, code)
		if err != nil {
			return s, err
		}
		s.QueueLength[code] = n
		s.Backpressure[code] = n > e.cfg.BackpressureThreshold
	}
	var err error
	if s.OutstandingInvitations, err = e.d.Invitations.Count(ctx); err != nil {
		return s, err
	}
	if s.OrdersPerStage, err = e.d.Store.CountOrdersByStage(ctx); err != nil {
		return s, err
	}
	e.mu.Lock()
	s.ActiveDispatches = len(e.runs)
	e.mu.Unlock()
	s.DispatchLatencyMs, s.FirstOfferLatencyMs = e.Latencies()
	return s, nil
}

// Trace returns the order's dispatch trace.
func (e *Engine) Trace(ctx context.Context, orderID string) (*smp.DispatchTrace, error) {
	if _, err := e.d.Store.FindOrderByID(ctx, orderID); err != nil {
		return nil, err
	}
	return e.d.Store.FindDispatchTrace(ctx, orderID)
}
