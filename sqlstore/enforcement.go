package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"smp"
)

// Enforcement (smp.EnforcementStore, smp.EnforcementTx): wallet_controls
// (freezes and soft blocks), compliance_reports, partner_admin_users
// (notes) and partner_ip_allowlists. A control is written only under the
// ledger's head lock, the lock every posting takes first, and PostWallet
// reads it after taking that lock (walletGuard): a posting is judged
// against the last committed control.

var (
	_ smp.EnforcementStore = (*DB)(nil)
	_ smp.EnforcementTx    = (*Tx)(nil)
)

const walletControlCols = `partner_id, state, reason, actor, since_at, until_at, chain_seq, updated_at`

func scanWalletControl(row scanner) (*smp.WalletControl, error) {
	var c smp.WalletControl
	var state string
	var since, until, updated int64
	if err := row.Scan(&c.PartnerID, &state, &c.Reason, &c.Actor, &since, &until, &c.ChainSeq, &updated); err != nil {
		return nil, err
	}
	c.State, c.Since, c.Until, c.UpdatedAt = smp.WalletControlState(state), fromMicros(since), fromMicros(until), fromMicros(updated)
	return &c, nil
}

// FindWalletControl returns a partner's control (ENOTFOUND), fresh.
func (db *DB) FindWalletControl(ctx context.Context, partnerID string) (*smp.WalletControl, error) {
	c, err := scanWalletControl(db.fresh().QueryRowContext(ctx, `SELECT `+walletControlCols+` FROM wallet_controls WHERE partner_id = ?`, partnerID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "no control on the wallet of partner %s", partnerID)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: find wallet control: %w", err)
	}
	return c, nil
}

