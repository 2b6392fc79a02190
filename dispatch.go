package smp

import (
	"context"
	"time"
)

// QueueKey is the name of a city's dispatch queue in every backend
// (the runbook's `LLEN dispatch:queue:HCMC`).
func QueueKey(city string) string { return "dispatch:queue:" + city }

// InvitationsKey is where an order's outstanding offers are kept.
func InvitationsKey(orderID string) string { return "dispatch:invitations:" + orderID }

// DispatchQueue is the per-city queue of orders waiting for the engine.
type DispatchQueue interface {
	// Push appends orderID to city's queue unless it is already queued.
	Push(ctx context.Context, city, orderID string) error
	// Pop removes and returns the oldest order of city's queue, waiting up
	// to wait for one; ok is false when none came.
	Pop(ctx context.Context, city string, wait time.Duration) (orderID string, ok bool, err error)
	// Len returns the queue's length.
	Len(ctx context.Context, city string) (int64, error)
}

// InvitationState of an offer to a technician.
type InvitationState string

const (
	InvitationSent      InvitationState = "sent"
	InvitationDelivered InvitationState = "delivered"
	InvitationAccepted  InvitationState = "accepted"
	InvitationDeclined  InvitationState = "declined"
	InvitationExpired   InvitationState = "expired"
	InvitationWithdrawn InvitationState = "withdrawn"
)

// Open reports whether the offer can still be accepted or declined.
func (s InvitationState) Open() bool { return s == InvitationSent || s == InvitationDelivered }

// Invitation is one offer of an order to one technician.
type Invitation struct {
	ID           string          `json:"invitation_id"`
	OrderID      string          `json:"order_id"`
	TechnicianID string          `json:"technician_id"`
	State        InvitationState `json:"state"`
	Wave         int             `json:"wave"`
	DistanceM    float64         `json:"distance_m"`
	SentAt       time.Time       `json:"sent_at"`
	ExpiresAt    time.Time       `json:"expires_at"`
}

// InvitationStore keeps the outstanding offers of each order
// (dispatch:invitations:{order_id}).
type InvitationStore interface {
	// Put stores new invitations of one order with state sent.
	Put(ctx context.Context, invs ...Invitation) error
	// Get returns one technician's invitation to an order.
	Get(ctx context.Context, orderID, technicianID string) (Invitation, bool, error)
	// GetMany returns the order's invitations of the given technicians
	// (a wave's), in one call; those absent are missing from the map.
	GetMany(ctx context.Context, orderID string, technicianIDs []string) (map[string]Invitation, error)
	// ForOrder returns all of an order's invitations.
	ForOrder(ctx context.Context, orderID string) ([]Invitation, error)
	// ForTechnician returns the open invitations held by a technician.
	ForTechnician(ctx context.Context, technicianID string) ([]Invitation, error)
	// CompareAndSet moves an invitation to state to if its state is one of
	// from; ok is false if it was not. inv is the invitation as found
	// (zero ID: missing), with state to when ok: one call, no read before
	// it (one script on Redis).
	CompareAndSet(ctx context.Context, orderID, technicianID string, from []InvitationState, to InvitationState) (inv Invitation, ok bool, err error)
	// Claim moves technicianID's open invitation to accepted, if it has
	// not expired at now and no other invitation of the order is accepted
	// already (its technician is being assigned), atomically, in one call:
	// the check that refuses the losers of an accept before any database
	// transaction (the store's conditional assignment stays the arbiter).
	// inv is the invitation as found (zero ID: missing), with state
	// accepted when ok. ok false: missing, not open, or open but expired
	// (holder ""), or holder's accepted invitation holds the order.
	Claim(ctx context.Context, orderID, technicianID string, now time.Time) (inv Invitation, ok bool, holder string, err error)
	// Held counts, for each technician, the open invitations they hold
	// that have not expired at now (the candidate check of a wave, in one
	// call); technicians holding none are absent.
	Held(ctx context.Context, technicianIDs []string, now time.Time) (map[string]int, error)
	// DeleteOrder removes all of an order's invitations.
	DeleteOrder(ctx context.Context, orderID string) error
	// CloseOrder ends an order's offers in one atomic call: every open
	// invitation except winner's moves to withdrawn, then all of the
	// order's invitations are removed. It returns the ones it withdrew.
	CloseOrder(ctx context.Context, orderID, winner string) (withdrawn []Invitation, err error)
	// Count returns how many invitations are open.
	Count(ctx context.Context) (int64, error)
}

