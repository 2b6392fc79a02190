package wallet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"smp"
	"smp/vnpay"
)

// Held top-ups (runbook INC-011, issue 18): a top-up the gateway took
// while the ledger refused its credit (a frozen wallet, a soft block's
// cap, a velocity guard rail) is stored as held. Security then releases
// it (credits it, judged by the ledger as any top-up: still refused while
// the wallet is frozen or the cap or a rail would be passed) or reverses
// it (VNPay's refund API gives the money back to the payer). Both are
// audited; docs/wallets.md has the lifecycle.

// Audit actions and events of the held top-ups.
const (
	// ActionReverseHeld is the reversal's outcome (reversed, or failed);
	// ActionReverseHeldAsked its intent, recorded before VNPay is called.
	ActionReverseHeld      = "wallet.reverse_held"
	ActionReverseHeldAsked = "wallet.reverse_held_requested"
	// EventTopupReversed: a held top-up was refunded to its payer
	// (payments.events).
	EventTopupReversed = "payment.wallet_topup_reversed"
	// EventTopupReleased: a held top-up was credited by hand (beside the
	// posting's own payment.wallet_topup).
	EventTopupReleased = "payment.wallet_topup_released"
)

// HeldResult is what a release or a reversal did.
type HeldResult struct {
	Topup *smp.Topup `json:"topup"`
	// Changed is false when it had been done before (a retried release
	// or reversal: nothing written, nothing refunded again).
	Changed bool `json:"changed"`
	// Posting is the release's ledger entry.
	Posting *smp.WalletEntry `json:"posting,omitempty"`
	// RefundCode is VNPay's answer to the refund request (00, or 94 for a
	// refund it already had).
	RefundCode string `json:"refund_code,omitempty"`
}

// FindHeld lists the top-ups held or being reversed (a partner's, or
// every partner's when partnerID is empty), oldest first.
func (s *Service) FindHeld(ctx context.Context, partnerID string) ([]*smp.Topup, error) {
	ts, err := smp.AllTopups(ctx, s.store, smp.TopupFilter{PartnerID: partnerID, Statuses: []smp.TopupStatus{smp.TopupHeld, smp.TopupReversing}})
	if ts == nil {
		ts = []*smp.Topup{}
	}
	return ts, err
}

func heldReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if len(reason) < 3 {
		return "", smp.Errorf(smp.EINVALID, "a reason of at least 3 characters is required")
	}
	return reason, smp.CheckLen("reason", reason, smp.MaxReason)
}

// lockHeld reads and locks partnerID's top-up ref in tx: ENOTFOUND when
// there is none or it is another partner's.
func lockHeld(ctx context.Context, tx smp.Tx, partnerID, ref string) (*smp.Topup, error) {
	t, err := tx.TopupForUpdate(ctx, smp.GatewayVNPay, ref)
	if smp.ErrorCode(err) == smp.ENOTFOUND || (err == nil && t.PartnerID != partnerID) {
		return nil, smp.Errorf(smp.ENOTFOUND, "partner %s has no top-up %s", partnerID, ref)
	}
	return t, err
}

func topupAudit(t *smp.Topup) string {
	b, _ := json.Marshal(map[string]any{"status": t.Status, "hold_reason": t.HoldReason, "amount_vnd": t.AmountVND, "posting_id": t.PostingID,
		"refund_attempts": t.RefundAttempts, "refund_error": t.RefundError, "refund_no": t.RefundNo})
	return string(b)
}

func topupEventOf(t *smp.Topup, typ, actor, reason string, now time.Time) smp.Event {
	data, _ := json.Marshal(map[string]any{"topup_id": t.ID, "partner_id": t.PartnerID, "gateway": t.Gateway, "txn_ref": t.TxnRef,
		"amount_vnd": t.AmountVND, "status": t.Status, "posting_id": t.PostingID, "refund_no": t.RefundNo, "actor": actor, "reason": reason})
	return smp.Event{ID: typ + "-" + t.ID, Type: typ, SchemaVersion: smp.EventSchemaVersion, AggregateID: t.PartnerID, OccurredAt: now, Data: data}
}

