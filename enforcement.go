package smp

import (
	"context"
	"fmt"
	"time"
)

// Enforcement on partners' wallets (runbook INC-011, issue 18): a
// security officer's freeze or soft block of a wallet, the velocity guard
// rails compiled into the ledger, large-value reports (compliance), the
// notes kept on a partner's admin users, and the per-partner IP allowlist
// of partner admin actions.
//
// The ledger checks a wallet's control and the guard rails in
// WalletTx.PostWallet after it has locked the chain's head row, and a
// control changes (EnforcementTx.SetWalletControl) only under that same
// lock, so a posting is judged against the control committed last: no
// guarded posting commits after a freeze does.

// WalletControlState is what security set on a partner's wallet.
type WalletControlState string

// Control states.
const (
	// WalletOpen: no control (never set, unfrozen or lifted).
	WalletOpen WalletControlState = "open"
	// WalletFrozen refuses top-ups (a top-up paid at the gateway is held,
	// not credited) and every debit other than SMP's commission claims.
	WalletFrozen WalletControlState = "frozen"
	// WalletSoftBlocked caps the guarded postings at SoftBlockCapVND per
	// rolling SoftBlockWindow, until lifted or SoftBlockLapse after it
	// was set.
	WalletSoftBlocked WalletControlState = "soft_blocked"
)

// The soft block (runbook INC-011 scenario 3: "limit wallet ops to 1M
// VND/day until investigation done (24-48h)"). Compiled in: no request
// carries another cap or duration.
const (
	SoftBlockCapVND = 1_000_000
	SoftBlockWindow = 24 * time.Hour
	SoftBlockLapse  = 48 * time.Hour
)

// The velocity guard rails (runbook INC-011 prevention: "velocity limits
// hard-coded as guard rails, no override even by Super Admin"): compiled
// constants that no role, the admin role included, can raise or lift;
// nothing in SMP changes them (ops.ChangeGuardRails refuses everyone).
// The fraud rules flag more than 5 top-ups in 10 minutes; the rail stops
// the 11th.
const (
	// VelocityMaxTopups top-ups credited to one partner per VelocityWindow.
	VelocityMaxTopups = 10
	VelocityWindow    = 10 * time.Minute
	// VelocityMaxTopupVNDPerDay credited by top-ups to one partner per
	// rolling 24 hours.
	VelocityMaxTopupVNDPerDay = 2_000_000_000
)

// GuardRails are the compiled velocity limits, as the API shows them.
type GuardRails struct {
	MaxTopups            int    `json:"max_topups"`
	Window               string `json:"window"`
	MaxTopupVNDPerDay    int64  `json:"max_topup_vnd_per_day"`
	SoftBlockCapVND      int64  `json:"soft_block_cap_vnd"`
	SoftBlockWindow      string `json:"soft_block_window"`
	SoftBlockLapse       string `json:"soft_block_lapse"`
	ChangeableByAnyRole  bool   `json:"changeable_by_any_role"`
	LargeValueDefaultVND int64  `json:"large_value_default_vnd"`
}

// CompiledGuardRails returns the guard rails.
func CompiledGuardRails() GuardRails {
	return GuardRails{MaxTopups: VelocityMaxTopups, Window: VelocityWindow.String(), MaxTopupVNDPerDay: VelocityMaxTopupVNDPerDay,
		SoftBlockCapVND: SoftBlockCapVND, SoftBlockWindow: SoftBlockWindow.String(), SoftBlockLapse: SoftBlockLapse.String(),
		LargeValueDefaultVND: LargeValueThresholdVND}
}

// LargeValueThresholdVND is the default large-value reporting threshold of
// one top-up: 400,000,000 VND (Decision 11/2023/QĐ-TTg, which replaced the
// 300,000,000 the runbook still names).
const LargeValueThresholdVND = 400_000_000

