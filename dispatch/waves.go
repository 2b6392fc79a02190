package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"smp"
)

func lockKey(orderID string) string { return "dispatch:lock:" + orderID }

// dispatch runs one round of waves for an order.
func (e *Engine) dispatch(ctx context.Context, orderID string) error {
	if !e.d.Flags.Enabled(smp.FlagEnableAutoDispatch) {
		return nil
	}
	e.mu.Lock()
	_, dup := e.runs[orderID]
	e.mu.Unlock()
	if dup {
		return nil // this engine runs it already (a sweep queued it again)
	}
	// Each round holds the lock under its own token, so neither another
	// engine nor a second round of this one can take or release it.
	owner := e.cfg.Owner + "/" + uuid.NewString()[:8]
	ok, err := e.d.Locker.TryLock(ctx, lockKey(orderID), owner, e.cfg.LockLease)
	if err != nil || !ok {
		return err // another engine (or run) has it
	}
	defer e.d.Locker.Unlock(context.Background(), lockKey(orderID), owner)
	// The round lives as long as its lease: losing it (another engine
	// took the order after a renewal gap) ends the round at once.
	ctx, lose := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() { defer close(renewed); e.keepLease(ctx, lose, orderID, owner) }()
	defer func() { lose(nil); <-renewed }()

	// The round is registered before it reads the order: a cancellation
	// (or manual assignment) committed after the read finds the run and
	// closes it; one committed before, the read sees.
	r := &run{changed: make(chan struct{}, 1), closed: make(chan struct{})}
	r.cleaned.Store(-1) // the round's end deletes what an earlier round may have left
	e.mu.Lock()
	if _, dup := e.runs[orderID]; dup {
		e.mu.Unlock()
		return nil
	}
	e.runs[orderID] = r
	e.mu.Unlock()
	defer func() {
		// Whatever ended the round, leave no open invitation behind: an
		// orphan would block its technician and leak
		// dispatch:invitations:{order} (runbook INC-004). On shutdown the
		// invitations stay; the next start re-dispatches from the database.
		// After a lost lease they belong to the new holder's round.
		if ctx.Err() == nil && r.dirtyAfterClosing() {
			if err := e.closeRun(context.WithoutCancel(ctx), orderID, "", "offer_withdrawn"); err != nil {
				// The keys expire (dispatch:invitations:* has a TTL) and
				// the next round overwrites them.
				e.log.Warn("dispatch: round end left invitations behind", "order_id", orderID, "err", err)
			}
		}
		e.mu.Lock()
		delete(e.runs, orderID)
		e.mu.Unlock()
	}()

	// The order is read once, under the lock (it may have been assigned
	// or cancelled since it was queued).
	o, err := e.d.Store.FindOrderByID(ctx, orderID)
	if err != nil {
		return err
	}
	city := e.city(o.City)
	if o.Stage != smp.StageDispatching || city == nil {
		r.markCleaned(0) // nothing to clean up after a round that never started
		return nil
	}
	r.createdAt.Store(o.CreatedAt.UnixNano())

	// Technicians are matched by the service's skill, which may differ
	// from its code (the catalogue's, cached by the order service).
	skill, err := e.d.Orders.ServiceSkill(ctx, o.Service)
	if err != nil {
		return err
	}
	trace, err := e.d.Store.FindDispatchTrace(ctx, orderID)
	if err != nil {
		return err
	}
	round := 1
	for _, w := range trace.Waves {
		round = max(round, w.Round+1)
	}
	// Who declined, from the trace just read (declines are recorded at
	// once, and the trace's read flushes the batched states).
	excluded := map[string]bool{}
	for _, of := range trace.Offers {
		if of.State == smp.InvitationDeclined {
			excluded[of.TechnicianID] = true
		}
	}

	radiusIdx := 0
	for wave := 1; wave <= max(city.MaxWaves, 1); wave++ {
		if wave > 1 {
			// The order may have been cancelled or assigned by hand
			// while the last wave ran.
			select {
			case <-r.closed:
				return nil
			default:
			}
			if cur, err := e.d.Store.FindOrderByID(ctx, orderID); err != nil || cur.Stage != smp.StageDispatching {
				return err
			}
		}
		now := e.cfg.Now().UTC()
		cands, idx, err := e.findCandidates(ctx, o, skill, city, radiusIdx, excluded, city.WaveSize)
		if err != nil {
			return err
		}
		radiusIdx = idx
		radiusM := city.RadiusStepsKm[min(idx, len(city.RadiusStepsKm)-1)] * 1000
		w := smp.DispatchWave{OrderID: orderID, Round: round, Wave: wave, RadiusM: radiusM, StartedAt: now, Candidates: len(cands)}
		if len(cands) == 0 {
			w.Note = fmt.Sprintf("no free technician with skill %s within %.0f km", skill, radiusM/1000)
			// A held order retried every RetryAfter finds nobody again and
			// again: the trace records the hold once, not a row per retry.
			if !repeatsLastWave(trace.Waves, w) {
				if err := e.d.Store.AddDispatchWave(ctx, w); err != nil {
					return err
				}
			}
			break
		}
		if err := e.d.Store.AddDispatchWave(ctx, w); err != nil {
			return err
		}
		assigned, err := e.offer(ctx, r, o, skill, round, wave, radiusM, cands, excluded)
		if err != nil || assigned {
			return err
		}
		select {
		case <-r.closed:
			return nil
		default:
		}
	}
	e.m.exhausted.Inc()
	until := e.cfg.Now().Add(e.cfg.RetryAfter)
	e.log.Info("dispatch round found nobody; order waits for a retry", "order_id", orderID, "round", round, "retry_at", until)
	return e.d.Orders.HoldDispatch(ctx, orderID, until)
}

