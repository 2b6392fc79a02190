package wallet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"smp"
	"smp/vnpay"
)

// VNPay is the merchant's VNPay configuration. TmnCode and Secrets come
// from SMP_VNPAY_TMN_CODE and SMP_VNPAY_HASH_SECRET (several, comma
// separated, while rotating: the first signs, any verifies); they are
// never logged.
type VNPay struct {
	TmnCode string
	Secrets [][]byte
	// PayURL is the gateway's payment page (vpcpay.html).
	PayURL string
	// ReturnURL is where VNPay sends the partner back after paying.
	ReturnURL string
	// APIURL is VNPay's merchant API (querydr and refund:
	// .../merchant_webapi/api/transaction).
	APIURL string
	// TopupTTL: a payment URL expires after it (default 15 minutes).
	TopupTTL time.Duration
}

// Limits of one top-up.
const (
	MinTopupVND = 10_000
	MaxTopupVND = 500_000_000
)

// EventTopupRequested announces a new top-up (payments.events), with the
// address it was requested from: the fraud rules' input.
const EventTopupRequested = "payment.wallet_topup_requested"

// TopupCreated is the answer to a top-up request.
type TopupCreated struct {
	TopupID    string `json:"topup_id"`
	TxnRef     string `json:"txn_ref"`
	PaymentURL string `json:"payment_url"`
}

// newRef returns a fresh vnp_TxnRef: 20 characters, a letter and digits
// (VNPay allows letters and digits), unique in practice (80 random bits).
func (s *Service) newRef() string {
	if s.cfg.NewRef != nil {
		return s.cfg.NewRef()
	}
	b := make([]byte, 10)
	rand.Read(b)
	return "W" + strings.ToUpper(hex.EncodeToString(b))[:19]
}

// Client is where a top-up request came from, as the HTTP edge saw it:
// recorded with the top-up and carried by its event (the fraud rules'
// input and evidence).
type Client struct {
	IP        string
	UserAgent string // the User-Agent header, cut to 512 characters
	DeviceID  string // the X-Device-Id header, where the app sends one
}

// CreateTopup records a partner's top-up of amountVND and returns the
// signed VNPay payment URL. EINVALID for an amount outside
// [MinTopupVND, MaxTopupVND], ENOTFOUND for an unknown partner,
// EUNAVAILABLE when VNPay is not configured.
func (s *Service) CreateTopup(ctx context.Context, partnerID string, amountVND int64, clientIP string) (*TopupCreated, error) {
	return s.CreateTopupFrom(ctx, partnerID, amountVND, Client{IP: clientIP})
}

