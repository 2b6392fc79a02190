package ops

import (
	"context"

	"smp"
	"smp/auth"
	"smp/wallet"
)

// AdjustWallet posts a manual adjustment to a partner's wallet (runbook
// INC-010 scenario 2, smp ctl wallets adjust), audited in the posting's
// own transaction. EFORBIDDEN without the finance role, EINVALID without
// a reason or for a zero amount, ENOTFOUND for an unknown partner,
// ECONFLICT for an id reused with another body, EUNAVAILABLE when the
// process has no wallets.
func (s *Service) AdjustWallet(ctx context.Context, p smp.Principal, id, partnerID string, amountVND int64, reason string, expectedDiff *int64) (wallet.Posted, error) {
	if err := auth.Check(p, "wallets.adjust"); err != nil {
		return wallet.Posted{}, err
	}
	if err := needReason(reason, "a reason is required for a wallet adjustment"); err != nil {
		return wallet.Posted{}, err
	}
	if s.cfg.Wallets == nil {
		return wallet.Posted{}, smp.Errorf(smp.EUNAVAILABLE, "wallets are not served in this process")
	}
	return s.cfg.Wallets.Adjust(ctx, p, id, partnerID, amountVND, reason, expectedDiff)
}

// SetWalletFloor sets a partner's wallet floor, audited. EFORBIDDEN
// without the finance role, EINVALID without a reason or for a negative
// floor, ENOTFOUND, EUNAVAILABLE.
func (s *Service) SetWalletFloor(ctx context.Context, p smp.Principal, partnerID string, floorVND int64, reason string) (*wallet.Wallet, error) {
	if err := auth.Check(p, "wallets.set_floor"); err != nil {
		return nil, err
	}
	if err := needReason(reason, "a reason is required to set a wallet's floor"); err != nil {
		return nil, err
	}
	if s.cfg.Wallets == nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "wallets are not served in this process")
	}
	return s.cfg.Wallets.SetFloor(ctx, p, partnerID, floorVND, reason)
}
