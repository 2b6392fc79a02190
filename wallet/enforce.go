package wallet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"smp"
)

// Enforcement (runbook INC-011): freezing, soft-blocking and unfreezing a
// partner's wallet, each audited (who, when, why) in the transaction that
// writes the control. The ledger itself judges every posting against the
// control under the chain's head lock (smp.EnforcementTx); these methods
// only set it. The caller (ops) checks the principal's permission; the
// fraud detector may call them directly with SystemFraudDetector.

// SystemFraudDetector is the principal of the fraud detector acting on
// its own (issue 18): its freezes and soft blocks are audited under it.
var SystemFraudDetector = smp.Principal{Name: "system:fraud-detector", Role: smp.RoleSecurity}

// Audit actions of enforcement.
const (
	ActionFreeze         = "wallet.freeze"
	ActionUnfreeze       = "wallet.unfreeze"
	ActionSoftBlock      = "wallet.soft_block"
	ActionLiftSoftBlock  = "wallet.lift_soft_block"
	ActionReleaseHeld    = "wallet.release_held"
	EventWalletFrozen    = "partner.wallet_frozen"
	EventWalletUnfrozen  = "partner.wallet_unfrozen"
	EventWalletSoftBlock = "partner.wallet_soft_blocked"
	EventWalletLifted    = "partner.wallet_soft_block_lifted"
	// EventTopupHeld: a top-up the gateway took was held, not credited
	// (payments.events).
	EventTopupHeld = "payment.wallet_topup_held"
)

// ControlResult is what a freeze, unfreeze, soft block or lift did.
type ControlResult struct {
	Control *smp.WalletControl `json:"control"`
	// Previous is the state before (open when none).
	Previous smp.WalletControlState `json:"previous"`
	// Changed is false when the wallet was already so (nothing written,
	// nothing audited).
	Changed bool `json:"changed"`
	// Released: held top-ups an unfreeze credited; StillHeld: those a
	// guard rail still refused (they stay held).
	Released  []string `json:"released,omitempty"`
	StillHeld []string `json:"still_held,omitempty"`
}

// WalletControlView is a partner's control as the API shows it.
type WalletControlView struct {
	PartnerID string                  `json:"partner_id"`
	State     smp.WalletControlState  `json:"state"` // in force now
	Control   *smp.WalletControl      `json:"control,omitempty"`
	Held      []*smp.Topup            `json:"held_topups"` // held or being reversed
	Notes     []*smp.PartnerAdminUser `json:"admin_users"`
}

// FindControl returns a partner's control, its held top-ups and the notes
// of its admin users.
func (s *Service) FindControl(ctx context.Context, partnerID string) (*WalletControlView, error) {
	v := &WalletControlView{PartnerID: partnerID, State: smp.WalletOpen, Held: []*smp.Topup{}, Notes: []*smp.PartnerAdminUser{}}
	c, err := s.store.FindWalletControl(ctx, partnerID)
	if err != nil && smp.ErrorCode(err) != smp.ENOTFOUND {
		return nil, err
	}
	if c != nil {
		v.Control, v.State = c, c.Effective(s.cfg.Now())
	}
	held, err := s.FindHeld(ctx, partnerID)
	if err != nil {
		return nil, err
	}
	v.Held = append(v.Held, held...)
	users, err := s.store.FindPartnerAdminUsers(ctx, partnerID)
	if err != nil {
		return nil, err
	}
	v.Notes = append(v.Notes, users...)
	return v, nil
}

// FindControls lists every partner's control ever set, with the state in
// force now.
func (s *Service) FindControls(ctx context.Context) ([]*WalletControlView, error) {
	cs, err := s.store.FindWalletControls(ctx)
	if err != nil {
		return nil, err
	}
	out := []*WalletControlView{}
	now := s.cfg.Now()
	for _, c := range cs {
		out = append(out, &WalletControlView{PartnerID: c.PartnerID, State: c.Effective(now), Control: c})
	}
	return out, nil
}

// Freeze freezes a partner's wallet: top-ups are refused (one the gateway
// already took is held) and every debit but SMP's commission claims.
// Audited as wallet.freeze. A frozen wallet is left as it is (Changed
// false). ENOTFOUND for an unknown partner, EINVALID without a reason.
func (s *Service) Freeze(ctx context.Context, p smp.Principal, partnerID, reason string) (*ControlResult, error) {
	return s.setControl(ctx, p, partnerID, smp.WalletFrozen, reason, ActionFreeze, EventWalletFrozen, nil)
}