// WalletControl is a partner wallet's control: a row of wallet_controls.
type WalletControl struct {
	PartnerID string             `json:"partner_id"`
	State     WalletControlState `json:"state"`
	Reason    string             `json:"reason"`
	Actor     string             `json:"actor"`
	Since     time.Time          `json:"since"`
	// Until: when a soft block lapses (zero otherwise).
	Until time.Time `json:"until,omitzero"`
	// ChainSeq is the ledger's last seq when the control committed: every
	// later entry was judged against it.
	ChainSeq  int64     `json:"chain_seq"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Effective is the state in force at t: a soft block past its Until is
// open.
func (c *WalletControl) Effective(t time.Time) WalletControlState {
	if c == nil || c.State == "" {
		return WalletOpen
	}
	if c.State == WalletSoftBlocked && !c.Until.IsZero() && !t.Before(c.Until) {
		return WalletOpen
	}
	return c.State
}

// Guarded reports whether a control holds p back: top-ups, and every
// debit of the wallet but SMP's own commission claims. Credits other than
// top-ups (an adjustment in the partner's favour, a reversal of a
// commission) and commissions pass.
func Guarded(p *Posting) bool {
	switch {
	case p.Type == WalletTopup:
		return true
	case p.Type == WalletCommission:
		return false
	}
	return p.AmountVND < 0
}

// Rules a refusal names.
const (
	RuleFrozen         = "frozen"
	RuleSoftBlockCap   = "soft_block_cap"
	RuleVelocityCount  = "velocity_topups"
	RuleVelocityAmount = "velocity_amount"
)

// WalletRefused is the ledger refusing a posting under a control or a
// guard rail. Its code is EFORBIDDEN (errors.As finds the *Error); Rule
// says which (RuleFrozen, RuleSoftBlockCap, RuleVelocity…). A top-up that
// a gateway already took is held, not refused (wallet.ApplyIPN).
type WalletRefused struct {
	Rule    string
	Message string
}

func (e *WalletRefused) Error() string { return e.Message }

// Unwrap gives the coded error.
func (e *WalletRefused) Unwrap() error { return &Error{Code: EFORBIDDEN, Message: e.Message} }

// WalletUsage is what the ledger counts of a partner before judging a
// guarded posting (its own entries, read under the head lock).
type WalletUsage struct {
	// GuardedVND: the guarded postings' amounts since the soft block's
	// window start.
	GuardedVND int64
	// Topups and TopupVND: the top-ups of the velocity windows.
	Topups   int
	TopupVND int64
}

// CheckPosting judges p against the control c (nil: none) and the guard
// rails, given what the partner already did (u). nil when it may post.
func CheckPosting(c *WalletControl, p *Posting, u WalletUsage) error {
	if !Guarded(p) {
		return nil
	}
	amount := p.AmountVND
	if amount < 0 {
		amount = -amount
	}
	switch c.Effective(p.At) {
	case WalletFrozen:
		return &WalletRefused{Rule: RuleFrozen, Message: fmt.Sprintf("the wallet of partner %s is frozen: %s refused", p.PartnerID, p.Type)}
	case WalletSoftBlocked:
		if u.GuardedVND+amount > SoftBlockCapVND {
			return &WalletRefused{Rule: RuleSoftBlockCap, Message: fmt.Sprintf(
				"the wallet of partner %s is soft-blocked: %d VND in 24 h is its cap (%d VND used, %d asked)",
				p.PartnerID, int64(SoftBlockCapVND), u.GuardedVND, amount)}
		}
	}
	if p.Type == WalletTopup {
		if u.Topups+1 > VelocityMaxTopups {
			return &WalletRefused{Rule: RuleVelocityCount, Message: fmt.Sprintf(
				"guard rail: at most %d top-ups per %s for partner %s", VelocityMaxTopups, VelocityWindow, p.PartnerID)}
		}
		if u.TopupVND+amount > VelocityMaxTopupVNDPerDay {
			return &WalletRefused{Rule: RuleVelocityAmount, Message: fmt.Sprintf(
				"guard rail: at most %d VND of top-ups per 24 h for partner %s", int64(VelocityMaxTopupVNDPerDay), p.PartnerID)}
		}
	}
	return nil
}

// SoftBlockWindowStart is where a soft block's rolling window starts for a
// posting at t (inclusive): 24 hours back, but not before the block was
// set.
func SoftBlockWindowStart(c *WalletControl, t time.Time) time.Time {
	from := t.Add(-SoftBlockWindow)
	if c != nil && c.Since.After(from) {
		from = c.Since
	}
	return from
}

// ComplianceReport is a large-value report (runbook INC-011: report to the
// State Bank a single transaction above the threshold), created in the
// posting's transaction: a row of compliance_reports.
type ComplianceReport struct {
	ID           string    `json:"id"` // "large_value:<posting id>"
	Kind         string    `json:"kind"`
	PartnerID    string    `json:"partner_id"`
	PostingID    string    `json:"posting_id"`
	AmountVND    int64     `json:"amount_vnd"`
	ThresholdVND int64     `json:"threshold_vnd"`
	Status       string    `json:"status"`
	CreatedAt    time.Time `json:"created_at"`
}

// Compliance report kinds and statuses.
const (
	ReportLargeValue = "large_value"
	ReportOpen       = "open"
)

// ComplianceFilter selects reports; zero fields select everything.
type ComplianceFilter struct {
	PartnerID string
	From, To  time.Time // created in [From, To)
	Limit     int       // 0, negative or above 10000 means 1000
}

// PartnerAdminUser is one of a partner's admin users
// (partner_admin_users): the runbook keeps an unfreeze's note in its
// notes. The partner's own token is user "owner".
type PartnerAdminUser struct {
	PartnerID string    `json:"partner_id"`
	UserID    string    `json:"user_id"`
	Name      string    `json:"name,omitempty"`
	Notes     string    `json:"notes"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PartnerOwnerUser is the user id of a partner's own token holder.
const PartnerOwnerUser = "owner"

// EnforcementStore reads the controls, reports, notes and allowlists.
type EnforcementStore interface {
	// FindWalletControl returns a partner's control as last committed;
	// ENOTFOUND when none was ever set.
	FindWalletControl(ctx context.Context, partnerID string) (*WalletControl, error)
	// FindWalletControls lists every control ever set, by partner. No codes.
	FindWalletControls(ctx context.Context) ([]*WalletControl, error)
	// FindComplianceReports lists reports, oldest first. No codes.
	FindComplianceReports(ctx context.Context, f ComplianceFilter) ([]*ComplianceReport, error)
	// FindPartnerAdminUsers lists a partner's admin users. No codes.
	FindPartnerAdminUsers(ctx context.Context, partnerID string) ([]*PartnerAdminUser, error)
	// FindPartnerIPAllowlist returns the addresses and networks (CIDR)
	// a partner's admin actions may come from; empty: any. No codes.
	FindPartnerIPAllowlist(ctx context.Context, partnerID string) ([]string, error)
}

// EnforcementTx is their writes, committed with their audit entries.
type EnforcementTx interface {
	// SetWalletControl locks the ledger's head (as PostWallet does), sets
	// c.ChainSeq to its seq and writes c as the partner's control,
	// returning the previous one (nil when none). ENOTFOUND for an unknown
	// partner.
	SetWalletControl(ctx context.Context, c *WalletControl) (prev *WalletControl, err error)
	// LockWalletControl locks the ledger's head (as SetWalletControl
	// does) and returns the partner's control (nil when none) with a
	// locking read: what a change decided on it replaces. ENOTFOUND for an
	// unknown partner.
	LockWalletControl(ctx context.Context, partnerID string) (*WalletControl, error)
	// AppendPartnerNote appends a line to the notes of a partner's admin
	// user (created if new). ENOTFOUND for an unknown partner; EINVALID
	// when the notes would exceed 64 KiB.
	AppendPartnerNote(ctx context.Context, partnerID, userID, line string, at time.Time) error
	// InsertComplianceReport records a report; ECONFLICT when its id
	// exists.
	InsertComplianceReport(ctx context.Context, r *ComplianceReport) error
	// SetPartnerIPAllowlist replaces a partner's allowlist (empty removes
	// it) and returns the previous one. ENOTFOUND for an unknown partner.
	SetPartnerIPAllowlist(ctx context.Context, partnerID string, cidrs []string, actor string, at time.Time) (prev []string, err error)
}
