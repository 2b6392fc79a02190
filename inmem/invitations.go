package inmem

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"smp"
)

// Invitations is an in-process smp.InvitationStore.
type Invitations struct {
	mu      sync.Mutex
	byOrder map[string]map[string]*smp.Invitation // order -> technician -> invitation
	byTech  map[string]map[string]bool            // technician -> orders
}

var _ smp.InvitationStore = (*Invitations)(nil)

// NewInvitations returns an empty store.
func NewInvitations() *Invitations {
	return &Invitations{byOrder: map[string]map[string]*smp.Invitation{}, byTech: map[string]map[string]bool{}}
}

// Put stores invitations.
func (s *Invitations) Put(_ context.Context, invs ...smp.Invitation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, inv := range invs {
		m := s.byOrder[inv.OrderID]
		if m == nil {
			m = map[string]*smp.Invitation{}
			s.byOrder[inv.OrderID] = m
		}
		c := inv
		m[inv.TechnicianID] = &c
		if s.byTech[inv.TechnicianID] == nil {
			s.byTech[inv.TechnicianID] = map[string]bool{}
		}
		s.byTech[inv.TechnicianID][inv.OrderID] = true
	}
	return nil
}

// Get returns one invitation.
func (s *Invitations) Get(_ context.Context, orderID, technicianID string) (smp.Invitation, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if inv, ok := s.byOrder[orderID][technicianID]; ok {
		return *inv, true, nil
	}
	return smp.Invitation{}, false, nil
}

// ForOrder returns an order's invitations, in wave order.
func (s *Invitations) ForOrder(_ context.Context, orderID string) ([]smp.Invitation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []smp.Invitation
	for _, inv := range s.byOrder[orderID] {
		out = append(out, *inv)
	}
	sortInvitations(out)
	return out, nil
}

// sortInvitations orders invitations as they were sent (then by id).
func sortInvitations(out []smp.Invitation) {
	sort.Slice(out, func(i, j int) bool {
		return out[i].SentAt.Before(out[j].SentAt) || out[i].SentAt.Equal(out[j].SentAt) && out[i].ID < out[j].ID
	})
}

// ForTechnician returns a technician's open invitations.
func (s *Invitations) ForTechnician(_ context.Context, technicianID string) ([]smp.Invitation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []smp.Invitation
	for orderID := range s.byTech[technicianID] {
		if inv, ok := s.byOrder[orderID][technicianID]; ok && inv.State.Open() {
			out = append(out, *inv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SentAt.Before(out[j].SentAt) })
	return out, nil
}

// CompareAndSet moves an invitation's state if it is one of from.
func (s *Invitations) CompareAndSet(_ context.Context, orderID, technicianID string, from []smp.InvitationState, to smp.InvitationState) (smp.Invitation, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.byOrder[orderID][technicianID]
	if !ok {
		return smp.Invitation{}, false, nil
	}
	if !slices.Contains(from, inv.State) {
		return *inv, false, nil
	}
	inv.State = to
	return *inv, true, nil
}

// Claim moves the technician's open, unexpired invitation to accepted
// unless another invitation of the order is accepted.
func (s *Invitations) Claim(_ context.Context, orderID, technicianID string, now time.Time) (smp.Invitation, bool, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inv, ok := s.byOrder[orderID][technicianID]
	if !ok {
		return smp.Invitation{}, false, "", nil
	}
	if !inv.State.Open() || !now.Before(inv.ExpiresAt) {
		return *inv, false, "", nil
	}
	for tech, other := range s.byOrder[orderID] {
		if tech != technicianID && other.State == smp.InvitationAccepted {
			return *inv, false, tech, nil
		}
	}
	inv.State = smp.InvitationAccepted
	return *inv, true, "", nil
}

// GetMany returns the order's invitations of the given technicians.
func (s *Invitations) GetMany(_ context.Context, orderID string, technicianIDs []string) (map[string]smp.Invitation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]smp.Invitation, len(technicianIDs))
	for _, t := range technicianIDs {
		if inv, ok := s.byOrder[orderID][t]; ok {
			out[t] = *inv
		}
	}
	return out, nil
}

// CloseOrder withdraws the order's open invitations except winner's and
// removes them all, atomically.
func (s *Invitations) CloseOrder(_ context.Context, orderID, winner string) ([]smp.Invitation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []smp.Invitation
	for tech, inv := range s.byOrder[orderID] {
		if tech != winner && inv.State.Open() {
			inv.State = smp.InvitationWithdrawn
			out = append(out, *inv)
		}
		delete(s.byTech[tech], orderID)
		if len(s.byTech[tech]) == 0 {
			delete(s.byTech, tech)
		}
	}
	delete(s.byOrder, orderID)
	sortInvitations(out)
	return out, nil
}

// Held counts each technician's open invitations not expired at now.
func (s *Invitations) Held(_ context.Context, technicianIDs []string, now time.Time) (map[string]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, t := range technicianIDs {
		for orderID := range s.byTech[t] {
			if inv, ok := s.byOrder[orderID][t]; ok && inv.State.Open() && now.Before(inv.ExpiresAt) {
				out[t]++
			}
		}
	}
	return out, nil
}

// DeleteOrder removes an order's invitations.
func (s *Invitations) DeleteOrder(_ context.Context, orderID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tech := range s.byOrder[orderID] {
		delete(s.byTech[tech], orderID)
		if len(s.byTech[tech]) == 0 {
			delete(s.byTech, tech)
		}
	}
	delete(s.byOrder, orderID)
	return nil
}

// Count returns the number of open invitations.
func (s *Invitations) Count(_ context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, m := range s.byOrder {
		for _, inv := range m {
			if inv.State.Open() {
				n++
			}
		}
	}
	return n, nil
}
