package ops

import (
	"context"
	"encoding/json"
	"net"
	"net/netip"
	"strings"

	"smp"
	"smp/auth"
	"smp/wallet"
)

// Enforcement on partners' wallets (runbook INC-011): admin freeze,
// unfreeze and soft-block (the runbook's /app/bin/admin, smp admin …),
// the partners' IP allowlists, and the guard rails nobody may change.
// The wallet service writes each control with its audit entry under the
// ledger's head lock; the fraud detector calls these with
// wallet.SystemFraudDetector.

func (s *Service) wallets(p smp.Principal, perm string) error {
	if err := auth.Check(p, perm); err != nil {
		return err
	}
	if s.cfg.Wallets == nil {
		return smp.Errorf(smp.EUNAVAILABLE, "wallets are not served in this process")
	}
	return nil
}

// FreezeWallet freezes a partner's wallet (INC-011 scenario 1): top-ups
// are refused (held when already paid) and every debit but SMP's
// commission claims. EFORBIDDEN without the security role, EINVALID
// without a reason, ENOTFOUND, EUNAVAILABLE.
func (s *Service) FreezeWallet(ctx context.Context, p smp.Principal, partnerID, reason string) (*wallet.ControlResult, error) {
	if err := s.wallets(p, "wallets.freeze"); err != nil {
		return nil, err
	}
	if err := needReason(reason, "a reason is required to freeze a wallet (--reason)"); err != nil {
		return nil, err
	}
	return s.cfg.Wallets.Freeze(ctx, p, partnerID, reason)
}

// UnfreezeWallet lifts a freeze (INC-011 scenario 2) with a note kept in
// partner_admin_users.notes; the held top-ups are credited. EFORBIDDEN,
// EINVALID without a note, ECONFLICT when not frozen, ENOTFOUND,
// EUNAVAILABLE.
func (s *Service) UnfreezeWallet(ctx context.Context, p smp.Principal, partnerID, note string) (*wallet.ControlResult, error) {
	if err := s.wallets(p, "wallets.freeze"); err != nil {
		return nil, err
	}
	if err := needReason(note, "a note is required to unfreeze a wallet (--note)"); err != nil {
		return nil, err
	}
	return s.cfg.Wallets.Unfreeze(ctx, p, partnerID, note)
}

// SoftBlockWallet caps a wallet's operations at 1,000,000 VND per rolling
// 24 hours for 48 hours (INC-011 scenario 3). EFORBIDDEN, EINVALID,
// ECONFLICT on a frozen wallet, ENOTFOUND, EUNAVAILABLE.
func (s *Service) SoftBlockWallet(ctx context.Context, p smp.Principal, partnerID, reason string) (*wallet.ControlResult, error) {
	if err := s.wallets(p, "wallets.soft_block"); err != nil {
		return nil, err
	}
	if err := needReason(reason, "a reason is required to soft-block a wallet (--reason)"); err != nil {
		return nil, err
	}
	return s.cfg.Wallets.SoftBlock(ctx, p, partnerID, reason)
}

// LiftSoftBlock ends a soft block early. EFORBIDDEN, EINVALID, ECONFLICT
// on a frozen wallet, ENOTFOUND, EUNAVAILABLE.
func (s *Service) LiftSoftBlock(ctx context.Context, p smp.Principal, partnerID, reason string) (*wallet.ControlResult, error) {
	if err := s.wallets(p, "wallets.soft_block"); err != nil {
		return nil, err
	}
	if err := needReason(reason, "a reason is required to lift a soft block (--reason)"); err != nil {
		return nil, err
	}
	return s.cfg.Wallets.LiftSoftBlock(ctx, p, partnerID, reason)
}

// ReleaseHeldTopup credits a held top-up (one the ledger refused while
// the gateway took the money), audited as wallet.release_held; the ledger
// still refuses it while the wallet is frozen or the soft block's cap or
// a guard rail would be passed (EFORBIDDEN, nothing changes). EFORBIDDEN
// without the security role, EINVALID without a reason, ECONFLICT for a
// top-up that is not held, ENOTFOUND, EUNAVAILABLE.
func (s *Service) ReleaseHeldTopup(ctx context.Context, p smp.Principal, partnerID, ref, reason string) (*wallet.HeldResult, error) {
	if err := s.wallets(p, "wallets.held"); err != nil {
		return nil, err
	}
	if err := needReason(reason, "a reason is required to release a held top-up (--reason)"); err != nil {
		return nil, err
	}
	return s.cfg.Wallets.ReleaseHeld(ctx, p, partnerID, ref, reason)
}