// FreezeTx is Freeze in tx, the caller's transaction: the fraud
// detector's freeze commits with its decision.
//
// An error for which Refused is true was found before anything was
// written: tx is untouched and may commit. Any other error may follow
// writes: the caller must not commit tx.
func (s *Service) FreezeTx(ctx context.Context, tx smp.Tx, p smp.Principal, partnerID, reason string) (*ControlResult, error) {
	reason, err := controlReason(reason)
	if err != nil {
		return nil, refusal{err}
	}
	return s.setControlTx(ctx, tx, p, partnerID, smp.WalletFrozen, reason, ActionFreeze, EventWalletFrozen, nil)
}

// SoftBlockTx is SoftBlock in tx, the caller's transaction; its errors
// are FreezeTx's.
func (s *Service) SoftBlockTx(ctx context.Context, tx smp.Tx, p smp.Principal, partnerID, reason string) (*ControlResult, error) {
	reason, err := controlReason(reason)
	if err != nil {
		return nil, refusal{err}
	}
	return s.setControlTx(ctx, tx, p, partnerID, smp.WalletSoftBlocked, reason, ActionSoftBlock, EventWalletSoftBlock, notFrozen(partnerID))
}

func notFrozen(partnerID string) func(smp.WalletControlState) error {
	return func(prev smp.WalletControlState) error {
		if prev == smp.WalletFrozen {
			return smp.Errorf(smp.ECONFLICT, "the wallet of partner %s is frozen: unfreeze it first", partnerID)
		}
		return nil
	}
}

// SoftBlock caps the partner's guarded postings at smp.SoftBlockCapVND
// per rolling 24 hours, until lifted or 48 hours later. Audited as
// wallet.soft_block. ECONFLICT on a frozen wallet (unfreeze first).
func (s *Service) SoftBlock(ctx context.Context, p smp.Principal, partnerID, reason string) (*ControlResult, error) {
	return s.setControl(ctx, p, partnerID, smp.WalletSoftBlocked, reason, ActionSoftBlock, EventWalletSoftBlock, notFrozen(partnerID))
}

// LiftSoftBlock ends a soft block before it lapses. Audited as
// wallet.lift_soft_block. ECONFLICT on a frozen wallet.
func (s *Service) LiftSoftBlock(ctx context.Context, p smp.Principal, partnerID, reason string) (*ControlResult, error) {
	return s.setControl(ctx, p, partnerID, smp.WalletOpen, reason, ActionLiftSoftBlock, EventWalletLifted, func(prev smp.WalletControlState) error {
		if prev == smp.WalletFrozen {
			return smp.Errorf(smp.ECONFLICT, "the wallet of partner %s is frozen: unfreeze it instead", partnerID)
		}
		return nil
	})
}

// Unfreeze lifts a freeze (runbook INC-011 scenario 2, a false positive):
// the note is appended to partner_admin_users.notes (the partner's owner
// user), the wallet is open again, and the top-ups held while it was
// frozen are credited in the same transaction (a guard rail may still
// hold one: StillHeld). Audited as wallet.unfreeze with the note as the
// reason. ECONFLICT when the wallet is not frozen, EINVALID without a
// note, ENOTFOUND.
func (s *Service) Unfreeze(ctx context.Context, p smp.Principal, partnerID, note string) (*ControlResult, error) {
	held, err := smp.AllTopups(ctx, s.store, smp.TopupFilter{PartnerID: partnerID, Status: smp.TopupHeld})
	if err != nil {
		return nil, err
	}
	var released, still []string
	var posted []Posted
	res, err := s.setControl(ctx, p, partnerID, smp.WalletOpen, note, ActionUnfreeze, EventWalletUnfrozen, func(prev smp.WalletControlState) error {
		if prev != smp.WalletFrozen {
			return smp.Errorf(smp.ECONFLICT, "the wallet of partner %s is not frozen", partnerID)
		}
		return nil
	}, func(tx smp.Tx, now time.Time) error {
		released, still, posted = nil, nil, nil
		line := fmt.Sprintf("%s unfreeze by %s: %s", now.UTC().Format(time.RFC3339), p.Name, strings.TrimSpace(note))
		if err := tx.AppendPartnerNote(ctx, partnerID, smp.PartnerOwnerUser, line, now); err != nil {
			return err
		}
		for _, h := range held {
			out, err := s.releaseTx(ctx, tx, h.TxnRef, "security:"+p.Name, now)
			var refused *smp.WalletRefused
			switch {
			case errors.As(err, &refused):
				still = append(still, h.TxnRef)
			case err != nil:
				return err
			case out != nil:
				released = append(released, h.TxnRef)
				posted = append(posted, *out)
			}
		}
		return nil
	})
	for _, o := range posted {
		s.count(smp.WalletTopup, nil, o.Duplicate)
	}
	if res != nil {
		res.Released, res.StillHeld = released, still
	}
	return res, err
}