// errLeaseLost ends a round whose dispatch lock another engine now holds.
var errLeaseLost = errors.New("dispatch lock lost")

// keepLease renews the round's lock every third of its lease until ctx
// ends. A refused renewal (the lease lapsed and may be another's) ends the
// round; failed renewals (Redis unreachable) are retried until the lease
// has certainly run out.
func (e *Engine) keepLease(ctx context.Context, lose context.CancelCauseFunc, orderID, owner string) {
	t := time.NewTicker(e.cfg.LockLease / 3)
	defer t.Stop()
	held := time.Now() // leases run on the wall clock, whatever Now says
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := e.d.Locker.Renew(ctx, lockKey(orderID), owner, e.cfg.LockLease)
		switch {
		case err == nil && ok:
			held = time.Now()
			continue
		case err != nil && ctx.Err() != nil:
			return
		case err != nil && time.Since(held) < e.cfg.LockLease:
			e.log.Warn("dispatch: lock renewal failed; retrying", "order_id", orderID, "err", err)
			continue
		}
		e.m.leasesLost.Inc()
		e.log.Warn("dispatch: lock lost; the round stops", "order_id", orderID, "key", lockKey(orderID), "err", err)
		lose(errLeaseLost)
		return
	}
}

// findCandidates returns up to n technicians with skill for the order,
// searching the city's radius steps from index idx outward; it returns the
// step used.
func (e *Engine) findCandidates(ctx context.Context, o *smp.Order, skill string, city *smp.City, idx int, excluded map[string]bool, n int) ([]smp.Candidate, int, error) {
	for ; idx < len(city.RadiusStepsKm); idx++ {
		radiusM := city.RadiusStepsKm[idx] * 1000
		found, err := e.d.Geo.Nearby(ctx, o.City, skill, o.Lat, o.Lng, radiusM, n+len(excluded)+16)
		if err == nil {
			found, err = e.eligible(ctx, found) // not suspended since the index listed them; their hours, days off and radius
		}
		if err == nil && e.d.OfferGate != nil {
			found, err = e.d.OfferGate(ctx, found) // their partner's wallet
		}
		if err != nil {
			return nil, idx, fmt.Errorf("dispatch: candidate search: %w", err)
		}
		ids := make([]string, 0, len(found))
		for _, c := range found {
			if !excluded[c.TechnicianID] {
				ids = append(ids, c.TechnicianID)
			}
		}
		// The offers each holds, in one call (one script on Redis). An
		// offer past its expiry holds nobody, even if no round expired
		// it (its engine died).
		held, err := e.d.Invitations.Held(ctx, ids, e.cfg.Now())
		if err != nil {
			return nil, idx, err
		}
		var out []smp.Candidate
		for _, c := range found {
			if excluded[c.TechnicianID] || held[c.TechnicianID] >= e.cfg.MaxOffersPerTechnician {
				continue
			}
			out = append(out, c)
			if len(out) == n {
				break
			}
		}
		if len(out) > 0 {
			return out, idx, nil
		}
	}
	return nil, len(city.RadiusStepsKm) - 1, nil
}