// FindWalletControls lists every control, fresh.
func (db *DB) FindWalletControls(ctx context.Context) ([]*smp.WalletControl, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT `+walletControlCols+` FROM wallet_controls ORDER BY partner_id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find wallet controls: %w", err)
	}
	defer rows.Close()
	var out []*smp.WalletControl
	for rows.Next() {
		c, err := scanWalletControl(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find wallet controls: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// LockWalletControl takes the ledger's head lock and returns the
// partner's control (see smp.EnforcementTx).
func (tx *Tx) LockWalletControl(ctx context.Context, partnerID string) (*smp.WalletControl, error) {
	_, c, err := tx.lockWalletControl(ctx, partnerID, "lock wallet control")
	return c, err
}

// lockWalletControl locks the ledger's head, checks the partner exists
// and reads its control with a locking read: the head's seq and the
// control (nil when none).
func (tx *Tx) lockWalletControl(ctx context.Context, partnerID, op string) (int64, *smp.WalletControl, error) {
	var seq int64
	if err := tx.tx.QueryRowContext(ctx, `SELECT seq FROM wallet_chain WHERE id = 1`+tx.db.dialect.ForUpdate).Scan(&seq); err != nil {
		return 0, nil, fmt.Errorf("sqlstore: %s: lock chain: %w", op, err)
	}
	if err := tx.partnerExists(ctx, partnerID); err != nil {
		return 0, nil, err
	}
	c, err := scanWalletControl(tx.tx.QueryRowContext(ctx, `SELECT `+walletControlCols+` FROM wallet_controls WHERE partner_id = ?`+tx.db.dialect.ForUpdate, partnerID))
	if errors.Is(err, sql.ErrNoRows) {
		return seq, nil, nil
	} else if err != nil {
		return 0, nil, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return seq, c, nil
}

// SetWalletControl writes a control under the ledger's head lock (see
// smp.EnforcementTx).
func (tx *Tx) SetWalletControl(ctx context.Context, c *smp.WalletControl) (*smp.WalletControl, error) {
	if err := checkSizes("set wallet control", chars("partner_id", c.PartnerID, 64), chars("state", string(c.State), 16),
		chars("reason", c.Reason, 1000), chars("actor", c.Actor, 200)); err != nil {
		return nil, err
	}
	seq, prev, err := tx.lockWalletControl(ctx, c.PartnerID, "set wallet control")
	if err != nil {
		return nil, err
	}
	c.ChainSeq = seq
	c.Since, c.Until, c.UpdatedAt = fromMicros(micros(c.Since)), fromMicros(micros(c.Until)), fromMicros(micros(c.UpdatedAt))
	if _, err := tx.tx.ExecContext(ctx, tx.db.dialect.Upsert("wallet_controls", []string{"partner_id"}, strings.Split(strings.ReplaceAll(walletControlCols, " ", ""), ",")),
		c.PartnerID, string(c.State), c.Reason, c.Actor, micros(c.Since), micros(c.Until), c.ChainSeq, micros(c.UpdatedAt)); err != nil {
		return nil, fmt.Errorf("sqlstore: set wallet control: %w", err)
	}
	return prev, nil
}

func (tx *Tx) partnerExists(ctx context.Context, partnerID string) error {
	var n int
	if err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM partners WHERE id = ?`, partnerID).Scan(&n); err != nil {
		return fmt.Errorf("sqlstore: %w", err)
	} else if n == 0 {
		return smp.Errorf(smp.ENOTFOUND, "partner %s not found", partnerID)
	}
	return nil
}

// walletGuard judges p against its partner's control and the guard
// rails. PostWallet calls it with the head locked, before writing.
func (tx *Tx) walletGuard(ctx context.Context, p *smp.Posting) error {
	if !smp.Guarded(p) {
		return nil
	}
	// Locking reads (FOR UPDATE on MySQL): they see the last committed
	// rows whatever snapshot the transaction's earlier reads took.
	c, err := scanWalletControl(tx.tx.QueryRowContext(ctx, `SELECT `+walletControlCols+` FROM wallet_controls WHERE partner_id = ?`+tx.db.dialect.ForUpdate, p.PartnerID))
	if errors.Is(err, sql.ErrNoRows) {
		c = nil
	} else if err != nil {
		return fmt.Errorf("sqlstore: post wallet: read control: %w", err)
	}
	var u smp.WalletUsage
	at := micros(p.At)
	if c.Effective(p.At) == smp.WalletSoftBlocked {
		// The guarded postings (smp.Guarded) in the window: top-ups and
		// debits but commissions.
		if err := tx.tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount_vnd), 0) FROM partner_wallet_transactions
			WHERE partner_id = ? AND created_at >= ? AND created_at <= ? AND (type = ? OR (debit_account = ? AND type <> ?))`+tx.db.dialect.ForUpdate,
			p.PartnerID, micros(smp.SoftBlockWindowStart(c, p.At)), at, string(smp.WalletTopup), smp.PartnerAccount(p.PartnerID),
			string(smp.WalletCommission)).Scan(&u.GuardedVND); err != nil {
			return fmt.Errorf("sqlstore: post wallet: soft block usage: %w", err)
		}
	}
	if p.Type == smp.WalletTopup {
		if err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(CASE WHEN created_at > ? THEN 1 END), COALESCE(SUM(amount_vnd), 0)
			FROM partner_wallet_transactions WHERE partner_id = ? AND type = ? AND created_at > ? AND created_at <= ?`+tx.db.dialect.ForUpdate,
			micros(p.At.Add(-smp.VelocityWindow)), p.PartnerID, string(smp.WalletTopup), micros(p.At.Add(-24*time.Hour)), at).Scan(&u.Topups, &u.TopupVND); err != nil {
			return fmt.Errorf("sqlstore: post wallet: velocity: %w", err)
		}
	}
	return smp.CheckPosting(c, p, u)
}

const complianceCols = `id, kind, partner_id, posting_id, amount_vnd, threshold_vnd, status, created_at`

// InsertComplianceReport records a report (ECONFLICT for a known id).
func (tx *Tx) InsertComplianceReport(ctx context.Context, r *smp.ComplianceReport) error {
	if err := checkSizes("insert compliance report", chars("id", r.ID, 160), chars("kind", r.Kind, 32), chars("partner_id", r.PartnerID, 64),
		chars("posting_id", r.PostingID, 128), chars("status", r.Status, 16)); err != nil {
		return err
	}
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO compliance_reports (`+complianceCols+`) VALUES (`+placeholders(8)+`)`,
		r.ID, r.Kind, r.PartnerID, r.PostingID, r.AmountVND, r.ThresholdVND, r.Status, micros(r.CreatedAt))
	if isUniqueViolation(err) {
		return smp.Errorf(smp.ECONFLICT, "compliance report %s exists", r.ID)
	} else if err != nil {
		return fmt.Errorf("sqlstore: insert compliance report: %w", err)
	}
	return nil
}

// FindComplianceReports lists reports oldest first (the replica).
func (db *DB) FindComplianceReports(ctx context.Context, f smp.ComplianceFilter) ([]*smp.ComplianceReport, error) {
	var where []string
	var args []any
	if f.PartnerID != "" {
		where, args = append(where, "partner_id = ?"), append(args, f.PartnerID)
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
	q := `SELECT ` + complianceCols + ` FROM compliance_reports`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := db.reader().QueryContext(ctx, q+` ORDER BY created_at, id LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find compliance reports: %w", err)
	}
	defer rows.Close()
	var out []*smp.ComplianceReport
	for rows.Next() {
		var r smp.ComplianceReport
		var created int64
		if err := rows.Scan(&r.ID, &r.Kind, &r.PartnerID, &r.PostingID, &r.AmountVND, &r.ThresholdVND, &r.Status, &created); err != nil {
			return nil, fmt.Errorf("sqlstore: find compliance reports: %w", err)
		}
		r.CreatedAt = fromMicros(created)
		out = append(out, &r)
	}
	return out, rows.Err()
}

// AppendPartnerNote appends a line to an admin user's notes (see
// smp.EnforcementTx).
func (tx *Tx) AppendPartnerNote(ctx context.Context, partnerID, userID, line string, at time.Time) error {
	if err := checkSizes("append partner note", chars("partner_id", partnerID, 64), chars("user_id", userID, 64)); err != nil {
		return err
	}
	if err := tx.partnerExists(ctx, partnerID); err != nil {
		return err
	}
	var notes string
	err := tx.tx.QueryRowContext(ctx, `SELECT notes FROM partner_admin_users WHERE partner_id = ? AND user_id = ?`+tx.db.dialect.ForUpdate, partnerID, userID).Scan(&notes)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlstore: append partner note: %w", err)
	}
	if notes != "" && !strings.HasSuffix(notes, "\n") {
		notes += "\n"
	}
	notes += strings.TrimRight(line, "\n") + "\n"
	if err := checkSizes("append partner note", text("notes", notes, maxText)); err != nil {
		return err
	}
	if exists {
		_, err = tx.tx.ExecContext(ctx, `UPDATE partner_admin_users SET notes = ?, updated_at = ? WHERE partner_id = ? AND user_id = ?`,
			notes, micros(at), partnerID, userID)
	} else {
		_, err = tx.tx.ExecContext(ctx, `INSERT INTO partner_admin_users (partner_id, user_id, name, notes, created_at, updated_at) VALUES (?,?,?,?,?,?)`,
			partnerID, userID, "", notes, micros(at), micros(at))
	}
	if err != nil {
		return fmt.Errorf("sqlstore: append partner note: %w", err)
	}
	return nil
}

// FindPartnerAdminUsers lists a partner's admin users, fresh.
func (db *DB) FindPartnerAdminUsers(ctx context.Context, partnerID string) ([]*smp.PartnerAdminUser, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT partner_id, user_id, name, notes, created_at, updated_at FROM partner_admin_users
		WHERE partner_id = ? ORDER BY user_id`, partnerID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find partner admin users: %w", err)
	}
	defer rows.Close()
	var out []*smp.PartnerAdminUser
	for rows.Next() {
		var u smp.PartnerAdminUser
		var created, updated int64
		if err := rows.Scan(&u.PartnerID, &u.UserID, &u.Name, &u.Notes, &created, &updated); err != nil {
			return nil, fmt.Errorf("sqlstore: find partner admin users: %w", err)
		}
		u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
		out = append(out, &u)
	}
	return out, rows.Err()
}

// FindPartnerIPAllowlist returns a partner's allowlist, fresh (every
// partner action reads it).
func (db *DB) FindPartnerIPAllowlist(ctx context.Context, partnerID string) ([]string, error) {
	var cidrs string
	err := db.fresh().QueryRowContext(ctx, `SELECT cidrs FROM partner_ip_allowlists WHERE partner_id = ?`, partnerID).Scan(&cidrs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: find partner ip allowlist: %w", err)
	}
	return splitCIDRs(cidrs), nil
}

func splitCIDRs(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// SetPartnerIPAllowlist replaces a partner's allowlist (see
// smp.EnforcementTx).
func (tx *Tx) SetPartnerIPAllowlist(ctx context.Context, partnerID string, cidrs []string, actor string, at time.Time) ([]string, error) {
	list := strings.Join(cidrs, ",")
	if err := checkSizes("set partner ip allowlist", chars("partner_id", partnerID, 64), chars("cidrs", list, 2000), chars("updated_by", actor, 200)); err != nil {
		return nil, err
	}
	if err := tx.partnerExists(ctx, partnerID); err != nil {
		return nil, err
	}
	var prev string
	err := tx.tx.QueryRowContext(ctx, `SELECT cidrs FROM partner_ip_allowlists WHERE partner_id = ?`+tx.db.dialect.ForUpdate, partnerID).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlstore: set partner ip allowlist: %w", err)
	}
	if len(cidrs) == 0 {
		_, err = tx.tx.ExecContext(ctx, `DELETE FROM partner_ip_allowlists WHERE partner_id = ?`, partnerID)
	} else {
		_, err = tx.tx.ExecContext(ctx, tx.db.dialect.Upsert("partner_ip_allowlists", []string{"partner_id"}, []string{"partner_id", "cidrs", "updated_by", "updated_at"}),
			partnerID, list, actor, micros(at))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: set partner ip allowlist: %w", err)
	}
	return splitCIDRs(prev), nil
}
