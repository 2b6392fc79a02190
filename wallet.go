package smp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Partner wallets: a double-entry ledger in whole VND (int64, never a
// float). Every posting moves AmountVND from one account (debited) to
// another (credited), so every posting balances and the balances of all
// accounts sum to zero. An account's balance is its credits minus its
// debits: a partner's wallet is positive while the partner has money on it.
//
// The entries live in partner_wallet_transactions (the runbook's table),
// append-only and hash-chained: each entry's hash covers the previous
// entry's hash and its own fields, so an edited, removed or reordered
// entry breaks the chain from that point on (ComputeHash, VerifyChain).

// WalletTxType is the type of a posting, as the runbook queries it
// (partner_wallet_transactions.type).
type WalletTxType string

// Posting types.
const (
	// WalletTopup: a gateway confirmed money paid in by the partner
	// (gateway clearing → partner wallet).
	WalletTopup WalletTxType = "topup"
	// WalletCommission: SMP's commission on a completed order
	// (partner wallet → platform commission revenue).
	WalletCommission WalletTxType = "commission"
	// WalletAdjustment: a manual correction by finance, either way
	// (platform adjustments ↔ partner wallet), with its reason.
	WalletAdjustment WalletTxType = "adjustment"
	// WalletReversal: undoes an earlier posting in full (its accounts
	// swapped), naming it in Reverses.
	WalletReversal WalletTxType = "reversal"
	// WalletRefund: money paid back to the partner through a gateway
	// (partner wallet → gateway clearing).
	WalletRefund WalletTxType = "refund"
)

// MaxPostingVND bounds one posting (a thousand billion VND), so that no
// sum of postings a ledger will hold overflows int64.
const MaxPostingVND = 1_000_000_000_000

// ValidWalletTxType reports whether t is one of the posting types.
func ValidWalletTxType(t WalletTxType) bool {
	switch t {
	case WalletTopup, WalletCommission, WalletAdjustment, WalletReversal, WalletRefund:
		return true
	}
	return false
}

// Ledger accounts besides the partners' wallets.
const (
	// AccountCommission is the platform's commission revenue.
	AccountCommission = "platform:commission"
	// AccountAdjustments is the counterpart of manual adjustments.
	AccountAdjustments = "platform:adjustments"

	accountPartnerPrefix = "partner:"
	accountGatewayPrefix = "gateway:"
)

// GatewayVNPay is the gateway partners top up through.
const GatewayVNPay = "vnpay"

// PartnerAccount is the ledger account of a partner's wallet.
func PartnerAccount(partnerID string) string { return accountPartnerPrefix + partnerID }

// GatewayAccount is the clearing account of a payment gateway.
func GatewayAccount(gateway string) string { return accountGatewayPrefix + gateway }

// PartnerOfAccount returns the partner whose wallet account is id, or "".
func PartnerOfAccount(id string) string {
	p, _ := strings.CutPrefix(id, accountPartnerPrefix)
	if p == id {
		return ""
	}
	return p
}

// GatewayPostingID is the idempotency key of a gateway transaction:
// (gateway, its reference, vnp_TxnRef for VNPay).
func GatewayPostingID(gateway, ref string) string { return gateway + ":" + ref }

// Posting asks the ledger to move money for a partner. The accounts follow
// from the type; AmountVND is the effect on the partner's wallet (positive
// credits it). ID is the caller's idempotency key: posting the same ID
// again with the same body returns the first entry; with another body it
// is refused (ECONFLICT).
type Posting struct {
	ID        string
	Type      WalletTxType
	PartnerID string
	// AmountVND: topup > 0; commission and refund < 0; adjustment either
	// way but not 0; reversal exactly minus the reversed entry's effect.
	AmountVND int64
	// Gateway and GatewayRef: required for topup and refund (the gateway
	// and its transaction reference).
	Gateway    string
	GatewayRef string
	OrderID    string // the order a commission is taken on
	Reverses   string // the ID of the posting a reversal undoes
	Reason     string // required for adjustment and reversal
	// ExpectedDiffVND is what an adjustment is expected to leave between
	// SMP's balance and the gateway's (reconciliation, INC-010 scenario 2).
	ExpectedDiffVND *int64
	Actor           string
	At              time.Time
}

// BodyHash is the hex SHA-256 of what makes two postings with one ID the
// same: everything but Actor and At (a retry by another process or
// operator, or later, is the same posting).
func (p *Posting) BodyHash() string {
	exp := "-"
	if p.ExpectedDiffVND != nil {
		exp = strconv.FormatInt(*p.ExpectedDiffVND, 10)
	}
	return hashFields(string(p.Type), p.PartnerID, strconv.FormatInt(p.AmountVND, 10), p.Gateway, p.GatewayRef,
		p.OrderID, p.Reverses, p.Reason, exp)
}

// Validate checks what a posting says on its own (the store checks what
// depends on the ledger: the partner, the reversed entry). EINVALID.
func (p *Posting) Validate() error {
	switch {
	case p.ID == "":
		return Errorf(EINVALID, "posting: id is required")
	case !ValidWalletTxType(p.Type):
		return Errorf(EINVALID, "posting %s: unknown type %q", p.ID, p.Type)
	case p.PartnerID == "":
		return Errorf(EINVALID, "posting %s: partner is required", p.ID)
	case p.AmountVND == 0:
		return Errorf(EINVALID, "posting %s: amount must not be 0", p.ID)
	case p.AmountVND > MaxPostingVND || p.AmountVND < -MaxPostingVND:
		return Errorf(EINVALID, "posting %s: amount %d VND is beyond ±%d", p.ID, p.AmountVND, int64(MaxPostingVND))
	case p.At.IsZero():
		return Errorf(EINVALID, "posting %s: time is required", p.ID)
	}
	switch p.Type {
	case WalletTopup, WalletRefund:
		if p.Gateway == "" || p.GatewayRef == "" {
			return Errorf(EINVALID, "posting %s: a %s needs its gateway and gateway reference", p.ID, p.Type)
		}
		if (p.Type == WalletTopup) != (p.AmountVND > 0) {
			return Errorf(EINVALID, "posting %s: a topup credits the wallet, a refund debits it", p.ID)
		}
	case WalletCommission:
		if p.AmountVND > 0 {
			return Errorf(EINVALID, "posting %s: a commission debits the wallet (negative amount)", p.ID)
		}
	case WalletAdjustment:
		if strings.TrimSpace(p.Reason) == "" {
			return Errorf(EINVALID, "posting %s: an adjustment needs a reason", p.ID)
		}
	case WalletReversal:
		if p.Reverses == "" || strings.TrimSpace(p.Reason) == "" {
			return Errorf(EINVALID, "posting %s: a reversal names the posting it reverses and a reason", p.ID)
		}
	}
	if p.ExpectedDiffVND != nil && p.Type != WalletAdjustment {
		return Errorf(EINVALID, "posting %s: only an adjustment has an expected diff", p.ID)
	}
	return nil
}

// Legs returns the accounts a posting of its type debits and credits and
// the (positive) amount moved. A reversal's legs are the reversed entry's,
// swapped: pass it as orig (nil otherwise). EINVALID.
func (p *Posting) Legs(orig *WalletEntry) (debit, credit string, amount int64, err error) {
	if err := p.Validate(); err != nil {
		return "", "", 0, err
	}
	wallet := PartnerAccount(p.PartnerID)
	amount = p.AmountVND
	if amount < 0 {
		amount = -amount
	}
	var counter string
	switch p.Type {
	case WalletTopup, WalletRefund:
		counter = GatewayAccount(p.Gateway)
	case WalletCommission:
		counter = AccountCommission
	case WalletAdjustment:
		counter = AccountAdjustments
	case WalletReversal:
		if orig == nil || orig.ID != p.Reverses {
			return "", "", 0, Errorf(EINVALID, "posting %s: the reversed posting is required", p.ID)
		}
		if orig.PartnerID != p.PartnerID || orig.WalletEffect() != -p.AmountVND {
			return "", "", 0, Errorf(EINVALID, "posting %s: a reversal undoes %s in full (%d VND for partner %s)",
				p.ID, orig.ID, -orig.WalletEffect(), orig.PartnerID)
		}
		return orig.CreditAccount, orig.DebitAccount, orig.AmountVND, nil
	}
	if p.AmountVND > 0 {
		return counter, wallet, amount, nil
	}
	return wallet, counter, amount, nil
}

// WalletEntry is one committed posting: a row of
// partner_wallet_transactions.
type WalletEntry struct {
	Seq             int64        `json:"seq"` // 1, 2, 3… in commit order: the chain's order
	ID              string       `json:"id"`
	Type            WalletTxType `json:"type"`
	PartnerID       string       `json:"partner_id"`
	DebitAccount    string       `json:"debit_account"`
	CreditAccount   string       `json:"credit_account"`
	AmountVND       int64        `json:"amount_vnd"` // > 0, moved from debit to credit
	BalanceAfterVND int64        `json:"balance_after_vnd"`
	Gateway         string       `json:"gateway,omitempty"`
	GatewayRef      string       `json:"gateway_ref,omitempty"`
	OrderID         string       `json:"order_id,omitempty"`
	Reverses        string       `json:"reverses,omitempty"`
	Reason          string       `json:"reason,omitempty"`
	ExpectedDiffVND *int64       `json:"expected_diff_vnd,omitempty"`
	Actor           string       `json:"actor"`
	BodyHash        string       `json:"body_sha256"`
	CreatedAt       time.Time    `json:"created_at"`
	PrevHash        string       `json:"prev_hash"`
	Hash            string       `json:"hash"`
}

// WalletEffect is the entry's effect on its partner's wallet: positive
// when the wallet was credited.
func (e *WalletEntry) WalletEffect() int64 {
	switch PartnerAccount(e.PartnerID) {
	case e.CreditAccount:
		return e.AmountVND
	case e.DebitAccount:
		return -e.AmountVND
	}
	return 0
}

// GenesisHash is the PrevHash of the first entry.
var GenesisHash = strings.Repeat("0", 64)

// ComputeHash returns the hex SHA-256 of the entry's PrevHash and every
// other field but Hash (times in microseconds, as every backend keeps
// them).
func (e *WalletEntry) ComputeHash() string {
	exp := "-"
	if e.ExpectedDiffVND != nil {
		exp = strconv.FormatInt(*e.ExpectedDiffVND, 10)
	}
	return hashFields(e.PrevHash, strconv.FormatInt(e.Seq, 10), e.ID, string(e.Type), e.PartnerID, e.DebitAccount,
		e.CreditAccount, strconv.FormatInt(e.AmountVND, 10), strconv.FormatInt(e.BalanceAfterVND, 10), e.Gateway,
		e.GatewayRef, e.OrderID, e.Reverses, e.Reason, exp, e.Actor, e.BodyHash,
		strconv.FormatInt(e.CreatedAt.UnixMicro(), 10))
}

// hashFields hashes fields length-prefixed, so no two lists of fields
// share an encoding.
func hashFields(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// NoFloor is the floor of a wallet nobody configured one for: it never
// stops offers. A floor is opt-in (SetWalletFloor); a new partner's wallet
// may go below zero until finance sets one.
const NoFloor = math.MinInt64

// WalletAccount is a ledger account and its balance (credits − debits).
type WalletAccount struct {
	ID         string `json:"account"`
	PartnerID  string `json:"partner_id,omitempty"` // for a partner's wallet
	BalanceVND int64  `json:"balance_vnd"`
	// FloorVND: below it a partner's technicians get no new offers
	// (NoFloor when none is configured).
	FloorVND  int64     `json:"floor_vnd"`
	LastSeq   int64     `json:"last_seq"` // the last entry that moved it
	UpdatedAt time.Time `json:"updated_at"`
}

// Wallet states.
const (
	WalletActive     = "active"
	WalletBelowFloor = "below_floor"
)

// State is "below_floor" for a partner's wallet under its floor, "active"
// otherwise.
func (a *WalletAccount) State() string {
	if a.PartnerID != "" && a.BalanceVND < a.FloorVND {
		return WalletBelowFloor
	}
	return WalletActive
}

// WalletEntryFilter selects entries. Zero fields select everything.
type WalletEntryFilter struct {
	PartnerID string
	Type      WalletTxType
	From, To  time.Time // created in [From, To)
	AfterSeq  int64
	Limit     int // 0, negative or above 10000 means 1000
}

// WalletStore reads the ledger.
type WalletStore interface {
	// FindWalletAccount returns an account as last committed; ENOTFOUND
	// for an account no posting or floor ever touched.
	FindWalletAccount(ctx context.Context, id string) (*WalletAccount, error)
	// FindWalletAccounts returns every account by id, as last committed.
	// No codes.
	FindWalletAccounts(ctx context.Context) ([]*WalletAccount, error)
	// FindWalletsBelowFloor lists the partners whose wallet is below its
	// floor, as last committed. No codes.
	FindWalletsBelowFloor(ctx context.Context) ([]string, error)
	// FindWalletEntry returns an entry by its posting id; ENOTFOUND.
	FindWalletEntry(ctx context.Context, id string) (*WalletEntry, error)
	// FindWalletEntries lists entries matching f in chain order. No codes.
	FindWalletEntries(ctx context.Context, f WalletEntryFilter) ([]*WalletEntry, error)
	// FindTopup returns a top-up by its gateway reference, as last
	// committed; ENOTFOUND.
	FindTopup(ctx context.Context, gateway, txnRef string) (*Topup, error)
	// FindTopups lists top-ups matching f, oldest first. No codes.
	FindTopups(ctx context.Context, f TopupFilter) ([]*Topup, error)
	// ScanWalletLedger calls accounts with every account, then entry with
	// every entry in chain order, all read from one consistent snapshot
	// (what verification needs while postings go on). An error from a
	// callback stops the scan and is returned unchanged. No codes.
	ScanWalletLedger(ctx context.Context, accounts func([]*WalletAccount) error, entry func(*WalletEntry) error) error
}

// WalletTx is the ledger's writes, committed with the posting's outbox
// event (and, for a manual posting, its audit entry).
type WalletTx interface {
	// PostWallet appends the posting's entry at the end of the chain and
	// moves the balances of both its accounts. first is false when an
	// entry with p.ID exists and has the same body: that entry is returned
	// and nothing is written. ECONFLICT when it exists with another body,
	// or when p reverses an entry already reversed; ENOTFOUND for an
	// unknown partner or reversed posting; EINVALID for a posting that
	// fails Validate or Legs; EFORBIDDEN (a *WalletRefused) when the
	// partner's wallet control or a guard rail refuses it (CheckPosting,
	// judged after the chain's head is locked, before anything is
	// written: the transaction may go on).
	PostWallet(ctx context.Context, p Posting) (e *WalletEntry, first bool, err error)
	// InsertTopup records a new top-up; ECONFLICT when its ID or its
	// (gateway, txn ref) exists, ENOTFOUND for an unknown partner.
	InsertTopup(ctx context.Context, t *Topup) error
	// TopupForUpdate reads a top-up by its gateway reference and locks it
	// for the rest of the tx; ENOTFOUND.
	TopupForUpdate(ctx context.Context, gateway, txnRef string) (*Topup, error)
	// UpdateTopup writes a top-up's status and gateway details
	// (status, transaction no, bank code, pay date, posting id, updated
	// at); ENOTFOUND.
	UpdateTopup(ctx context.Context, t *Topup) error
	// SetWalletFloor sets a partner's wallet floor (creating the account
	// with a zero balance if needed); ENOTFOUND for an unknown partner.
	SetWalletFloor(ctx context.Context, partnerID string, floorVND int64, at time.Time) (*WalletAccount, error)
}

// Wallet event types: a topup or refund on payments.events, the others on
// partners.events (see Event.Topic).
const (
	EventWalletTopup      = "payment.wallet_topup"
	EventWalletRefund     = "payment.wallet_refund"
	EventWalletCommission = "partner.wallet_commission"
	EventWalletAdjustment = "partner.wallet_adjustment"
	EventWalletReversal   = "partner.wallet_reversal"
)

// WalletEventType is the event a posting of type t publishes.
func WalletEventType(t WalletTxType) string {
	switch t {
	case WalletTopup:
		return EventWalletTopup
	case WalletRefund:
		return EventWalletRefund
	case WalletCommission:
		return EventWalletCommission
	case WalletAdjustment:
		return EventWalletAdjustment
	}
	return EventWalletReversal
}

// WalletEventData is the payload of every wallet event.
type WalletEventData struct {
	PostingID       string       `json:"posting_id"`
	Seq             int64        `json:"seq"`
	Type            WalletTxType `json:"type"`
	PartnerID       string       `json:"partner_id"`
	AmountVND       int64        `json:"amount_vnd"` // the effect on the wallet
	BalanceAfterVND int64        `json:"balance_after_vnd"`
	Gateway         string       `json:"gateway,omitempty"`
	GatewayRef      string       `json:"gateway_ref,omitempty"`
	OrderID         string       `json:"order_id,omitempty"`
	Reverses        string       `json:"reverses,omitempty"`
	Reason          string       `json:"reason,omitempty"`
	Actor           string       `json:"actor"`
	// ClientIP is the address a topup was requested from, when known
	// (fraud rules read it).
	ClientIP string `json:"client_ip,omitempty"`
}

// TopupStatus is where a top-up stands.
type TopupStatus string

// Top-up statuses: pending until the gateway's notification (or a
// query) says confirmed or failed.
const (
	TopupPending   TopupStatus = "pending"
	TopupConfirmed TopupStatus = "confirmed"
	TopupFailed    TopupStatus = "failed"
	// TopupHeld: the gateway took the money but the ledger refused the
	// credit (a frozen wallet, a soft block's cap, a guard rail): stored,
	// not credited, held for reversal or release (HoldReason says why).
	TopupHeld TopupStatus = "held"
	// TopupReversing: security asked the gateway to refund a held top-up
	// to its payer and the outcome is not known yet (the call failed or
	// timed out after VNPay may have refunded): only a retried reversal
	// moves it on (a refund already made answers 94: reversed), never a
	// release.
	TopupReversing TopupStatus = "reversing"
	// TopupReversed: the gateway refunded the held top-up to its payer;
	// nothing was ever credited.
	TopupReversed TopupStatus = "reversed"
)

// HeldTopup reports whether a top-up's money is at the gateway and not
// in the wallet: held, being reversed, or reversed (what reconciliation
// explains instead of reporting missing).
func HeldTopup(s TopupStatus) bool {
	return s == TopupHeld || s == TopupReversing || s == TopupReversed
}

// Topup is a partner's request to pay money into its wallet through a
// gateway, and what the gateway said of it.
type Topup struct {
	ID        string      `json:"topup_id"`
	PartnerID string      `json:"partner_id"`
	Gateway   string      `json:"gateway"`
	TxnRef    string      `json:"txn_ref"` // vnp_TxnRef
	AmountVND int64       `json:"amount_vnd"`
	Status    TopupStatus `json:"status"`
	// ClientIP is where the request came from (fraud rules read it).
	ClientIP string `json:"client_ip,omitempty"`
	// UserAgent and DeviceID (the X-Device-Id header) of the request, where
	// known: the fraud rules' evidence.
	UserAgent     string    `json:"user_agent,omitempty"`
	DeviceID      string    `json:"device_id,omitempty"`
	TransactionNo string    `json:"transaction_no,omitempty"` // vnp_TransactionNo
	BankCode      string    `json:"bank_code,omitempty"`
	PayDate       time.Time `json:"pay_date,omitzero"`
	PostingID     string    `json:"posting_id,omitempty"` // its ledger entry, once confirmed
	// HoldReason: the rule that held it (smp.RuleFrozen …), while held.
	HoldReason string `json:"hold_reason,omitempty"`
	// RefundAttempts, RefundError and RefundNo: the reversal of a held
	// top-up through the gateway's refund API: how many times it was
	// asked, the last failure (empty once it succeeded) and the refund's
	// transaction number at the gateway.
	RefundAttempts int       `json:"refund_attempts,omitempty"`
	RefundError    string    `json:"refund_error,omitempty"`
	RefundNo       string    `json:"refund_no,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// TopupFilter selects top-ups. Zero fields select everything.
type TopupFilter struct {
	PartnerID string
	Status    TopupStatus
	// Statuses selects any of them (with Status, either).
	Statuses []TopupStatus
	From, To time.Time // created in [From, To)
	// After, when set, starts after this top-up in the order FindTopups
	// answers (created_at, then id): the cursor of the next page.
	After *Topup
	Limit int // 0, negative or above 10000 means 1000
}

// TopupFinder finds top-ups, a page at a time (WalletStore's FindTopups).
type TopupFinder interface {
	FindTopups(ctx context.Context, f TopupFilter) ([]*Topup, error)
}

// AllTopups reads every top-up f selects, page by page (f.Limit a page;
// 0 means MaxTopupPage), so that no caller stops at a page's end without
// knowing it.
func AllTopups(ctx context.Context, s TopupFinder, f TopupFilter) ([]*Topup, error) {
	if f.Limit <= 0 || f.Limit > MaxTopupPage {
		f.Limit = MaxTopupPage
	}
	var all []*Topup
	for {
		page, err := s.FindTopups(ctx, f)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < f.Limit {
			return all, nil
		}
		if f.After != nil && page[len(page)-1].ID == f.After.ID {
			return nil, fmt.Errorf("smp: top-ups: the store ignored the page cursor")
		}
		f.After = page[len(page)-1]
	}
}

// MaxTopupPage is the most top-ups one FindTopups answers.
const MaxTopupPage = 10000

// WalletEntryFinder finds ledger entries, a page at a time (WalletStore's
// FindWalletEntries).
type WalletEntryFinder interface {
	FindWalletEntries(ctx context.Context, f WalletEntryFilter) ([]*WalletEntry, error)
}

// AllWalletEntries reads every entry f selects, in seq order, page by page
// (f.Limit a page; 0 means MaxTopupPage).
func AllWalletEntries(ctx context.Context, s WalletEntryFinder, f WalletEntryFilter) ([]*WalletEntry, error) {
	if f.Limit <= 0 || f.Limit > MaxTopupPage {
		f.Limit = MaxTopupPage
	}
	var all []*WalletEntry
	for {
		page, err := s.FindWalletEntries(ctx, f)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(page) < f.Limit {
			return all, nil
		}
		if page[len(page)-1].Seq <= f.AfterSeq {
			return nil, fmt.Errorf("smp: wallet entries: the store ignored the page cursor")
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
}