// offer sends one wave and waits for it to resolve. It returns true when
// the order was assigned or closed.
func (e *Engine) offer(ctx context.Context, r *run, o *smp.Order, skill string, round, wave int, radiusM float64, cands []smp.Candidate, excluded map[string]bool) (bool, error) {
	now := e.cfg.Now().UTC()
	expires := now.Add(e.cfg.InvitationTTL)
	invs := make([]smp.Invitation, len(cands))
	recs := make([]smp.OfferRecord, len(cands))
	for i, c := range cands {
		invs[i] = smp.Invitation{ID: "inv_" + uuid.NewString(), OrderID: o.ID, TechnicianID: c.TechnicianID, State: smp.InvitationSent,
			Wave: wave, DistanceM: c.DistanceM, SentAt: now, ExpiresAt: expires}
		recs[i] = smp.OfferRecord{InvitationID: invs[i].ID, OrderID: o.ID, TechnicianID: c.TechnicianID, Round: round, Wave: wave, Rank: i + 1,
			DistanceM: c.DistanceM, State: smp.InvitationSent, SentAt: now, ExpiresAt: expires,
			RankReason: fmt.Sprintf("#%d nearest free %s technician within %.0f km (%.0f m away)", i+1, skill, radiusM/1000, c.DistanceM)}
		excluded[c.TechnicianID] = true
	}
	// Invitations first: when Redis refuses them (out of memory) the
	// trace records no offer that was never made.
	if err := e.d.Invitations.Put(ctx, invs...); err != nil {
		return false, err
	}
	r.puts.Add(1)
	select {
	case <-r.closed:
		// The order was closed (cancelled, assigned by hand) while this
		// wave was chosen, and its closeRun may have run before the Put:
		// take the offers back unsent (the round's end deletes them).
		return true, nil
	default:
	}
	if err := e.d.Store.AddOffers(ctx, recs); err != nil {
		return false, err
	}
	for _, inv := range invs {
		e.m.offers.WithLabelValues(string(smp.InvitationSent)).Inc()
		e.d.Notifier.Notify(inv.TechnicianID, offerMessage(o, inv))
	}

	// Each wake-up (an answer here, the poll for answers given to another
	// process, the expiry) judges the wave against the clock: open offers
	// past their expiry are expired, accepts that never committed are lost
	// after AcceptTimeout. A step Redis refused (out of memory, INC-004)
	// is retried at the next wake-up, so the wave ends once Redis takes
	// writes again.
	timer := time.NewTimer(expires.Sub(e.cfg.Now()))
	defer timer.Stop()
	poll := time.NewTicker(e.cfg.RunPollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return true, nil
		case <-r.closed:
			return true, nil
		case <-r.changed:
		case <-poll.C:
		case <-timer.C:
		}
		busy, ended := e.judgeWave(ctx, o.ID, invs)
		if ended {
			return true, nil
		}
		if busy == 0 {
			return false, nil
		}
	}
}

// judgeWave reads a wave's invitations and settles those the clock has
// overtaken. busy counts the invitations still open or being accepted
// (or unreadable: Redis unreachable); ended says the order left
// 02_dispatching meanwhile.
func (e *Engine) judgeWave(ctx context.Context, orderID string, invs []smp.Invitation) (busy int, ended bool) {
	now := e.cfg.Now()
	techs := make([]string, len(invs))
	for i, inv := range invs {
		techs[i] = inv.TechnicianID
	}
	// The wave's invitations in one call (one HMGET on Redis).
	curs, err := e.d.Invitations.GetMany(ctx, orderID, techs)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("dispatch: read the wave's invitations; retrying", "order_id", orderID, "err", err)
		}
		return len(invs), false
	}
	for _, inv := range invs {
		cur, ok := curs[inv.TechnicianID]
		if !ok || cur.ID != inv.ID {
			continue // gone (the round was closed), or another round's
		}
		switch {
		case cur.State.Open():
			if now.Before(cur.ExpiresAt) || !e.expire(ctx, cur) {
				busy++
			}
		case cur.State == smp.InvitationAccepted:
			if now.Before(cur.ExpiresAt.Add(e.cfg.AcceptTimeout)) {
				busy++ // its outcome closes the run or signals it
				continue
			}
			lost, end := e.acceptLost(ctx, cur)
			if end {
				return busy, true
			}
			if !lost {
				busy++
			}
		}
	}
	return busy, false
}

