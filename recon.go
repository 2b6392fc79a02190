package smp

import (
	"context"
	"time"
)

// Wallet reconciliation (runbook INC-010): every night the job
// wallet-reconciliation-cron compares, per partner, SMP's wallet balance
// with what the payment gateway's records support for the previous day
// (Asia/Ho_Chi_Minh), and keeps every run with its rows
// (wallet_recon_runs, wallet_recon_rows). Package recon computes them;
// docs/wallets.md describes the comparison.

// Reconciliation verdicts of a partner's row.
const (
	// ReconOK: SMP and the gateway agree within the tolerance.
	ReconOK = "ok"
	// ReconAutoCorrected: a gateway transaction SMP had missed for under
	// 24 h was queried (querydr), applied, and then everything agreed
	// (runbook scenario 1).
	ReconAutoCorrected = "auto_corrected"
	// ReconExplained: the difference is what the day's manual adjustments
	// said to expect (their expected_diff_vnd; scenario 2), or top-ups the
	// gateway settled that SMP holds uncredited or refunded (held_in_smp).
	ReconExplained = "explained"
	// ReconMismatch: a difference beyond the tolerance that nothing
	// explains: diff_pct > 0.01 % or |diff| > 100,000 VND.
	ReconMismatch = "mismatch"
	// ReconInconclusive: the comparison could not be made (the gateway
	// unreachable or its breaker open, a stale currency rate): never a
	// difference.
	ReconInconclusive = "inconclusive"
)

// Run statuses.
const (
	// ReconCompleted: the gateway's records were read and every partner
	// compared (some partners may still be inconclusive: a stale rate).
	ReconCompleted = "completed"
	// ReconRunInconclusive: the gateway's records could not be read (down,
	// breaker open): every partner is inconclusive.
	ReconRunInconclusive = "inconclusive"
	// ReconFailed: the run stopped on an internal error (see Error).
	ReconFailed = "failed"
)

// Reconciliation triggers.
const (
	ReconTriggerCron   = "cron"   // the nightly schedule (a process's loop or the Kubernetes CronJob)
	ReconTriggerManual = "manual" // "run reconciliation now" (finance; audited)
)

// Mismatch thresholds (runbook INC-010's trigger): a row is a mismatch
// when its unexplained difference is above 0.01 % of the gateway's
// balance or above 100,000 VND in absolute value.
const (
	ReconMaxDiffVND = 100_000
	// ReconMaxDiffPct is 0.01 %, as a decimal string (compared exactly).
	ReconMaxDiffPct = "0.01"
	// ReconStaleRateDays: a currency rate older than this many days before
	// the record's day makes the partner inconclusive.
	ReconStaleRateDays = 2
	// ReconAutoCorrectWindow: a gateway transaction SMP missed is
	// auto-corrected only while it is younger than this (the runbook's
	// "lag < 24h").
	ReconAutoCorrectWindow = 24 * time.Hour
)