// releaseTx credits a held top-up in tx (nil when it is no longer held).
// A refusal by the ledger (a *smp.WalletRefused) leaves it held with the
// rule that held it.
func (s *Service) releaseTx(ctx context.Context, tx smp.Tx, ref, actor string, now time.Time) (*Posted, error) {
	t, err := tx.TopupForUpdate(ctx, smp.GatewayVNPay, ref)
	if err != nil {
		return nil, err
	}
	if t.Status != smp.TopupHeld {
		return nil, nil
	}
	out, err := s.PostTx(ctx, tx, smp.Posting{ID: smp.GatewayPostingID(smp.GatewayVNPay, ref), Type: smp.WalletTopup, PartnerID: t.PartnerID,
		AmountVND: t.AmountVND, Gateway: smp.GatewayVNPay, GatewayRef: ref, Actor: actor, At: now}, t.ClientIP)
	var refused *smp.WalletRefused
	if errors.As(err, &refused) {
		t.HoldReason, t.UpdatedAt = refused.Rule, now
		if uerr := tx.UpdateTopup(ctx, t); uerr != nil {
			return nil, uerr
		}
		return nil, err
	} else if err != nil {
		return nil, err
	}
	t.Status, t.PostingID, t.HoldReason, t.UpdatedAt = smp.TopupConfirmed, out.Entry.ID, "", now
	return &out, tx.UpdateTopup(ctx, t)
}