// CreateTopupFrom is CreateTopup with the whole client: its address, user
// agent and device id.
func (s *Service) CreateTopupFrom(ctx context.Context, partnerID string, amountVND int64, c Client) (*TopupCreated, error) {
	clientIP := c.IP
	c.UserAgent, c.DeviceID = cut(c.UserAgent, 512), cut(c.DeviceID, 128)
	v := s.cfg.VNPay
	if v.TmnCode == "" || len(v.Secrets) == 0 || v.PayURL == "" {
		return nil, smp.Errorf(smp.EUNAVAILABLE, "VNPay is not configured (SMP_VNPAY_TMN_CODE, SMP_VNPAY_HASH_SECRET)")
	}
	if amountVND < MinTopupVND || amountVND > MaxTopupVND {
		return nil, smp.Errorf(smp.EINVALID, "amount_vnd must be between %d and %d", MinTopupVND, MaxTopupVND)
	}
	// A frozen wallet refuses top-ups at the request already (the ledger
	// holds one paid anyway).
	if c, err := s.store.FindWalletControl(ctx, partnerID); err == nil && c.Effective(s.cfg.Now()) == smp.WalletFrozen {
		return nil, &smp.WalletRefused{Rule: smp.RuleFrozen, Message: fmt.Sprintf("the wallet of partner %s is frozen: top-ups are refused", partnerID)}
	} else if err != nil && smp.ErrorCode(err) != smp.ENOTFOUND {
		return nil, err
	}
	now := s.cfg.Now()
	ref := s.newRef()
	t := &smp.Topup{ID: "tu_" + strings.ToLower(ref), PartnerID: partnerID, Gateway: smp.GatewayVNPay, TxnRef: ref, AmountVND: amountVND,
		Status: smp.TopupPending, ClientIP: clientIP, UserAgent: c.UserAgent, DeviceID: c.DeviceID, CreatedAt: now, UpdatedAt: now}
	err := s.store.InTx(ctx, func(tx smp.Tx) error {
		if err := tx.InsertTopup(ctx, t); err != nil {
			return err
		}
		data, _ := json.Marshal(map[string]any{"topup_id": t.ID, "partner_id": partnerID, "gateway": t.Gateway, "txn_ref": ref,
			"amount_vnd": amountVND, "client_ip": clientIP, "user_agent": c.UserAgent, "device_id": c.DeviceID})
		return tx.AddEvent(ctx, smp.Event{ID: "topup-" + t.ID, Type: EventTopupRequested, SchemaVersion: smp.EventSchemaVersion,
			AggregateID: partnerID, OccurredAt: now, Data: data})
	})
	if err != nil {
		return nil, err
	}
	ttl := v.TopupTTL
	if ttl <= 0 {
		ttl = 15 * time.Minute
	}
	u := vnpay.PaymentURL(v.PayURL, v.Secrets[0], vnpay.PaymentRequest{TmnCode: v.TmnCode, AmountVND: amountVND, TxnRef: ref,
		OrderInfo: "Nap vi SMP " + partnerID + " " + ref, ReturnURL: v.ReturnURL, IPAddr: clientIP, Created: now, Expires: now.Add(ttl)})
	return &TopupCreated{TopupID: t.ID, TxnRef: ref, PaymentURL: u}, nil
}

// IPN event type and provider in event_log.
const (
	ProviderVNPay = "vnpay"
	EventVNPayIPN = "vnpay.ipn"
)

// HandleIPN answers VNPay's payment notification (GET
// /integrations/vnpay/ipn): 97 for a hash that none of the secrets
// gives (nothing stored), 99 for what cannot be read or an internal
// failure (nothing stored: VNPay retries); otherwise the notification is
// stored in event_log in the transaction that applies it, and the answer
// is 00 (applied: a success credits the wallet once, a failure marks the
// top-up failed), 01 (no such top-up, or another merchant's code), 02
// (the top-up was already settled) or 04 (the amount differs). err is
// the internal failure behind a 99, for the edge to log.
func (s *Service) HandleIPN(ctx context.Context, params url.Values) (vnpay.IPNAnswer, error) {
	ans, err := s.handleIPN(ctx, params)
	s.ipns.WithLabelValues(ans.RspCode).Inc()
	return ans, err
}

func (s *Service) handleIPN(ctx context.Context, params url.Values) (vnpay.IPNAnswer, error) {
	v := s.cfg.VNPay
	if len(v.Secrets) == 0 {
		return vnpay.Answer(vnpay.RspUnknownError), smp.Errorf(smp.EUNAVAILABLE, "VNPay IPN refused: SMP_VNPAY_HASH_SECRET is not set")
	}
	if err := vnpay.VerifyParams(params, v.Secrets); err != nil {
		return vnpay.Answer(vnpay.RspInvalidChecksum), nil
	}
	n, err := vnpay.ParseIPN(params)
	if err != nil {
		return vnpay.Answer(vnpay.RspUnknownError), nil
	}
	if n.TmnCode != v.TmnCode {
		return vnpay.Answer(vnpay.RspOrderNotFound), nil
	}
	return s.ApplyIPN(ctx, n, params.Encode(), "")
}

