package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"smp"
)

var (
	_ smp.FraudStore = (*DB)(nil)
	_ smp.FraudTx    = (*Tx)(nil)
)

const fraudCols = `id, event_id, event_type, partner_id, txn_id, amount_vnd, score, outcome, severity, signals, rules, evidence, rules_version, occurred_at, created_at`

// InsertFraudDecision stores a decision (see smp.FraudTx).
func (tx *Tx) InsertFraudDecision(ctx context.Context, d *smp.FraudDecision) error {
	switch {
	case d.ID == "" || d.EventID == "" || d.PartnerID == "":
		return smp.Errorf(smp.EINVALID, "insert fraud decision: id, event and partner are required")
	case d.Outcome.Rank() < 0:
		return smp.Errorf(smp.EINVALID, "insert fraud decision %s: unknown outcome %q", d.ID, d.Outcome)
	case smp.SeverityRank(d.Severity) < 0:
		return smp.Errorf(smp.EINVALID, "insert fraud decision %s: unknown severity %q", d.ID, d.Severity)
	}
	rules, evidence := smp.MarshalFraudJSON(d.Rules), smp.MarshalFraudJSON(d.Evidence)
	signals := strings.Join(d.Signals, ",")
	if err := checkSizes("insert fraud decision",
		chars("id", d.ID, 200), chars("event_id", d.EventID, 191), chars("event_type", d.EventType, 64),
		chars("partner_id", d.PartnerID, 64), chars("txn_id", d.TxnID, 100), chars("signals", signals, 1000),
		chars("rules", rules, 4<<20), chars("evidence", evidence, 64<<10), chars("rules_version", d.RulesVersion, 64)); err != nil {
		return err
	}
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO fraud_decisions (`+fraudCols+`) VALUES (`+placeholders(15)+`)`,
		d.ID, d.EventID, d.EventType, d.PartnerID, d.TxnID, d.AmountVND, d.Score, string(d.Outcome), d.Severity, signals,
		rules, evidence, d.RulesVersion, micros(d.OccurredAt), micros(d.CreatedAt))
	if isUniqueViolation(err) {
		return smp.Errorf(smp.ECONFLICT, "fraud decision %s exists", d.ID)
	} else if err != nil {
		return fmt.Errorf("sqlstore: insert fraud decision: %w", err)
	}
	return nil
}

// FindFraudDecisions returns decisions, newest first (see smp.FraudStore).
func (db *DB) FindFraudDecisions(ctx context.Context, f smp.FraudDecisionFilter) ([]*smp.FraudDecision, error) {
	var where []string
	var args []any
	if f.PartnerID != "" {
		where, args = append(where, "partner_id = ?"), append(args, f.PartnerID)
	}
	if f.Flagged {
		where = append(where, "signals <> ''")
	}
	if !f.From.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, f.To.UnixMicro())
	}
	if f.Limit <= 0 || f.Limit > 10000 {
		f.Limit = 1000
	}
	q := `SELECT ` + fraudCols + ` FROM fraud_decisions`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := db.reader().QueryContext(ctx, q+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find fraud decisions: %w", err)
	}
	defer rows.Close()
	var out []*smp.FraudDecision
	for rows.Next() {
		var d smp.FraudDecision
		var outcome, signals, rules, evidence string
		var occurred, created int64
		if err := rows.Scan(&d.ID, &d.EventID, &d.EventType, &d.PartnerID, &d.TxnID, &d.AmountVND, &d.Score, &outcome, &d.Severity,
			&signals, &rules, &evidence, &d.RulesVersion, &occurred, &created); err != nil {
			return nil, fmt.Errorf("sqlstore: find fraud decisions: %w", err)
		}
		d.Outcome, d.OccurredAt, d.CreatedAt = smp.FraudOutcome(outcome), fromMicros(occurred), fromMicros(created)
		d.Signals = []string{}
		if signals != "" {
			d.Signals = strings.Split(signals, ",")
		}
		if err := json.Unmarshal([]byte(rules), &d.Rules); err != nil {
			return nil, fmt.Errorf("sqlstore: fraud decision %s rules: %w", d.ID, err)
		}
		if err := json.Unmarshal([]byte(evidence), &d.Evidence); err != nil {
			return nil, fmt.Errorf("sqlstore: fraud decision %s evidence: %w", d.ID, err)
		}
		out = append(out, &d)
	}
	return out, rows.Err()
}