// setControl writes a control (under the ledger's head lock), its audit
// entry and its event in one transaction (setControlTx).
func (s *Service) setControl(ctx context.Context, p smp.Principal, partnerID string, state smp.WalletControlState, reason, action, evType string,
	check func(prev smp.WalletControlState) error, more ...func(smp.Tx, time.Time) error) (*ControlResult, error) {
	reason, err := controlReason(reason)
	if err != nil {
		return nil, err
	}
	var res *ControlResult
	err = s.store.InTx(ctx, func(tx smp.Tx) error {
		var err error
		res, err = s.setControlTx(ctx, tx, p, partnerID, state, reason, action, evType, check, more...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// refusal is a control change refused before anything was written.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// Refused reports whether err is a control change's refusal found before
// it wrote anything (an unknown partner, a reason out of bounds, a change
// its check refuses): the caller's transaction is as it was.
func Refused(err error) bool {
	var r refusal
	return errors.As(err, &r)
}

func controlReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if len(reason) < 3 {
		return "", smp.Errorf(smp.EINVALID, "a reason (or note) of at least 3 characters is required")
	}
	return reason, smp.CheckLen("reason", reason, smp.MaxReason)
}

// setControlTx is setControl in tx, the caller's: the control in force is
// read under the ledger's head lock (LockWalletControl); check may refuse
// the change given it; a wallet already in state is left as it is
// (nothing written, Changed false); else the control, what more writes,
// the audit entry and the event.
func (s *Service) setControlTx(ctx context.Context, tx smp.Tx, p smp.Principal, partnerID string, state smp.WalletControlState, reason, action, evType string,
	check func(prev smp.WalletControlState) error, more ...func(smp.Tx, time.Time) error) (*ControlResult, error) {
	now := s.cfg.Now()
	prev, err := tx.LockWalletControl(ctx, partnerID)
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		return nil, refusal{err}
	} else if err != nil {
		return nil, err
	}
	prevState := prev.Effective(now)
	if check != nil {
		if err := check(prevState); err != nil {
			return nil, refusal{err}
		}
	}
	if prevState == state {
		return &ControlResult{Control: prev, Previous: prevState}, nil // the caller sees the control in force
	}
	c := &smp.WalletControl{PartnerID: partnerID, State: state, Reason: reason, Actor: p.Name, Since: now, UpdatedAt: now}
	if state == smp.WalletSoftBlocked {
		c.Until = now.Add(smp.SoftBlockLapse)
	}
	if _, err := tx.SetWalletControl(ctx, c); err != nil {
		return nil, err
	}
	for _, f := range more {
		if err := f(tx, now); err != nil {
			return nil, err
		}
	}
	before, _ := json.Marshal(map[string]any{"state": prevState})
	after, _ := json.Marshal(map[string]any{"state": state, "chain_seq": c.ChainSeq, "until": c.Until})
	if err := tx.AddAudit(ctx, smp.AuditEntry{At: now.UTC(), Actor: p.Name, Role: p.Role, Action: action, Target: "partner:" + partnerID,
		Before: string(before), After: string(after), Reason: reason}); err != nil {
		return nil, err
	}
	data, _ := json.Marshal(map[string]any{"partner_id": partnerID, "state": state, "previous": prevState, "actor": p.Name,
		"chain_seq": c.ChainSeq, "until": c.Until})
	if err := tx.AddEvent(ctx, smp.Event{ID: controlEventID(evType, partnerID, now), Type: evType,
		SchemaVersion: smp.EventSchemaVersion, AggregateID: partnerID, OccurredAt: now, Data: data}); err != nil {
		return nil, err
	}
	return &ControlResult{Control: c, Previous: prevState, Changed: true}, nil
}

// heldEvent announces a held top-up on payments.events.
func heldEvent(t *smp.Topup, rule string, now time.Time) smp.Event {
	data, _ := json.Marshal(map[string]any{"topup_id": t.ID, "partner_id": t.PartnerID, "gateway": t.Gateway, "txn_ref": t.TxnRef,
		"amount_vnd": t.AmountVND, "rule": rule, "client_ip": t.ClientIP})
	return smp.Event{ID: "held-" + t.ID, Type: EventTopupHeld, SchemaVersion: smp.EventSchemaVersion, AggregateID: t.PartnerID,
		OccurredAt: now, Data: data}
}

// FindComplianceReports lists the large-value reports.
func (s *Service) FindComplianceReports(ctx context.Context, f smp.ComplianceFilter) ([]*smp.ComplianceReport, error) {
	rs, err := s.store.FindComplianceReports(ctx, f)
	if rs == nil {
		rs = []*smp.ComplianceReport{}
	}
	return rs, err
}

// LargeValueVND is the large-value reporting threshold in force.
func (s *Service) LargeValueVND() int64 { return s.cfg.LargeValueVND }

// FindIPAllowlist returns a partner's IP allowlist (empty: any address).
func (s *Service) FindIPAllowlist(ctx context.Context, partnerID string) ([]string, error) {
	l, err := s.store.FindPartnerIPAllowlist(ctx, partnerID)
	if l == nil {
		l = []string{}
	}
	return l, err
}

// CheckPartnerIP refuses a partner's own admin action (its token on
// /v1/partners/{id}/…) from an address outside its allowlist: EFORBIDDEN
// with a message naming the address, and an audit entry
// (partner.ip_refused) so security sees the attempt. allowed decides
// membership (ops.AllowedIP).
func (s *Service) CheckPartnerIP(ctx context.Context, partnerID, ip, action string, allowed func([]string, string) bool) error {
	list, err := s.store.FindPartnerIPAllowlist(ctx, partnerID)
	if err != nil {
		return err
	}
	if allowed(list, ip) {
		return nil
	}
	now := s.cfg.Now()
	after, _ := json.Marshal(map[string]any{"ip": ip, "action": action})
	if err := s.store.InTx(ctx, func(tx smp.Tx) error {
		return tx.AddAudit(ctx, smp.AuditEntry{At: now.UTC(), Actor: "partner:" + partnerID, Role: smp.Role("partner"), Action: "partner.ip_refused",
			Target: "partner:" + partnerID, After: string(after), Reason: "address not in the partner's IP allowlist"})
	}); err != nil {
		return err
	}
	return smp.Errorf(smp.EFORBIDDEN, "address %s is not in the IP allowlist of partner %s: partner admin actions are refused from it", ip, partnerID)
}

// controlEventID names a control's event: its type, partner and time
// when that fits an event id (64 characters), else a UUID. A partner id
// over 16 characters made the id too long: every freeze or soft block of
// such a partner failed.
func controlEventID(evType, partnerID string, now time.Time) string {
	if id := fmt.Sprintf("%s-%s-%d", evType, partnerID, now.UnixNano()); len(id) <= smp.MaxEventID {
		return id
	}
	return "ctl-" + uuid.Must(uuid.NewV7()).String()
}