// ReconRun is one run of the reconciliation for a day.
type ReconRun struct {
	ID      string `json:"id"`
	Day     string `json:"day"`     // YYYY-MM-DD in Asia/Ho_Chi_Minh
	Trigger string `json:"trigger"` // cron, manual
	Actor   string `json:"actor"`
	Reason  string `json:"reason,omitempty"`
	Status  string `json:"status"` // completed, inconclusive, failed
	// Verdict is the worst of its rows': mismatch, inconclusive,
	// auto_corrected, explained, ok (in that order).
	Verdict       string `json:"verdict"`
	Partners      int    `json:"partners"`
	Mismatches    int    `json:"mismatches"`
	Inconclusive  int    `json:"inconclusive"`
	AutoCorrected int    `json:"auto_corrected"`
	// MaxDiffPct and MaxDiffVND are the largest unexplained differences
	// over the conclusive rows (a decimal string of percent, 4 places).
	MaxDiffPct string    `json:"max_diff_pct"`
	MaxDiffVND int64     `json:"max_diff_vnd"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Rows, by partner: filled by FindReconRun, not by FindReconRuns.
	Rows []ReconRow `json:"rows,omitempty"`
}

// ReconRow is a partner's line of a run: the runbook's columns
// partner_id, smp_balance, gateway_balance, diff_amount, diff_pct,
// last_txn_id, and the verdict with what supports it.
type ReconRow struct {
	PartnerID         string `json:"partner_id"`
	SMPBalanceVND     int64  `json:"smp_balance"`
	GatewayBalanceVND int64  `json:"gateway_balance"`
	// DiffVND is SMPBalanceVND − GatewayBalanceVND; DiffPct its share of
	// |GatewayBalanceVND| in percent, a decimal string with 4 places
	// (exact arithmetic; 100 when the gateway's balance is 0).
	DiffVND int64  `json:"diff_amount"`
	DiffPct string `json:"diff_pct"`
	// LastTxnID is the last ledger entry of the partner on the day's end.
	LastTxnID string `json:"last_txn_id"`
	// ExpectedDiffVND is the sum of the day's adjustments' expected diffs
	// and of the held top-ups' (minus their amounts); the row's
	// unexplained difference is DiffVND − ExpectedDiffVND.
	ExpectedDiffVND int64       `json:"expected_diff"`
	Verdict         string      `json:"verdict"`
	Note            string      `json:"note,omitempty"`
	Detail          ReconDetail `json:"detail"`
}

// ReconDetail is what a row's verdict rests on.
type ReconDetail struct {
	// AutoCorrected: the gateway transactions applied by this run.
	AutoCorrected []ReconPair `json:"auto_corrected,omitempty"`
	// Adjustments: the day's manual adjustments, with their reasons
	// (scenario 2).
	Adjustments []ReconAdjustment `json:"adjustments,omitempty"`
	// Pairs: each transaction on which SMP and the gateway differ, SMP's
	// entry beside the gateway's record (scenario 4).
	Pairs []ReconPair `json:"pairs,omitempty"`
	// Held: the gateway's records of top-ups SMP holds, is reversing or
	// reversed (kind held_in_smp, with the top-up's status): each
	// explains its own amount.
	Held []ReconHeldTopup `json:"held,omitempty"`
	// Truncated counts the pairs left out beyond the first 200.
	Truncated int `json:"truncated,omitempty"`
}

// Kinds of a ReconPair.
const (
	ReconAmountDiffers    = "amount_differs"     // both sides have it, with other amounts
	ReconMissingInSMP     = "missing_in_smp"     // the gateway settled it, SMP has no entry
	ReconMissingAtGateway = "missing_at_gateway" // SMP has an entry, the gateway no record of that day
	// ReconHeld: the gateway settled it and SMP holds it uncredited (a
	// frozen wallet, a soft block's cap, a guard rail), is reversing it or
	// refunded it to the payer: an explained difference (docs/wallets.md).
	ReconHeld = "held_in_smp"
)

// ReconPair is one transaction as each side has it.
type ReconPair struct {
	TxnRef  string              `json:"txn_ref"`
	Kind    string              `json:"kind"`
	SMP     *ReconEntry         `json:"smp,omitempty"`
	Gateway *ReconGatewayRecord `json:"gateway,omitempty"`
}

// ReconEntry is SMP's side of a pair: a ledger entry.
type ReconEntry struct {
	ID        string    `json:"id"`
	Seq       int64     `json:"seq"`
	Type      string    `json:"type"`
	AmountVND int64     `json:"amount_vnd"` // the effect on the wallet
	CreatedAt time.Time `json:"created_at"`
}

// ReconGatewayRecord is the gateway's side of a pair: a line of its daily
// file, converted to VND at the rate of its day when in another currency.
type ReconGatewayRecord struct {
	TxnRef        string    `json:"txn_ref"`
	TransactionNo string    `json:"transaction_no,omitempty"`
	Currency      string    `json:"currency"`
	Amount        string    `json:"amount"` // in Currency, a decimal string
	AmountVND     int64     `json:"amount_vnd"`
	Rate          string    `json:"rate,omitempty"`
	RateDate      string    `json:"rate_date,omitempty"`
	PayDate       time.Time `json:"pay_date"`
}

// ReconHeldTopup is a held top-up the gateway settled: its record, and
// where SMP's top-up stands (held, reversing, reversed) and why.
type ReconHeldTopup struct {
	TxnRef     string              `json:"txn_ref"`
	Status     string              `json:"status"`
	HoldReason string              `json:"hold_reason,omitempty"`
	RefundNo   string              `json:"refund_no,omitempty"`
	Gateway    *ReconGatewayRecord `json:"gateway"`
}

// ReconAdjustment is a manual adjustment of the day: no gateway entry by
// nature, matched against its expected_diff_vnd.
type ReconAdjustment struct {
	ID              string    `json:"id"`
	AmountVND       int64     `json:"amount_vnd"`
	Reason          string    `json:"reason"`
	Actor           string    `json:"actor"`
	ExpectedDiffVND *int64    `json:"expected_diff_vnd"`
	Matched         bool      `json:"matched"` // its expected diff is its effect
	CreatedAt       time.Time `json:"created_at"`
}

// ReconRunFilter selects runs, newest first. Zero fields select every
// run; Limit 0 means 30 (at most 1000).
type ReconRunFilter struct {
	Day    string
	Status string
	Limit  int
}

// ReconStore reads the reconciliation's history.
type ReconStore interface {
	// FindReconRuns lists runs matching f, newest (started last) first,
	// without their rows. EINVALID for a limit out of range.
	FindReconRuns(ctx context.Context, f ReconRunFilter) ([]*ReconRun, error)
	// FindReconRun returns a run with its rows by partner; ENOTFOUND.
	FindReconRun(ctx context.Context, id string) (*ReconRun, error)
}

// ReconTx records runs (a manual run with its audit entry).
type ReconTx interface {
	// InsertReconRun records a finished run and its rows. ECONFLICT when
	// a run with its ID exists; EINVALID for a run without ID, day or
	// status, or a value longer than its column.
	InsertReconRun(ctx context.Context, r *ReconRun) error
}
