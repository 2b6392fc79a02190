package wallet

import (
	"context"
	"fmt"
	"strings"

	"smp"
)

// Adjust posts a manual adjustment of amountVND (either way) to a
// partner's wallet, with its reason and, optionally, the difference it is
// expected to leave with the gateway (reconciliation, INC-010 scenario
// 2), and the audit entry (who, when, why, the balance before and after)
// in the posting's own transaction. id is the caller's idempotency key
// ("" for a new one): the same id and body again is a duplicate, another
// body ECONFLICT. EINVALID, ENOTFOUND for an unknown partner. The caller
// (ops) checks the principal's permission.
func (s *Service) Adjust(ctx context.Context, p smp.Principal, id, partnerID string, amountVND int64, reason string, expectedDiff *int64) (Posted, error) {
	if id == "" {
		id = fmt.Sprintf("adj-%s-%d", partnerID, s.cfg.Now().UnixNano())
	}
	post := smp.Posting{ID: id, Type: smp.WalletAdjustment, PartnerID: partnerID, AmountVND: amountVND, Reason: strings.TrimSpace(reason),
		ExpectedDiffVND: expectedDiff, Actor: p.Name, At: s.cfg.Now()}
	var out Posted
	err := s.store.InTx(ctx, func(tx smp.Tx) (err error) {
		if out, err = s.PostTx(ctx, tx, post, ""); err != nil || out.Duplicate {
			return err
		}
		e := out.Entry
		return tx.AddAudit(ctx, smp.AuditEntry{At: post.At.UTC(), Actor: p.Name, Role: p.Role, Action: "wallet.adjust", Target: "partner:" + partnerID,
			Before: fmt.Sprintf(`{"balance_vnd":%d}`, e.BalanceAfterVND-e.WalletEffect()),
			After:  fmt.Sprintf(`{"balance_vnd":%d,"posting_id":%q,"amount_vnd":%d}`, e.BalanceAfterVND, e.ID, amountVND), Reason: post.Reason})
	})
	s.count(smp.WalletAdjustment, err, out.Duplicate)
	return out, err
}

// SetFloor sets a partner's wallet floor (below it, no new offers to its
// technicians), audited in the same transaction. EINVALID for a negative
// floor, ENOTFOUND for an unknown partner.
func (s *Service) SetFloor(ctx context.Context, p smp.Principal, partnerID string, floorVND int64, reason string) (*Wallet, error) {
	if floorVND < 0 || floorVND > smp.MaxPostingVND {
		return nil, smp.Errorf(smp.EINVALID, "floor_vnd must be between 0 and %d", int64(smp.MaxPostingVND))
	}
	var w *Wallet
	err := s.store.InTx(ctx, func(tx smp.Tx) error {
		before, err := s.FindWallet(ctx, partnerID)
		if err != nil {
			return err
		}
		a, err := tx.SetWalletFloor(ctx, partnerID, floorVND, s.cfg.Now())
		if err != nil {
			return err
		}
		w = toWallet(a)
		return tx.AddAudit(ctx, smp.AuditEntry{At: s.cfg.Now().UTC(), Actor: p.Name, Role: p.Role, Action: "wallet.set_floor", Target: "partner:" + partnerID,
			Before: fmt.Sprintf(`{"floor_vnd":%s}`, floorText(before.FloorVND)), After: fmt.Sprintf(`{"floor_vnd":%s,"state":%q}`, floorText(w.FloorVND), w.State),
			Reason: strings.TrimSpace(reason)})
	})
	return w, err
}

func floorText(f *int64) string {
	if f == nil {
		return "null"
	}
	return fmt.Sprint(*f)
}