// ReleaseHeld credits partnerID's held top-up ref to its wallet, audited
// (wallet.release_held, with reason) in the posting's transaction with
// the posting's outbox event. The ledger judges the credit as any top-up
// under the head lock: EFORBIDDEN (a *smp.WalletRefused naming the rule)
// while the wallet is frozen, the soft block's cap or a guard rail would
// be passed, and nothing changes. A top-up released before is returned
// unchanged (Changed false). ECONFLICT for a top-up that is not held
// (pending, failed, being reversed or reversed), ENOTFOUND, EINVALID
// without a reason.
func (s *Service) ReleaseHeld(ctx context.Context, p smp.Principal, partnerID, ref, reason string) (*HeldResult, error) {
	reason, err := heldReason(reason)
	if err != nil {
		return nil, err
	}
	var res *HeldResult
	var posted *Posted
	err = s.store.InTx(ctx, func(tx smp.Tx) error {
		res, posted = nil, nil
		t, err := lockHeld(ctx, tx, partnerID, ref)
		if err != nil {
			return err
		}
		switch {
		case t.Status == smp.TopupConfirmed:
			res = &HeldResult{Topup: t} // released (or credited) before
			return nil
		case t.Status != smp.TopupHeld:
			return smp.Errorf(smp.ECONFLICT, "top-up %s is %s: only a held top-up can be released", ref, t.Status)
		}
		now := s.cfg.Now()
		before := topupAudit(t)
		posted, err = s.releaseTx(ctx, tx, ref, "security:"+p.Name, now)
		if err != nil {
			return err
		}
		if t, err = tx.TopupForUpdate(ctx, smp.GatewayVNPay, ref); err != nil {
			return err
		}
		res = &HeldResult{Topup: t, Changed: true, Posting: posted.Entry}
		if err := tx.AddEvent(ctx, topupEventOf(t, EventTopupReleased, p.Name, reason, now)); err != nil {
			return err
		}
		return tx.AddAudit(ctx, smp.AuditEntry{At: now.UTC(), Actor: p.Name, Role: p.Role, Action: ActionReleaseHeld,
			Target: "topup:" + smp.GatewayVNPay + ":" + ref, Before: before, After: topupAudit(t), Reason: reason})
	})
	if posted != nil {
		s.count(smp.WalletTopup, err, posted.Duplicate)
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

// ReverseHeld gives partnerID's held top-up ref back to its payer through
// VNPay's refund API (a full refund, vnp_Command=refund). The intent is
// recorded first (status reversing, wallet.reverse_held_requested
// audited), then VNPay is asked, then the outcome is recorded: refunded
// (00, or 94: VNPay already has a refund of it) closes the top-up as
// reversed in one transaction with its outbox event
// (payment.wallet_topup_reversed) and its audit entry
// (wallet.reverse_held). A failure is recorded on the top-up
// (refund_error, audited) and returned (EUNAVAILABLE): when VNPay
// answered that it refunded nothing (RefundDefinite) the top-up is held
// again; when the outcome is unknown (no answer, a timeout, 99) it stays
// reversing and only a retried ReverseHeld moves it on. A retried
// reversal never refunds twice: a reversed top-up is returned unchanged
// (Changed false), and VNPay answers 94 to a second refund of one
// transaction. ECONFLICT for a top-up neither held nor reversing,
// ENOTFOUND, EINVALID without a reason, EUNAVAILABLE without VNPay's API.
func (s *Service) ReverseHeld(ctx context.Context, p smp.Principal, partnerID, ref, reason string) (*HeldResult, error) {
	reason, err := heldReason(reason)
	if err != nil {
		return nil, err
	}
	v := s.cfg.VNPay
	if v.APIURL == "" || len(v.Secrets) == 0 || v.TmnCode == "" {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "VNPay's refund API is not configured (--vnpay-api-url, SMP_VNPAY_TMN_CODE, SMP_VNPAY_HASH_SECRET)")
	}
	// 1. The intent.
	var t *smp.Topup
	done := false
	err = s.store.InTx(ctx, func(tx smp.Tx) error {
		done = false
		var err error
		if t, err = lockHeld(ctx, tx, partnerID, ref); err != nil {
			return err
		}
		switch t.Status {
		case smp.TopupReversed:
			done = true
			return nil
		case smp.TopupHeld, smp.TopupReversing:
		default:
			return smp.Errorf(smp.ECONFLICT, "top-up %s is %s: only a held top-up can be reversed", ref, t.Status)
		}
		now := s.cfg.Now()
		before := topupAudit(t)
		t.Status, t.RefundAttempts, t.UpdatedAt = smp.TopupReversing, t.RefundAttempts+1, now
		if err := tx.UpdateTopup(ctx, t); err != nil {
			return err
		}
		return tx.AddAudit(ctx, smp.AuditEntry{At: now.UTC(), Actor: p.Name, Role: p.Role, Action: ActionReverseHeldAsked,
			Target: "topup:" + smp.GatewayVNPay + ":" + ref, Before: before, After: topupAudit(t), Reason: reason})
	})
	if err != nil {
		return nil, err
	}
	if done {
		return &HeldResult{Topup: t}, nil
	}
	// 2. VNPay.
	r, callErr := s.refund(ctx, t, p.Name)
	// 3. The outcome, recorded even when the caller has gone meanwhile.
	ctx = context.WithoutCancel(ctx)
	var res *HeldResult
	var failure error
	err = s.store.InTx(ctx, func(tx smp.Tx) error {
		res, failure = nil, nil
		t, err := lockHeld(ctx, tx, partnerID, ref)
		if err != nil {
			return err
		}
		if t.Status != smp.TopupReversing {
			res = &HeldResult{Topup: t} // another reversal finished it meanwhile
			return nil
		}
		now := s.cfg.Now()
		before := topupAudit(t)
		audit := smp.AuditEntry{At: now.UTC(), Actor: p.Name, Role: p.Role, Action: ActionReverseHeld,
			Target: "topup:" + smp.GatewayVNPay + ":" + ref, Before: before, Reason: reason}
		switch {
		case callErr == nil && (r.ResponseCode == vnpay.RefundOK || r.ResponseCode == vnpay.RefundDuplicate):
			t.Status, t.RefundError, t.UpdatedAt = smp.TopupReversed, "", now
			if r.TransactionNo != "" {
				t.RefundNo = r.TransactionNo
			}
			res = &HeldResult{Topup: t, Changed: true, RefundCode: r.ResponseCode}
			if err := tx.AddEvent(ctx, topupEventOf(t, EventTopupReversed, p.Name, reason, now)); err != nil {
				return err
			}
		case callErr == nil && vnpay.RefundDefinite(r.ResponseCode):
			t.Status = smp.TopupHeld
			t.RefundError = cut(fmt.Sprintf("VNPay refund answered %s %s: nothing refunded", r.ResponseCode, r.Message), 1000)
			failure = smp.Errorf(smp.EUNAVAILABLE, "%s; the top-up is held again", t.RefundError)
		case callErr == nil:
			t.RefundError = cut(fmt.Sprintf("VNPay refund answered %s %s: outcome unknown", r.ResponseCode, r.Message), 1000)
			failure = smp.Errorf(smp.EUNAVAILABLE, "%s; the top-up stays reversing: reverse it again", t.RefundError)
		default:
			t.RefundError = cut("VNPay refund: "+smp.ErrorMessage(callErr)+": outcome unknown", 1000)
			failure = smp.Errorf(smp.EUNAVAILABLE, "%s; the top-up stays reversing: reverse it again", t.RefundError)
		}
		t.UpdatedAt = now
		if err := tx.UpdateTopup(ctx, t); err != nil {
			return err
		}
		audit.After = topupAudit(t)
		return tx.AddAudit(ctx, audit)
	})
	if err != nil {
		return nil, err
	}
	if failure != nil {
		s.log.Warn("wallet: reversal of a held top-up failed", "txn_ref", ref, "partner_id", partnerID, "err", smp.ErrorMessage(failure))
		return nil, failure
	}
	return res, nil
}

// refund asks VNPay to refund t in full (vnp_Command=refund): the request
// signed over its "|"-joined fields, the answer's hash checked.
// EUNAVAILABLE when VNPay cannot be reached, does not answer in time or
// answers with a bad hash.
func (s *Service) refund(ctx context.Context, t *smp.Topup, by string) (*vnpay.RefundResponse, error) {
	v := s.cfg.VNPay
	now := s.cfg.Now()
	created := t.CreatedAt
	q := vnpay.RefundRequest{RequestID: requestID("F"), Version: vnpay.Version, Command: "refund", TmnCode: v.TmnCode,
		TransactionType: vnpay.RefundFull, TxnRef: t.TxnRef, Amount: strconv.FormatInt(t.AmountVND*100, 10),
		OrderInfo: "Hoan tien nap vi " + t.TxnRef, TransactionNo: t.TransactionNo, TransactionDate: vnpay.FormatDate(created),
		CreateBy: cut(by, 64), CreateDate: vnpay.FormatDate(now), IPAddr: "127.0.0.1"}
	q.SecureHash = vnpay.Sign(v.Secrets[0], q.HashData())
	var r vnpay.RefundResponse
	status, doErr, err := s.merchantAPI(ctx, q, &r)
	if doErr != nil {
		if errors.Is(doErr, context.Canceled) && ctx.Err() != nil {
			return nil, smp.Errorf(smp.EUNAVAILABLE, "cancelled before VNPay answered")
		}
		return nil, smp.Errorf(smp.EUNAVAILABLE, "no answer from VNPay: %v", doErr)
	}
	if err != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "HTTP %d: %v", status, err)
	}
	if vnpay.VerifyHash(r.SecureHash, r.HashData(), v.Secrets) != nil {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "the answer's hash does not verify (code %s)", r.ResponseCode)
	}
	return &r, nil
}
