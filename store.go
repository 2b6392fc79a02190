package smp

import "context"

// The system of record (SQLite embedded, MySQL in production) is described
// by one small interface per aggregate, each in the aggregate's file:
//
//	OrderStore, OrderTx                 order.go
//	CatalogStore, CatalogWriter, CatalogTx   catalog.go
//	TokenStore                          token.go
//	FlagStore, FlagTx                   flag.go
//	AuditStore, AuditTx                 audit.go
//	DispatchTraceStore                  trace.go
//	ProcessedStore, ProcessedTx         processed.go
//	InboxStore, InboxTx                 payment.go (the provider event inbox, event_log)
//	OutboxStore, OutboxTx               outbox.go
//	AlertStore, AlertTx                 alert.go
//	StatusStore, StatusTx               status.go
//	IdempotencyStore, IdempotencyTx     idempotency.go
//	HeartbeatStore                      heartbeat.go (the processes' liveness)
//	WalletStore, WalletTx               wallet.go (the partners' ledger)
//	ReconStore, ReconTx                 recon.go (the wallets' reconciliation runs)
//	EnforcementStore, EnforcementTx     enforcement.go (wallet freezes and soft blocks, reports, notes, allowlists)
//	SessionStore                        login.go (with OTPStore and RateCounter, kept outside the database)
//	TechnicianSettingsStore, TechnicianSettingsTx   availability.go
//	FraudStore, FraudTx                 fraud.go (the fraud detector's decisions)
//
// Packages declare the narrow interface they use, composed of these.
// Every change of an order or of money goes through Transactor.InTx
// together with its outbox event and, for manual actions, its audit entry.
//
// Error contract: a method returns only the codes its comment names (see
// error.go). Any other failure (the database unreachable, a driver error)
// is returned without a code, which ErrorCode reports as EINTERNAL.
// Besides the codes it names, every write returns EINVALID, and writes
// nothing, for a value longer than its field is kept (sizes count
// characters: identifiers 64, names 100 to 200, reasons 1000, free texts
// 64 KiB; the migrations have each one), rather than truncating it on one
// backend and keeping it whole on another. Limits and lengths behave the
// same on every backend; the conformance suite (smp/storetest) holds
// every implementation to these comments.

// Transactor runs writes that must commit together.
type Transactor interface {
	// InTx runs fn in one transaction and commits if fn returns nil. If fn
	// returns an error, nothing fn wrote is kept and that error is returned
	// unchanged (its code included). A failed commit is returned uncoded.
	// An implementation may run fn again when the database aborted the
	// transaction for a deadlock, so fn must act only through the Tx.
	InTx(ctx context.Context, fn func(Tx) error) error
}

// Tx is the set of writes that must commit together: a change, its outbox
// event and its audit entry.
type Tx interface {
	OrderTx
	CatalogTx
	OutboxTx
	AuditTx
	FlagTx
	StatusTx
	InboxTx
	ProcessedTx
	AlertTx
	IdempotencyTx
	WalletTx
	TechnicianSettingsTx
	MasterDataTx
	ReplicationTx
	FraudTx
	ReconTx
	EnforcementTx
}
