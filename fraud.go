package smp

import (
	"context"
	"encoding/json"
	"time"
)

// Fraud detection (issue 18, runbook INC-011): the fraud-detector consumer
// evaluates every top-up request against the rules of rules_engine.yaml
// and stores one FraudDecision per evaluation, explained: each rule's hit
// or miss with the values it saw, a score, an outcome and the evidence.

// FraudOutcome is what a decision asks for, from the mildest.
type FraudOutcome string

// Outcomes, set per rule in the rules file; a decision's outcome is the
// strongest of the rules it hit (allow when it hit none).
const (
	FraudAllow     FraudOutcome = "allow"
	FraudReview    FraudOutcome = "review"
	FraudSoftBlock FraudOutcome = "soft_block"
	FraudFreeze    FraudOutcome = "freeze"
)

// Rank orders outcomes (allow 0 … freeze 3); -1 for an unknown one.
func (o FraudOutcome) Rank() int {
	switch o {
	case FraudAllow:
		return 0
	case FraudReview:
		return 1
	case FraudSoftBlock:
		return 2
	case FraudFreeze:
		return 3
	}
	return -1
}

// Severities of a rule (the label of fraud_detection_signals_total).
const (
	SeverityLow    = "low"
	SeverityMedium = "medium"
	SeverityHigh   = "high"
)

// SeverityRank orders severities (none 0, low 1 … high 3); -1 if unknown.
func SeverityRank(s string) int {
	switch s {
	case "":
		return 0
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	}
	return -1
}

// Rule results.
const (
	RuleHit     = "hit"
	RuleMiss    = "miss"
	RuleUnknown = "unknown" // an input it needs is unknown (no GeoIP database): never a signal
	RuleError   = "error"   // the expression failed at run time: never a signal
)

// FraudRuleResult is one rule's verdict on one event.
type FraudRuleResult struct {
	Rule     string         `json:"rule"`
	Result   string         `json:"result"` // hit, miss, unknown, error
	Severity string         `json:"severity"`
	Outcome  FraudOutcome   `json:"outcome"`
	Score    int            `json:"score"`
	When     string         `json:"when"`             // the expression
	Values   map[string]any `json:"values,omitempty"` // what it saw
	Reason   string         `json:"reason,omitempty"` // why unknown or error
}

// FraudEvidence is what an investigation needs of an evaluated event
// (INC-011: "export logs, IP records, device fingerprints").
type FraudEvidence struct {
	TxnIDs    []string `json:"txn_ids"`
	IPs       []string `json:"ips,omitempty"`
	Country   string   `json:"ip_country,omitempty"`
	UserAgent string   `json:"user_agent,omitempty"`
	DeviceID  string   `json:"device_id,omitempty"`
}

// FraudDecision is one evaluation of one event: a row of fraud_decisions.
type FraudDecision struct {
	ID        string       `json:"decision_id"` // "fd-" + the event id: one per event
	EventID   string       `json:"event_id"`
	EventType string       `json:"event_type"`
	PartnerID string       `json:"partner_id"`
	TxnID     string       `json:"txn_id"` // the evaluated top-up's vnp_TxnRef
	AmountVND int64        `json:"amount_vnd"`
	Score     int          `json:"score"` // the hit rules' scores, summed, at most 100
	Outcome   FraudOutcome `json:"outcome"`
	// Severity is the highest severity among the hit rules ("" for none).
	Severity string `json:"severity"`
	// Signals names the hit rules.
	Signals  []string          `json:"signals"`
	Rules    []FraudRuleResult `json:"rules"`
	Evidence FraudEvidence     `json:"evidence"`
	// RulesVersion is the hash of the rules file that decided.
	RulesVersion string    `json:"rules_version"`
	OccurredAt   time.Time `json:"occurred_at"` // the event's time
	CreatedAt    time.Time `json:"created_at"`
}

// FraudDecisionFilter selects decisions. Zero fields select everything.
type FraudDecisionFilter struct {
	PartnerID string
	// Flagged selects only decisions that hit at least one rule.
	Flagged  bool
	From, To time.Time // created in [From, To)
	Limit    int       // 0, negative or above 10000 means 1000
}

// FraudStore reads decisions.
type FraudStore interface {
	// FindFraudDecisions returns the decisions f selects, newest first.
	FindFraudDecisions(ctx context.Context, f FraudDecisionFilter) ([]*FraudDecision, error)
}

// FraudTx writes decisions in the transaction that records the event.
type FraudTx interface {
	// InsertFraudDecision stores d. ECONFLICT when its id exists,
	// EINVALID for a missing id, partner or unknown outcome.
	InsertFraudDecision(ctx context.Context, d *FraudDecision) error
}

// FraudTopupObs is one top-up as the detector's windows keep it.
type FraudTopupObs struct {
	EventID   string
	TxnID     string
	PartnerID string
	IP        string
	AmountVND int64
	At        time.Time
}

// FraudWindowTopup is a top-up in a window.
type FraudWindowTopup struct {
	TxnID     string    `json:"txn_id"`
	PartnerID string    `json:"partner_id"`
	AmountVND int64     `json:"amount_vnd"`
	At        time.Time `json:"at"`
}

// FraudWindowView is what the windows held when a top-up was recorded:
// the partner's and the IP's top-ups within the kept span (this one
// included) and the partner's history before it.
type FraudWindowView struct {
	Partner []FraudWindowTopup `json:"partner"`
	IP      []FraudWindowTopup `json:"ip"`
	// Before this top-up: how many top-ups the partner made, their sum,
	// and the largest ratio (per mille, rounded up) of a top-up to the partner's
	// average before it.
	PriorCount         int64 `json:"prior_count"`
	PriorSumVND        int64 `json:"prior_sum_vnd"`
	PriorMaxRatioMilli int64 `json:"prior_max_ratio_milli"`
}

// FraudWindows keeps the detector's windows and partner averages where
// every detector sees them (Redis with MySQL, in-process on the embedded
// default). Implementations: inmem.FraudWindows, redisstore.FraudWindows;
// both pass fraudtest.RunWindows.
type FraudWindows interface {
	// RecordTopup adds o (once by o.EventID: recording it again changes
	// nothing and returns the first answer), drops what is older than
	// keep before o.At, and returns the view as of o.
	RecordTopup(ctx context.Context, o FraudTopupObs, keep time.Duration) (*FraudWindowView, error)
	// SetPartnerCountry records a partner's registered country.
	SetPartnerCountry(ctx context.Context, partnerID, country string) error
	// PartnerCountry returns it, "" when unknown.
	PartnerCountry(ctx context.Context, partnerID string) (string, error)
}

// MarshalFraudJSON is json.Marshal for the decision's JSON columns.
func MarshalFraudJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
