package ops

import (
	"context"
	"time"

	"smp"
	"smp/auth"
	"smp/recon"
	"smp/wallet"
)

// Recon runs a reconciliation of a day and records it (recon.Service).
type Recon interface {
	Run(ctx context.Context, day string, by recon.Trigger) (*smp.ReconRun, error)
}

// RunReconciliation reconciles day now ("run reconciliation now",
// runbook INC-010's "re-run recon job"). The run reads the gateway and
// may apply missed notifications, outside one transaction: the intent is
// audited before, the run's id, status and verdict after. EFORBIDDEN
// without the finance role, EINVALID for a malformed day or one not over,
// EUNAVAILABLE when the process has no reconciliation.
func (s *Service) RunReconciliation(ctx context.Context, p smp.Principal, day, reason string) (*smp.ReconRun, error) {
	if err := auth.Check(p, "wallets.reconcile"); err != nil {
		return nil, err
	}
	if err := checkReason(reason); err != nil {
		return nil, err
	}
	if s.cfg.Recon == nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "the reconciliation is not served in this process")
	}
	if _, _, err := recon.DayBounds(day); err != nil {
		return nil, err
	}
	if reason == "" {
		reason = "run reconciliation now"
	}
	var run *smp.ReconRun
	err := s.external(ctx, p, "wallet.reconcile", "day:"+day, "", reason, map[string]any{"day": day},
		func(ctx context.Context) (map[string]any, error) {
			var err error
			run, err = s.cfg.Recon.Run(ctx, day, recon.Trigger{Kind: smp.ReconTriggerManual, Actor: "ops:" + p.Name, Reason: reason})
			if err != nil {
				return nil, err
			}
			return map[string]any{"run": run.ID, "status": run.Status, "verdict": run.Verdict, "mismatches": run.Mismatches}, nil
		})
	return run, err
}

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

// ReplayWebhooks fetches a gateway's records of the top-ups created in
// [from, to) that SMP has not settled and applies the missing ones
// idempotently (runbook INC-010 scenario 1, replay-webhooks). The query
// goes outside the database: the intent is recorded before, the counts
// after. EFORBIDDEN without the finance role, EINVALID, EUNAVAILABLE.
func (s *Service) ReplayWebhooks(ctx context.Context, p smp.Principal, gateway string, from, to time.Time, reason string) (wallet.ReplayResult, error) {
	if err := auth.Check(p, "wallets.replay"); err != nil {
		return wallet.ReplayResult{}, err
	}
	if err := checkReason(reason); err != nil {
		return wallet.ReplayResult{}, err
	}
	if s.cfg.Wallets == nil {
		return wallet.ReplayResult{}, smp.Errorf(smp.EUNAVAILABLE, "wallets are not served in this process")
	}
	if gateway != smp.GatewayVNPay || !from.Before(to) {
		return wallet.ReplayResult{}, smp.Errorf(smp.EINVALID, "replay: the gateway is vnpay and --from must be before --to")
	}
	if reason == "" {
		reason = "replay-webhooks"
	}
	var res wallet.ReplayResult
	err := s.external(ctx, p, "wallet.replay_webhooks", "gateway:"+gateway, "", reason,
		map[string]any{"from": from.UTC().Format(time.RFC3339), "to": to.UTC().Format(time.RFC3339)},
		func(ctx context.Context) (map[string]any, error) {
			var err error
			res, err = s.cfg.Wallets.ReplayGateway(ctx, gateway, from, to, "ops:"+p.Name)
			return map[string]any{"applied": res.Applied, "already_present": res.AlreadyPresent, "not_paid": res.NotPaid, "failed": res.Failed}, err
		})
	return res, err
}
