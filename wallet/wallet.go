// Package wallet is the partners' prepaid VND wallets: postings to the
// double-entry ledger of package smp (wallet.go), each committed with its
// outbox event, and the verification of the ledger (the hash chain and
// every balance against its entries). docs/wallets.md describes the
// accounts, the posting types and the rules.
package wallet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"smp"
)

// Store is what the wallet service needs of the system of record.
type Store interface {
	smp.Transactor
	smp.WalletStore
	smp.EnforcementStore
	smp.ProcessedStore
	// FindOrderByID is smp.OrderStore's; FindTechnicianByID and
	// FindServiceByCode are smp.CatalogStore's (the commission's inputs).
	FindOrderByID(ctx context.Context, id string) (*smp.Order, error)
	FindTechnicianByID(ctx context.Context, id string) (*smp.Technician, error)
	FindServiceByCode(ctx context.Context, code string) (*smp.Service, error)
}

// Config of the wallet service.
type Config struct {
	// VNPay is the gateway partners top up through (CreateTopup,
	// HandleIPN); without it top-ups answer EUNAVAILABLE.
	VNPay VNPay
	// NewRef returns a fresh vnp_TxnRef (default: random); simulations
	// pass a seeded one.
	NewRef func() string
	// HTTPClient calls VNPay's API (default: a 10 s timeout).
	HTTPClient *http.Client
	// LargeValueVND: a top-up at or above it creates a compliance report
	// in its posting's transaction (default smp.LargeValueThresholdVND,
	// 400,000,000 VND).
	LargeValueVND int64
	Now           func() time.Time
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// Service posts to the ledger and verifies it.
type Service struct {
	store Store
	cfg   Config
	log   *slog.Logger

	conflicts *prometheus.CounterVec
	postings  *prometheus.CounterVec
	ipns      *prometheus.CounterVec
	refusals  *prometheus.CounterVec
}

// New returns the service.
func New(store Store, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LargeValueVND <= 0 {
		cfg.LargeValueVND = smp.LargeValueThresholdVND
	}
	s := &Service{store: store, cfg: cfg, log: cfg.Logger.With("service", "wallet"),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_wallet_idempotency_conflicts_total",
			Help: "Postings refused because their idempotency key was used before with another body (an alarm: a gateway or a caller reused a reference), by posting type."},
			[]string{"type"}),
		postings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_wallet_postings_total",
			Help: "Wallet postings by type and outcome (posted, duplicate, conflict, refused)."}, []string{"type", "outcome"}),
		ipns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_vnpay_ipn_total",
			Help: "VNPay payment notifications by the answer given (RspCode: 00 confirmed, 01 not found, 02 already confirmed, 04 invalid amount, 97 invalid checksum, 99 unknown error)."},
			[]string{"rsp_code"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "smp_wallet_refusals_total",
			Help: "Postings the ledger refused under a wallet control or a guard rail (runbook INC-011), by rule: frozen, soft_block_cap, velocity_topups, velocity_amount."},
			[]string{"rule"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{s.conflicts, s.postings, s.ipns, s.refusals} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// Posted is the outcome of a posting.
type Posted struct {
	Entry *smp.WalletEntry `json:"entry"`
	// Duplicate: the posting had been made before with the same body;
	// Entry is that first entry and nothing was written.
	Duplicate bool `json:"duplicate"`
}

// Post commits p in a transaction of its own (see PostTx).
func (s *Service) Post(ctx context.Context, p smp.Posting, clientIP string) (Posted, error) {
	var out Posted
	err := s.store.InTx(ctx, func(tx smp.Tx) (err error) {
		out, err = s.PostTx(ctx, tx, p, clientIP)
		return err
	})
	s.count(p.Type, err, out.Duplicate)
	return out, err
}

// PostTx posts p in tx and, for a new entry, adds its outbox event (a
// topup or refund on payments.events, the others on partners.events), so
// the money and its announcement commit together. A posting seen before
// with the same body is a duplicate (nothing written, no event); with
// another body ECONFLICT, counted in smp_wallet_idempotency_conflicts_total
// by the caller's Count (Post counts itself). Other codes as
// smp.WalletTx.PostWallet. clientIP, when known, is carried on the event.
func (s *Service) PostTx(ctx context.Context, tx smp.Tx, p smp.Posting, clientIP string) (Posted, error) {
	if p.At.IsZero() {
		p.At = s.cfg.Now()
	}
	e, first, err := tx.PostWallet(ctx, p)
	if err != nil {
		var refused *smp.WalletRefused
		if errors.As(err, &refused) {
			s.refusals.WithLabelValues(refused.Rule).Inc()
		}
		return Posted{}, err
	}
	if !first {
		return Posted{Entry: e, Duplicate: true}, nil
	}
	if err := tx.AddEvent(ctx, Event(e, clientIP)); err != nil {
		return Posted{}, fmt.Errorf("wallet: outbox event: %w", err)
	}
	if e.Type == smp.WalletTopup && e.AmountVND >= s.cfg.LargeValueVND {
		// Large-value reporting: in the posting's transaction.
		if err := tx.InsertComplianceReport(ctx, &smp.ComplianceReport{ID: smp.ReportLargeValue + ":" + e.ID, Kind: smp.ReportLargeValue,
			PartnerID: e.PartnerID, PostingID: e.ID, AmountVND: e.AmountVND, ThresholdVND: s.cfg.LargeValueVND, Status: smp.ReportOpen,
			CreatedAt: e.CreatedAt}); err != nil {
			return Posted{}, err
		}
	}
	return Posted{Entry: e}, nil
}

// Count records the outcome of a posting made with PostTx: a conflict is
// the alarm smp_wallet_idempotency_conflicts_total.
func (s *Service) Count(t smp.WalletTxType, err error, duplicate bool) { s.count(t, err, duplicate) }

func (s *Service) count(t smp.WalletTxType, err error, duplicate bool) {
	outcome := "posted"
	switch {
	case smp.ErrorCode(err) == smp.ECONFLICT:
		outcome = "conflict"
		s.conflicts.WithLabelValues(string(t)).Inc()
	case err != nil:
		outcome = "refused"
	case duplicate:
		outcome = "duplicate"
	}
	if !smp.ValidWalletTxType(t) {
		t = "unknown"
	}
	s.postings.WithLabelValues(string(t), outcome).Inc()
}

// Event is the outbox event of a new entry; its id is derived from the
// entry's sequence number, so it is unique and stable.
func Event(e *smp.WalletEntry, clientIP string) smp.Event {
	data, _ := json.Marshal(smp.WalletEventData{PostingID: e.ID, Seq: e.Seq, Type: e.Type, PartnerID: e.PartnerID,
		AmountVND: e.WalletEffect(), BalanceAfterVND: e.BalanceAfterVND, Gateway: e.Gateway, GatewayRef: e.GatewayRef,
		OrderID: e.OrderID, Reverses: e.Reverses, Reason: e.Reason, Actor: e.Actor, ClientIP: clientIP})
	return smp.Event{ID: fmt.Sprintf("wallet-%d", e.Seq), Type: smp.WalletEventType(e.Type), SchemaVersion: smp.EventSchemaVersion,
		AggregateID: e.PartnerID, OccurredAt: e.CreatedAt, Data: data}
}

// Wallet is a partner's wallet as the API shows it.
type Wallet struct {
	PartnerID  string    `json:"partner_id"`
	BalanceVND int64     `json:"balance_vnd"`
	FloorVND   *int64    `json:"floor_vnd"` // null: no floor configured
	State      string    `json:"state"`
	LastSeq    int64     `json:"last_seq"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// FindWallet returns a partner's wallet: a zero balance for a partner no
// posting touched yet. ENOTFOUND only from the store's other reads.
func (s *Service) FindWallet(ctx context.Context, partnerID string) (*Wallet, error) {
	a, err := s.store.FindWalletAccount(ctx, smp.PartnerAccount(partnerID))
	if smp.ErrorCode(err) == smp.ENOTFOUND {
		a = &smp.WalletAccount{ID: smp.PartnerAccount(partnerID), PartnerID: partnerID, FloorVND: smp.NoFloor}
	} else if err != nil {
		return nil, err
	}
	return toWallet(a), nil
}

func toWallet(a *smp.WalletAccount) *Wallet {
	w := &Wallet{PartnerID: a.PartnerID, BalanceVND: a.BalanceVND, State: a.State(), LastSeq: a.LastSeq, UpdatedAt: a.UpdatedAt}
	if a.FloorVND != smp.NoFloor {
		f := a.FloorVND
		w.FloorVND = &f
	}
	return w
}

// FindWallets lists the partners' wallets that a posting or a floor has
// touched, by partner.
func (s *Service) FindWallets(ctx context.Context) ([]*Wallet, error) {
	as, err := s.store.FindWalletAccounts(ctx)
	if err != nil {
		return nil, err
	}
	out := []*Wallet{}
	for _, a := range as {
		if a.PartnerID != "" {
			out = append(out, toWallet(a))
		}
	}
	return out, nil
}
