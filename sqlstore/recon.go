package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"smp"
)

// The wallets' reconciliation runs (smp.ReconStore, smp.ReconTx): a run
// in wallet_recon_runs, its rows by partner in wallet_recon_rows (the
// detail as JSON).

var (
	_ smp.ReconStore = (*DB)(nil)
	_ smp.ReconTx    = (*Tx)(nil)
)

const reconRunCols = `id, day, trigger_kind, actor, reason, status, verdict, partners, mismatches, inconclusive, auto_corrected,
	max_diff_pct, max_diff_vnd, error_text, started_at, finished_at`

const reconRowCols = `partner_id, smp_balance_vnd, gateway_balance_vnd, diff_vnd, diff_pct, expected_diff_vnd, last_txn_id, verdict, note, detail_json`

// maxReconDetail bounds a row's detail (MEDIUMTEXT holds 16 MiB).
const maxReconDetail = 4 << 20

func scanReconRun(row scanner) (*smp.ReconRun, error) {
	var r smp.ReconRun
	var started, finished int64
	if err := row.Scan(&r.ID, &r.Day, &r.Trigger, &r.Actor, &r.Reason, &r.Status, &r.Verdict, &r.Partners, &r.Mismatches, &r.Inconclusive,
		&r.AutoCorrected, &r.MaxDiffPct, &r.MaxDiffVND, &r.Error, &started, &finished); err != nil {
		return nil, err
	}
	r.StartedAt, r.FinishedAt = fromMicros(started), fromMicros(finished)
	return &r, nil
}

// FindReconRuns lists runs, newest first (see smp.ReconStore).
func (db *DB) FindReconRuns(ctx context.Context, f smp.ReconRunFilter) ([]*smp.ReconRun, error) {
	if f.Limit == 0 {
		f.Limit = 30
	}
	if f.Limit < 0 || f.Limit > 1000 {
		return nil, smp.Errorf(smp.EINVALID, "recon runs: limit %d: 1 to 1000", f.Limit)
	}
	q, args := `SELECT `+reconRunCols+` FROM wallet_recon_runs WHERE 1=1`, []any{}
	if f.Day != "" {
		q, args = q+` AND day = ?`, append(args, f.Day)
	}
	if f.Status != "" {
		q, args = q+` AND status = ?`, append(args, f.Status)
	}
	rows, err := db.fresh().QueryContext(ctx, q+` ORDER BY started_at DESC, id DESC LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: recon runs: %w", err)
	}
	defer rows.Close()
	out := []*smp.ReconRun{}
	for rows.Next() {
		r, err := scanReconRun(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: recon runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// FindReconRun returns a run with its rows (ENOTFOUND).
func (db *DB) FindReconRun(ctx context.Context, id string) (*smp.ReconRun, error) {
	q := db.fresh()
	r, err := scanReconRun(q.QueryRowContext(ctx, `SELECT `+reconRunCols+` FROM wallet_recon_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "reconciliation run %s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: recon run: %w", err)
	}
	rows, err := q.QueryContext(ctx, `SELECT `+reconRowCols+` FROM wallet_recon_rows WHERE run_id = ? ORDER BY partner_id`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: recon rows: %w", err)
	}
	defer rows.Close()
	r.Rows = []smp.ReconRow{}
	for rows.Next() {
		var w smp.ReconRow
		var detail string
		if err := rows.Scan(&w.PartnerID, &w.SMPBalanceVND, &w.GatewayBalanceVND, &w.DiffVND, &w.DiffPct, &w.ExpectedDiffVND, &w.LastTxnID,
			&w.Verdict, &w.Note, &detail); err != nil {
			return nil, fmt.Errorf("sqlstore: recon rows: %w", err)
		}
		if err := json.Unmarshal([]byte(detail), &w.Detail); err != nil {
			return nil, fmt.Errorf("sqlstore: recon row %s/%s: detail: %w", id, w.PartnerID, err)
		}
		r.Rows = append(r.Rows, w)
	}
	return r, rows.Err()
}

// InsertReconRun records a run and its rows (see smp.ReconTx).
func (tx *Tx) InsertReconRun(ctx context.Context, r *smp.ReconRun) error {
	switch {
	case r.ID == "" || r.Day == "" || r.Status == "":
		return smp.Errorf(smp.EINVALID, "insert recon run: id, day and status are required")
	}
	if err := checkSizes("insert recon run", chars("id", r.ID, 64), chars("day", r.Day, 10), chars("trigger", r.Trigger, 16),
		chars("actor", r.Actor, 200), chars("reason", r.Reason, 1000), chars("status", r.Status, 16), chars("verdict", r.Verdict, 16),
		chars("max_diff_pct", r.MaxDiffPct, 32), chars("error", r.Error, 1000)); err != nil {
		return err
	}
	details := make([]string, len(r.Rows))
	for i, w := range r.Rows {
		d, err := json.Marshal(w.Detail)
		if err != nil {
			return smp.Errorf(smp.EINVALID, "insert recon run: row %s: %v", w.PartnerID, err)
		}
		details[i] = string(d)
		if err := checkSizes("insert recon run", chars("partner_id", w.PartnerID, 64), chars("diff_pct", w.DiffPct, 32),
			chars("last_txn_id", w.LastTxnID, 128), chars("verdict", w.Verdict, 16), chars("note", w.Note, 1000),
			text("detail", details[i], maxReconDetail)); err != nil {
			return err
		}
	}
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO wallet_recon_runs (`+reconRunCols+`) VALUES (`+placeholders(16)+`)`,
		r.ID, r.Day, r.Trigger, r.Actor, r.Reason, r.Status, r.Verdict, r.Partners, r.Mismatches, r.Inconclusive, r.AutoCorrected,
		r.MaxDiffPct, r.MaxDiffVND, r.Error, micros(r.StartedAt), micros(r.FinishedAt))
	if isUniqueViolation(err) {
		return smp.Errorf(smp.ECONFLICT, "reconciliation run %s exists", r.ID)
	} else if err != nil {
		return fmt.Errorf("sqlstore: insert recon run: %w", err)
	}
	for i, w := range r.Rows {
		if _, err := tx.tx.ExecContext(ctx, `INSERT INTO wallet_recon_rows (run_id, `+reconRowCols+`) VALUES (`+placeholders(11)+`)`,
			r.ID, w.PartnerID, w.SMPBalanceVND, w.GatewayBalanceVND, w.DiffVND, w.DiffPct, w.ExpectedDiffVND, w.LastTxnID, w.Verdict, w.Note,
			details[i]); isUniqueViolation(err) {
			return smp.Errorf(smp.EINVALID, "insert recon run: partner %s twice", w.PartnerID)
		} else if err != nil {
			return fmt.Errorf("sqlstore: insert recon row: %w", err)
		}
	}
	return nil
}