// ReverseHeldTopup refunds a held top-up to its payer through VNPay's
// refund API (idempotent: a retry never refunds twice), audited as
// wallet.reverse_held_requested then wallet.reverse_held. EFORBIDDEN,
// EINVALID, ECONFLICT for a top-up neither held nor being reversed,
// ENOTFOUND, EUNAVAILABLE (also when VNPay failed: the top-up shows the
// error and the reversal can be retried).
func (s *Service) ReverseHeldTopup(ctx context.Context, p smp.Principal, partnerID, ref, reason string) (*wallet.HeldResult, error) {
	if err := s.wallets(p, "wallets.held"); err != nil {
		return nil, err
	}
	if err := needReason(reason, "a reason is required to reverse a held top-up (--reason)"); err != nil {
		return nil, err
	}
	return s.cfg.Wallets.ReverseHeld(ctx, p, partnerID, ref, reason)
}

// GuardRailChange is what someone asked of the guard rails.
type GuardRailChange struct {
	MaxTopups         *int   `json:"max_topups,omitempty"`
	MaxTopupVNDPerDay *int64 `json:"max_topup_vnd_per_day,omitempty"`
	SoftBlockCapVND   *int64 `json:"soft_block_cap_vnd,omitempty"`
	Lift              bool   `json:"lift,omitempty"`
}

// ChangeGuardRails always refuses (EFORBIDDEN), whoever asks, the admin
// role included: the velocity guard rails are compiled in (runbook
// INC-011: "no override even by Super Admin"). The attempt is audited
// (wallet.guard_rails_refused) so security sees who tried.
func (s *Service) ChangeGuardRails(ctx context.Context, p smp.Principal, change GuardRailChange, reason string) error {
	if err := checkReason(reason); err != nil {
		return err
	}
	asked, _ := json.Marshal(change)
	rails, _ := json.Marshal(smp.CompiledGuardRails())
	if err := s.record(ctx, smp.AuditEntry{Actor: p.Name, Role: p.Role, Action: "wallet.guard_rails_refused", Target: "guard_rails",
		Before: string(rails), Reason: strings.TrimSpace(reason)}, "refused", map[string]any{"asked": json.RawMessage(asked)}); err != nil {
		return err
	}
	return smp.Errorf(smp.EFORBIDDEN, "the velocity guard rails are compiled in: no role, the admin role included, may raise or lift them")
}

// ParseAllowlist checks an allowlist: addresses and CIDR networks.
// EINVALID for anything else.
func ParseAllowlist(entries []string) ([]string, error) {
	var out []string
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		if _, err := netip.ParsePrefix(e); err == nil {
			out = append(out, e)
			continue
		}
		if _, err := netip.ParseAddr(e); err == nil {
			out = append(out, e)
			continue
		}
		return nil, smp.Errorf(smp.EINVALID, "allowlist entry %q is neither an IP address nor a CIDR network", e)
	}
	return out, nil
}

// AllowedIP reports whether ip is in the allowlist (an empty list allows
// every address).
func AllowedIP(list []string, ip string) bool {
	if len(list) == 0 {
		return true
	}
	host := ip
	if h, _, err := net.SplitHostPort(ip); err == nil {
		host = h
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, e := range list {
		if pfx, err := netip.ParsePrefix(e); err == nil {
			if pfx.Contains(addr) {
				return true
			}
		} else if a, err := netip.ParseAddr(e); err == nil && a.Unmap() == addr {
			return true
		}
	}
	return false
}

// SetPartnerIPAllowlist replaces the addresses a partner's own admin
// actions (its token on /v1/partners/{id}/…) may come from; an empty list
// allows any. Audited in the same transaction (partner.ip_allowlist).
// EFORBIDDEN without the security role, EINVALID, ENOTFOUND.
func (s *Service) SetPartnerIPAllowlist(ctx context.Context, p smp.Principal, partnerID string, entries []string, reason string) ([]string, error) {
	if err := auth.Check(p, "partners.ip_allowlist"); err != nil {
		return nil, err
	}
	if err := needReason(reason, "a reason is required to change a partner's IP allowlist"); err != nil {
		return nil, err
	}
	list, err := ParseAllowlist(entries)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []string{}
	}
	now := s.cfg.Now()
	err = s.cfg.Store.InTx(ctx, func(tx smp.Tx) error {
		prev, err := tx.SetPartnerIPAllowlist(ctx, partnerID, list, p.Name, now)
		if err != nil {
			return err
		}
		if prev == nil {
			prev = []string{}
		}
		before, _ := json.Marshal(map[string]any{"allowlist": prev})
		after, _ := json.Marshal(map[string]any{"allowlist": list})
		return tx.AddAudit(ctx, smp.AuditEntry{At: now.UTC(), Actor: p.Name, Role: p.Role, Action: "partner.ip_allowlist", Target: "partner:" + partnerID,
			Before: string(before), After: string(after), Reason: strings.TrimSpace(reason)})
	})
	return list, err
}