// TechnicianPosition is a technician's live state in the geo index.
type TechnicianPosition struct {
	TechnicianID string
	City         string
	Lat, Lng     float64
	Skills       []string
	Online       bool
	Available    bool // the technician says they take jobs
	Busy         bool // holds an active order
	// Conn is the newest connection's id (set with Online): only its
	// close sets Online false, whatever process holds it.
	Conn      string
	UpdatedAt time.Time
}

// Candidate is a technician found by a search, with its distance.
type Candidate struct {
	TechnicianID string  `json:"technician_id"`
	DistanceM    float64 `json:"distance_m"`
}

// TechnicianFields names fields of a TechnicianPosition.
type TechnicianFields uint16

const (
	FieldCity      TechnicianFields = 1 << iota
	FieldSkills                     // Skills
	FieldLocation                   // Lat and Lng
	FieldOnline                     // Online
	FieldAvailable                  // Available
	FieldBusy                       // Busy
	FieldConn                       // Conn
	FieldUpdatedAt                  // UpdatedAt
	// AllTechnicianFields: every field (an upsert).
	AllTechnicianFields = FieldCity | FieldSkills | FieldLocation | FieldOnline | FieldAvailable | FieldBusy | FieldConn | FieldUpdatedAt
)

// TechnicianChange is a change of one technician's entry in the geo
// index, said as data so that a backend makes it atomically in one step
// (one script on Redis): the read, the conditions and the writes.
type TechnicianChange struct {
	// Set names the fields that take To's values; the others keep theirs.
	Set TechnicianFields
	To  TechnicianPosition
	// Create makes the entry when it is absent (with To's set fields);
	// without it, a change of an absent technician does nothing.
	Create bool
	// Remove deletes the entry (Set and To are ignored).
	Remove bool
	// IfConn, when not empty, makes the change only if the entry names no
	// connection or names IfConn: a newer connection's claim (another
	// process's, say) is left alone by an older connection's close.
	IfConn string
}

// Apply makes c on p, the entry (ok: present), as every GeoIndex does: it
// returns whether the entry is kept (false: absent, or removed).
func (c TechnicianChange) Apply(p *TechnicianPosition, ok bool) bool {
	switch {
	case c.Remove:
		return false
	case !ok && !c.Create:
		return false
	case ok && c.IfConn != "" && p.Conn != "" && p.Conn != c.IfConn:
		return true
	}
	t := c.To
	if c.Set&FieldCity != 0 {
		p.City = t.City
	}
	if c.Set&FieldSkills != 0 {
		p.Skills = append([]string(nil), t.Skills...)
	}
	if c.Set&FieldLocation != 0 {
		p.Lat, p.Lng = t.Lat, t.Lng
	}
	if c.Set&FieldOnline != 0 {
		p.Online = t.Online
	}
	if c.Set&FieldAvailable != 0 {
		p.Available = t.Available
	}
	if c.Set&FieldBusy != 0 {
		p.Busy = t.Busy
	}
	if c.Set&FieldConn != 0 {
		p.Conn = t.Conn
	}
	if c.Set&FieldUpdatedAt != 0 {
		p.UpdatedAt = t.UpdatedAt
	}
	return true
}

// GeoIndex finds technicians near a point.
type GeoIndex interface {
	Upsert(ctx context.Context, p TechnicianPosition) error
	// Update makes change on one technician's entry atomically (see
	// TechnicianChange.Apply).
	Update(ctx context.Context, technicianID string, change TechnicianChange) error
	Get(ctx context.Context, technicianID string) (TechnicianPosition, bool, error)
	// Nearby returns online, available, not busy technicians of city with
	// skill within radiusM of the point, nearest first, at most limit.
	Nearby(ctx context.Context, city, skill string, lat, lng, radiusM float64, limit int) ([]Candidate, error)
}

// Locker grants short-lived exclusive leases (for example one dispatcher
// per order across processes). A holder keeps its lease short and renews
// it while it works, so that a dead holder's lease ends in seconds.
type Locker interface {
	// TryLock takes key for ttl; ok is false if someone else holds it.
	TryLock(ctx context.Context, key, owner string, ttl time.Duration) (ok bool, err error)
	// Renew extends owner's lease of key to ttl from now. ok is false when
	// owner no longer holds it (it lapsed, or another owner took it): the
	// former holder must then stop acting under the lease (fencing).
	// Renewing never grows memory, so Redis allows it when full.
	Renew(ctx context.Context, key, owner string, ttl time.Duration) (ok bool, err error)
	// Unlock releases key if owner holds it (nothing otherwise).
	Unlock(ctx context.Context, key, owner string) error
}