// ApplyIPN applies a verified notification (or a gateway record fetched
// by querydr, body its JSON) as HandleIPN does, and returns VNPay's answer
// code for it. actor is who applied it ("" for the IPN itself).
func (s *Service) ApplyIPN(ctx context.Context, n *vnpay.IPN, body, actor string) (vnpay.IPNAnswer, error) {
	if actor == "" {
		actor = "system:vnpay-ipn"
	}
	sum := sha256.Sum256([]byte(body))
	bodyHash := hex.EncodeToString(sum[:])
	now := s.cfg.Now()
	var code, held string
	var posted Posted
	err := s.store.InTx(ctx, func(tx smp.Tx) error {
		posted, held = Posted{}, ""
		ev := &smp.InboxEvent{EventID: "vnpay:" + n.TxnRef + ":" + bodyHash[:16], Provider: ProviderVNPay, EventType: EventVNPayIPN,
			OrderID: n.TxnRef, AmountVND: n.AmountVND, OccurredAt: n.PayDate.UTC(), BodyHash: bodyHash, Body: body,
			Status: smp.InboxProcessed, Attempts: 1, ReceivedAt: now.UTC(), NextAttemptAt: now.UTC(), ProcessedAt: &now}
		if ev.OccurredAt.IsZero() {
			ev.OccurredAt = now.UTC()
		}
		t, err := tx.TopupForUpdate(ctx, smp.GatewayVNPay, n.TxnRef)
		switch {
		case smp.ErrorCode(err) == smp.ENOTFOUND:
			code = vnpay.RspOrderNotFound
		case err != nil:
			return err
		case t.Status != smp.TopupPending:
			code = vnpay.RspAlreadyConfirmed
		case t.AmountVND != n.AmountVND:
			code = vnpay.RspInvalidAmount
		default:
			code = vnpay.RspConfirmed
		}
		if code == vnpay.RspOrderNotFound || code == vnpay.RspInvalidAmount {
			ev.Status, ev.ProcessedAt, ev.LastError = smp.InboxDLQ, nil, vnpay.RspMessages[code]
		}
		if _, _, err := tx.AddInboxEvent(ctx, ev); err != nil {
			return err
		}
		if code != vnpay.RspConfirmed {
			return nil
		}
		t.TransactionNo, t.BankCode, t.PayDate, t.UpdatedAt = n.TransactionNo, n.BankCode, n.PayDate, now
		t.Status = smp.TopupFailed
		if n.Succeeded() {
			posted, err = s.PostTx(ctx, tx, smp.Posting{ID: smp.GatewayPostingID(smp.GatewayVNPay, n.TxnRef), Type: smp.WalletTopup,
				PartnerID: t.PartnerID, AmountVND: t.AmountVND, Gateway: smp.GatewayVNPay, GatewayRef: n.TxnRef, Actor: actor, At: now}, t.ClientIP)
			var refused *smp.WalletRefused
			if errors.As(err, &refused) {
				// A frozen wallet (or a soft block's cap, a guard rail): the
				// gateway has the partner's money; SMP stores the
				// notification and the top-up, credits nothing, and holds
				// it for reversal or release. Still 00: the notification
				// was received and recorded, and retries would change
				// nothing (docs/wallets.md).
				held = refused.Rule
				t.Status, t.HoldReason = smp.TopupHeld, refused.Rule
				if err := tx.AddEvent(ctx, heldEvent(t, refused.Rule, now)); err != nil {
					return err
				}
				return tx.UpdateTopup(ctx, t)
			}
			if err != nil {
				return err
			}
			t.Status, t.PostingID = smp.TopupConfirmed, posted.Entry.ID
		}
		return tx.UpdateTopup(ctx, t)
	})
	if posted.Entry != nil || smp.ErrorCode(err) == smp.ECONFLICT {
		s.count(smp.WalletTopup, err, posted.Duplicate)
	} else if held != "" && err == nil {
		s.count(smp.WalletTopup, smp.Errorf(smp.EFORBIDDEN, "held"), false)
	}
	if err != nil {
		return vnpay.Answer(vnpay.RspUnknownError), fmt.Errorf("wallet: apply VNPay notification %s: %w", n.TxnRef, err)
	}
	return vnpay.Answer(code), nil
}

// cut returns s cut to at most n characters.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}