// acceptLost settles an accept whose assignment never committed within
// AcceptTimeout (the process handling it died between the invitation's
// compare-and-set and the assignment): unless the order was assigned
// meanwhile (end), the invitation is expired and its technician told.
func (e *Engine) acceptLost(ctx context.Context, inv smp.Invitation) (lost, end bool) {
	o, err := e.d.Store.FindOrderByID(ctx, inv.OrderID)
	if err != nil {
		return false, false
	}
	if o.Stage != smp.StageDispatching {
		return false, true
	}
	_, ok, err := e.d.Invitations.CompareAndSet(ctx, inv.OrderID, inv.TechnicianID, []smp.InvitationState{smp.InvitationAccepted}, smp.InvitationExpired)
	if err != nil || !ok {
		return false, false
	}
	e.m.offers.WithLabelValues("lost").Inc()
	e.log.Warn("dispatch: an accepted offer was never assigned; treating it as lost", "order_id", inv.OrderID,
		"technician_id", inv.TechnicianID, "invitation_id", inv.ID, "accept_timeout", e.cfg.AcceptTimeout)
	if err := e.d.Store.UpdateOffer(ctx, inv.ID, smp.InvitationExpired, e.cfg.Now()); err != nil {
		e.log.Error("dispatch: record lost accept", "order_id", inv.OrderID, "err", err)
	}
	e.d.Notifier.Notify(inv.TechnicianID, smp.TechnicianMessage{Type: "offer_expired", OrderID: inv.OrderID, InvitationID: inv.ID})
	return true, false
}

func offerMessage(o *smp.Order, inv smp.Invitation) smp.TechnicianMessage {
	exp := inv.ExpiresAt
	return smp.TechnicianMessage{Type: "offer", OrderID: o.ID, InvitationID: inv.ID, Service: o.Service, City: o.City,
		Lat: o.Lat, Lng: o.Lng, Address: o.Address, DistanceM: inv.DistanceM, PriceVND: o.PriceVND, ExpiresAt: &exp}
}

func (e *Engine) signal(orderID string) {
	e.mu.Lock()
	r := e.runs[orderID]
	e.mu.Unlock()
	if r != nil {
		r.signal()
	}
}

// expire closes an open offer past its expiry; false when the store
// refused (the round tries again) or it was answered first.
func (e *Engine) expire(ctx context.Context, inv smp.Invitation) bool {
	_, ok, err := e.d.Invitations.CompareAndSet(ctx, inv.OrderID, inv.TechnicianID, []smp.InvitationState{smp.InvitationSent, smp.InvitationDelivered}, smp.InvitationExpired)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("dispatch: expire offer; retrying", "order_id", inv.OrderID, "technician_id", inv.TechnicianID, "err", err)
		}
		return false
	}
	if !ok {
		return false // answered or closed meanwhile: the next read sees how
	}
	e.m.offers.WithLabelValues(string(smp.InvitationExpired)).Inc()
	if err := e.d.Store.UpdateOffer(ctx, inv.ID, smp.InvitationExpired, e.cfg.Now()); err != nil {
		e.log.Error("dispatch: record expiry", "order_id", inv.OrderID, "err", err)
	}
	e.d.Notifier.Notify(inv.TechnicianID, smp.TechnicianMessage{Type: "offer_expired", OrderID: inv.OrderID, InvitationID: inv.ID})
	return true
}

// closeRun ends an order's dispatch: the local run, if any, stops; every
// open offer except the winner's is withdrawn (and its holder told why)
// and the invitations are deleted. The error is the deletion's (the
// withdrawals are best effort: the deletion ends every offer anyway); its
// callers retry a failed one (the order's event does it again).
func (e *Engine) closeRun(ctx context.Context, orderID, winner, why string) error {
	e.mu.Lock()
	r := e.runs[orderID]
	e.mu.Unlock()
	var puts int64
	if r != nil {
		// The round is closed first: a wave it stores from now on is
		// never sent (offer checks r.closed after its Put) and the
		// round's end deletes it; a wave stored before is withdrawn by
		// the deletion below. (Closed last, a wave stored and checked
		// between the deletion and the close went out for an order
		// already cancelled.) The waves stored so far are this
		// deletion's: once it succeeded, the round's end need not repeat
		// it (if it fails, the round's end still does: the accept path
		// does not retry).
		// The round's end waits for this deletion (r.cleaning) before it
		// asks whether one is still needed.
		r.cleaning.Lock()
		r.close()
		puts = r.puts.Load()
	}
	// One call (one script on Redis): the open offers but the winner's
	// withdrawn, and the order's invitations deleted.
	withdrawn, err := e.d.Invitations.CloseOrder(ctx, orderID, winner)
	if r != nil {
		if err == nil {
			r.markCleaned(puts)
		}
		r.cleaning.Unlock()
	}
	if err != nil {
		return fmt.Errorf("dispatch: close %s: %w", smp.InvitationsKey(orderID), err)
	}
	for _, inv := range withdrawn {
		e.m.offers.WithLabelValues(string(smp.InvitationWithdrawn)).Inc()
		e.d.Store.UpdateOffer(ctx, inv.ID, smp.InvitationWithdrawn, e.cfg.Now())
		e.d.Notifier.Notify(inv.TechnicianID, smp.TechnicianMessage{Type: why, OrderID: orderID, InvitationID: inv.ID})
	}
	return nil
}

// settledSet remembers the assignments whose bookkeeping (closeRun,
// setBusy) this process has done, so that their order.assigned event does
// not do it a second time. It holds at most its capacity: entries leave in
// the order they came, when the event takes them, when they are older
// than settledFor (another process's engine consumed the event), or when a
// newer one needs the room. Forgetting one early costs only that
// bookkeeping done twice (it is idempotent). Every call is O(1) amortised.
type settledSet struct {
	mu   sync.Mutex
	m    map[string]settledEntry
	ring []settledSlot // FIFO of the adds, oldest at head
	head int
	n    int
	seq  uint64
}

type settledEntry struct {
	tech string
	seq  uint64
}

type settledSlot struct {
	orderID string
	at      time.Time
	seq     uint64
}

const (
	settledFor = 10 * time.Minute
	// settledCap bounds the set: ten minutes of assignments at about
	// 27 a second, more than one engine makes.
	settledCap = 16384
)

func newSettledSet(capacity int) *settledSet {
	return &settledSet{m: make(map[string]settledEntry, capacity), ring: make([]settledSlot, capacity)}
}

func (s *settledSet) add(orderID, techID string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.n > 0 && (s.n == len(s.ring) || now.Sub(s.ring[s.head].at) > settledFor) {
		old := s.ring[s.head]
		if en, ok := s.m[old.orderID]; ok && en.seq == old.seq {
			delete(s.m, old.orderID)
		}
		s.ring[s.head] = settledSlot{}
		s.head = (s.head + 1) % len(s.ring)
		s.n--
	}
	s.seq++
	s.ring[(s.head+s.n)%len(s.ring)] = settledSlot{orderID, now, s.seq}
	s.n++
	s.m[orderID] = settledEntry{techID, s.seq}
}

// take reports (once) whether the assignment of orderID to techID was settled here.
func (s *settledSet) take(orderID, techID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	en, ok := s.m[orderID]
	if ok {
		delete(s.m, orderID)
	}
	return ok && en.tech == techID
}

// repeatsLastWave reports whether the trace's last wave already says
// what the empty wave w would: nobody found, for the same reason.
func repeatsLastWave(waves []smp.DispatchWave, w smp.DispatchWave) bool {
	if len(waves) == 0 {
		return false
	}
	last := waves[0]
	for _, x := range waves[1:] {
		if x.Round > last.Round || (x.Round == last.Round && x.Wave > last.Wave) {
			last = x
		}
	}
	return last.Candidates == 0 && last.Note == w.Note
}
