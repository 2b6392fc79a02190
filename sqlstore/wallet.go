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

// The partners' ledger (smp.WalletStore, smp.WalletTx):
// partner_wallet_transactions (append-only: triggers refuse UPDATE and
// DELETE on both backends), wallet_accounts (balances) and wallet_chain
// (the chain's head: the last seq and hash).
//
// A posting locks the chain's head row first, so postings are serialized
// and the chain stays linear whatever the number of processes: the head
// lock is the ledger's one write lock on MySQL (SQLite has one writer
// anyway). Every posting takes it before any other wallet row, so
// postings never deadlock on each other.

var (
	_ smp.WalletStore = (*DB)(nil)
	_ smp.WalletTx    = (*Tx)(nil)
)

const walletEntryCols = `seq, id, type, partner_id, debit_account, credit_account, amount_vnd, balance_after_vnd,
	gateway, gateway_ref, order_id, reverses, reason, expected_diff_vnd, actor, body_sha256, created_at, prev_hash, hash`

func scanWalletEntry(row scanner) (*smp.WalletEntry, error) {
	var e smp.WalletEntry
	var typ string
	var exp sql.NullInt64
	var created int64
	if err := row.Scan(&e.Seq, &e.ID, &typ, &e.PartnerID, &e.DebitAccount, &e.CreditAccount, &e.AmountVND, &e.BalanceAfterVND,
		&e.Gateway, &e.GatewayRef, &e.OrderID, &e.Reverses, &e.Reason, &exp, &e.Actor, &e.BodyHash, &created, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.Type = smp.WalletTxType(typ)
	if exp.Valid {
		v := exp.Int64
		e.ExpectedDiffVND = &v
	}
	e.CreatedAt = fromMicros(created)
	return &e, nil
}

const walletAccountCols = `id, partner_id, balance_vnd, floor_vnd, last_seq, updated_at`

func scanWalletAccount(row scanner) (*smp.WalletAccount, error) {
	var a smp.WalletAccount
	var updated int64
	if err := row.Scan(&a.ID, &a.PartnerID, &a.BalanceVND, &a.FloorVND, &a.LastSeq, &updated); err != nil {
		return nil, err
	}
	a.UpdatedAt = fromMicros(updated)
	return &a, nil
}

// FindWalletAccount returns an account (ENOTFOUND), fresh: balances decide
// offers and top-up answers.
func (db *DB) FindWalletAccount(ctx context.Context, id string) (*smp.WalletAccount, error) {
	a, err := scanWalletAccount(db.fresh().QueryRowContext(ctx, `SELECT `+walletAccountCols+` FROM wallet_accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "wallet account %s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: find wallet account: %w", err)
	}
	return a, nil
}

// FindWalletAccounts returns every account, fresh.
func (db *DB) FindWalletAccounts(ctx context.Context) ([]*smp.WalletAccount, error) {
	return queryWalletAccounts(ctx, db.fresh())
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func queryWalletAccounts(ctx context.Context, q querier) ([]*smp.WalletAccount, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+walletAccountCols+` FROM wallet_accounts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find wallet accounts: %w", err)
	}
	defer rows.Close()
	var out []*smp.WalletAccount
	for rows.Next() {
		a, err := scanWalletAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find wallet accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// FindWalletEntry returns an entry by posting id (ENOTFOUND), fresh.
func (db *DB) FindWalletEntry(ctx context.Context, id string) (*smp.WalletEntry, error) {
	e, err := scanWalletEntry(db.fresh().QueryRowContext(ctx, `SELECT `+walletEntryCols+` FROM partner_wallet_transactions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "wallet posting %s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: find wallet entry: %w", err)
	}
	return e, nil
}

// FindWalletEntries lists entries in chain order (reports: the replica).
func (db *DB) FindWalletEntries(ctx context.Context, f smp.WalletEntryFilter) ([]*smp.WalletEntry, error) {
	var where []string
	var args []any
	if f.PartnerID != "" {
		where, args = append(where, "partner_id = ?"), append(args, f.PartnerID)
	}
	if f.Type != "" {
		where, args = append(where, "type = ?"), append(args, string(f.Type))
	}
	if !f.From.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, f.To.UnixMicro())
	}
	if f.AfterSeq > 0 {
		where, args = append(where, "seq > ?"), append(args, f.AfterSeq)
	}
	if f.Limit <= 0 || f.Limit > 10000 {
		f.Limit = 1000
	}
	q := `SELECT ` + walletEntryCols + ` FROM partner_wallet_transactions`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := db.reader().QueryContext(ctx, q+` ORDER BY seq LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find wallet entries: %w", err)
	}
	defer rows.Close()
	var out []*smp.WalletEntry
	for rows.Next() {
		e, err := scanWalletEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find wallet entries: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// ScanWalletLedger reads accounts and entries in one read-only
// transaction on the primary: one snapshot (MySQL's REPEATABLE READ, a
// SQLite WAL read transaction).
func (db *DB) ScanWalletLedger(ctx context.Context, accounts func([]*smp.WalletAccount) error, entry func(*smp.WalletEntry) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect.Name == MySQL.Name {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := db.fresh().BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("sqlstore: scan wallet ledger: %w", err)
	}
	defer tx.Rollback()
	as, err := queryWalletAccounts(ctx, tx)
	if err != nil {
		return err
	}
	if err := accounts(as); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+walletEntryCols+` FROM partner_wallet_transactions ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("sqlstore: scan wallet ledger: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanWalletEntry(rows)
		if err != nil {
			return fmt.Errorf("sqlstore: scan wallet ledger: %w", err)
		}
		if err := entry(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

func checkPosting(p *smp.Posting) error {
	return checkSizes("post wallet",
		chars("id", p.ID, 128),
		chars("partner_id", p.PartnerID, 64),
		chars("gateway", p.Gateway, 16),
		chars("gateway_ref", p.GatewayRef, 100),
		chars("order_id", p.OrderID, 64),
		chars("reverses", p.Reverses, 128),
		chars("reason", p.Reason, 1000),
		chars("actor", p.Actor, 200))
}

// PostWallet appends a posting to the chain (see smp.WalletTx).
func (tx *Tx) PostWallet(ctx context.Context, p smp.Posting) (*smp.WalletEntry, bool, error) {
	if err := p.Validate(); err != nil {
		return nil, false, err
	}
	if err := checkPosting(&p); err != nil {
		return nil, false, err
	}
	// The head first (SELECT … FOR UPDATE on MySQL; SQLite's write
	// transactions hold the database's write lock from BEGIN): from here on
	// no other posting commits until this transaction ends. The reads
	// below lock too, so they see the last committed state whatever
	// snapshot the transaction's earlier reads took.
	var seq int64
	var prev string
	if err := tx.tx.QueryRowContext(ctx, `SELECT seq, hash FROM wallet_chain WHERE id = 1`+tx.db.dialect.ForUpdate).Scan(&seq, &prev); err != nil {
		return nil, false, fmt.Errorf("sqlstore: post wallet: read chain: %w", err)
	}
	body := p.BodyHash()
	existing, err := tx.walletEntry(ctx, p.ID)
	if err != nil {
		return nil, false, err
	}
	if existing != nil {
		if existing.BodyHash != body {
			return nil, false, smp.Errorf(smp.ECONFLICT, "wallet posting %s exists with another body", p.ID)
		}
		return existing, false, nil
	}
	var n int
	if err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM partners WHERE id = ?`, p.PartnerID).Scan(&n); err != nil {
		return nil, false, fmt.Errorf("sqlstore: post wallet: %w", err)
	} else if n == 0 {
		return nil, false, smp.Errorf(smp.ENOTFOUND, "partner %s not found", p.PartnerID)
	}
	// The wallet's control and the guard rails, read under the head lock:
	// a freeze committed before this lock was taken is seen here, and no
	// freeze can commit until this posting does.
	if err := tx.walletGuard(ctx, &p); err != nil {
		return nil, false, err
	}
	var orig *smp.WalletEntry
	if p.Type == smp.WalletReversal {
		if orig, err = tx.walletEntry(ctx, p.Reverses); err != nil {
			return nil, false, err
		} else if orig == nil {
			return nil, false, smp.Errorf(smp.ENOTFOUND, "wallet posting %s (to reverse) not found", p.Reverses)
		}
		var by string
		err := tx.tx.QueryRowContext(ctx, `SELECT id FROM partner_wallet_transactions WHERE reverses = ? AND type = ?`+tx.db.dialect.ForUpdate, p.Reverses, string(smp.WalletReversal)).Scan(&by)
		if err == nil {
			return nil, false, smp.Errorf(smp.ECONFLICT, "wallet posting %s is already reversed by %s", p.Reverses, by)
		} else if !errors.Is(err, sql.ErrNoRows) {
			return nil, false, fmt.Errorf("sqlstore: post wallet: %w", err)
		}
	}
	debit, credit, amount, err := p.Legs(orig)
	if err != nil {
		return nil, false, err
	}
	e := &smp.WalletEntry{Seq: seq + 1, ID: p.ID, Type: p.Type, PartnerID: p.PartnerID, DebitAccount: debit, CreditAccount: credit,
		AmountVND: amount, Gateway: p.Gateway, GatewayRef: p.GatewayRef, OrderID: p.OrderID, Reverses: p.Reverses, Reason: p.Reason,
		ExpectedDiffVND: p.ExpectedDiffVND, Actor: p.Actor, BodyHash: body, CreatedAt: fromMicros(micros(p.At)), PrevHash: prev}
	at := micros(p.At)
	for _, leg := range []struct {
		account string
		delta   int64
	}{{debit, -amount}, {credit, amount}} {
		balance, err := tx.moveBalance(ctx, leg.account, leg.delta, e.Seq, at)
		if err != nil {
			return nil, false, err
		}
		if leg.account == smp.PartnerAccount(p.PartnerID) {
			e.BalanceAfterVND = balance
		}
	}
	e.Hash = e.ComputeHash()
	var exp any
	if e.ExpectedDiffVND != nil {
		exp = *e.ExpectedDiffVND
	}
	if _, err := tx.tx.ExecContext(ctx, `INSERT INTO partner_wallet_transactions (`+walletEntryCols+`) VALUES (`+placeholders(19)+`)`,
		e.Seq, e.ID, string(e.Type), e.PartnerID, e.DebitAccount, e.CreditAccount, e.AmountVND, e.BalanceAfterVND,
		e.Gateway, e.GatewayRef, e.OrderID, e.Reverses, e.Reason, exp, e.Actor, e.BodyHash, at, e.PrevHash, e.Hash); err != nil {
		return nil, false, fmt.Errorf("sqlstore: post wallet: %w", err)
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE wallet_chain SET seq = ?, hash = ? WHERE id = 1`, e.Seq, e.Hash); err != nil {
		return nil, false, fmt.Errorf("sqlstore: post wallet: advance chain: %w", err)
	}
	return e, true, nil
}

// walletEntry reads an entry in the tx, nil if there is none.
func (tx *Tx) walletEntry(ctx context.Context, id string) (*smp.WalletEntry, error) {
	e, err := scanWalletEntry(tx.tx.QueryRowContext(ctx, `SELECT `+walletEntryCols+` FROM partner_wallet_transactions WHERE id = ?`+tx.db.dialect.ForUpdate, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: post wallet: %w", err)
	}
	return e, nil
}

// moveBalance adds delta to an account (created at zero if new) and
// returns its new balance.
func (tx *Tx) moveBalance(ctx context.Context, account string, delta, seq, at int64) (int64, error) {
	if err := tx.ensureAccount(ctx, account, at); err != nil {
		return 0, err
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE wallet_accounts SET balance_vnd = balance_vnd + ?, last_seq = ?, updated_at = ? WHERE id = ?`,
		delta, seq, at, account); err != nil {
		return 0, fmt.Errorf("sqlstore: post wallet: move %s: %w", account, err)
	}
	var balance int64
	if err := tx.tx.QueryRowContext(ctx, `SELECT balance_vnd FROM wallet_accounts WHERE id = ?`, account).Scan(&balance); err != nil {
		return 0, fmt.Errorf("sqlstore: post wallet: read %s: %w", account, err)
	}
	return balance, nil
}

func (tx *Tx) ensureAccount(ctx context.Context, account string, at int64) error {
	_, err := tx.tx.ExecContext(ctx, tx.db.dialect.InsertIgnore+` INTO wallet_accounts (id, partner_id, balance_vnd, floor_vnd, last_seq, updated_at) VALUES (?,?,0,?,0,?)`,
		account, smp.PartnerOfAccount(account), int64(smp.NoFloor), at)
	if err != nil {
		return fmt.Errorf("sqlstore: wallet account %s: %w", account, err)
	}
	return nil
}

// SetWalletFloor sets a partner's floor (see smp.WalletTx).
func (tx *Tx) SetWalletFloor(ctx context.Context, partnerID string, floorVND int64, at time.Time) (*smp.WalletAccount, error) {
	var n int
	if err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM partners WHERE id = ?`, partnerID).Scan(&n); err != nil {
		return nil, fmt.Errorf("sqlstore: set wallet floor: %w", err)
	} else if n == 0 {
		return nil, smp.Errorf(smp.ENOTFOUND, "partner %s not found", partnerID)
	}
	account := smp.PartnerAccount(partnerID)
	if err := tx.ensureAccount(ctx, account, micros(at)); err != nil {
		return nil, err
	}
	if _, err := tx.tx.ExecContext(ctx, `UPDATE wallet_accounts SET floor_vnd = ?, updated_at = ? WHERE id = ?`, floorVND, micros(at), account); err != nil {
		return nil, fmt.Errorf("sqlstore: set wallet floor: %w", err)
	}
	a, err := scanWalletAccount(tx.tx.QueryRowContext(ctx, `SELECT `+walletAccountCols+` FROM wallet_accounts WHERE id = ?`, account))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: set wallet floor: %w", err)
	}
	return a, nil
}

const topupCols = `id, partner_id, gateway, txn_ref, amount_vnd, status, client_ip, transaction_no, bank_code, pay_date, posting_id, created_at, updated_at, user_agent, device_id, hold_reason, refund_attempts, refund_error, refund_no`

func scanTopup(row scanner) (*smp.Topup, error) {
	var t smp.Topup
	var status string
	var pay, created, updated int64
	if err := row.Scan(&t.ID, &t.PartnerID, &t.Gateway, &t.TxnRef, &t.AmountVND, &status, &t.ClientIP, &t.TransactionNo, &t.BankCode,
		&pay, &t.PostingID, &created, &updated, &t.UserAgent, &t.DeviceID, &t.HoldReason, &t.RefundAttempts, &t.RefundError, &t.RefundNo); err != nil {
		return nil, err
	}
	t.Status, t.PayDate, t.CreatedAt, t.UpdatedAt = smp.TopupStatus(status), fromMicros(pay), fromMicros(created), fromMicros(updated)
	return &t, nil
}

func checkTopup(what string, t *smp.Topup) error {
	return checkSizes(what,
		chars("id", t.ID, 64),
		chars("partner_id", t.PartnerID, 64),
		chars("gateway", t.Gateway, 16),
		chars("txn_ref", t.TxnRef, 100),
		chars("status", string(t.Status), 16),
		chars("client_ip", t.ClientIP, 64),
		chars("user_agent", t.UserAgent, 512),
		chars("device_id", t.DeviceID, 128),
		chars("transaction_no", t.TransactionNo, 64),
		chars("bank_code", t.BankCode, 32),
		chars("posting_id", t.PostingID, 128),
		chars("hold_reason", t.HoldReason, 32),
		chars("refund_error", t.RefundError, 1000),
		chars("refund_no", t.RefundNo, 64))
}

// FindTopup returns a top-up (ENOTFOUND), fresh.
func (db *DB) FindTopup(ctx context.Context, gateway, txnRef string) (*smp.Topup, error) {
	t, err := scanTopup(db.fresh().QueryRowContext(ctx, `SELECT `+topupCols+` FROM wallet_topups WHERE gateway = ? AND txn_ref = ?`, gateway, txnRef))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "top-up %s:%s not found", gateway, txnRef)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: find topup: %w", err)
	}
	return t, nil
}

// FindTopups lists top-ups, oldest first (reports: the replica).
func (db *DB) FindTopups(ctx context.Context, f smp.TopupFilter) ([]*smp.Topup, error) {
	var where []string
	var args []any
	if f.PartnerID != "" {
		where, args = append(where, "partner_id = ?"), append(args, f.PartnerID)
	}
	statuses := f.Statuses
	if f.Status != "" {
		statuses = append([]smp.TopupStatus{f.Status}, statuses...)
	}
	if len(statuses) > 0 {
		where = append(where, "status IN ("+placeholders(len(statuses))+")")
		for _, st := range statuses {
			args = append(args, string(st))
		}
	}
	if !f.From.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, f.To.UnixMicro())
	}
	if f.After != nil {
		at := f.After.CreatedAt.UnixMicro()
		where, args = append(where, "(created_at > ? OR (created_at = ? AND id > ?))"), append(args, at, at, f.After.ID)
	}
	if f.Limit <= 0 || f.Limit > smp.MaxTopupPage {
		f.Limit = 1000
	}
	q := `SELECT ` + topupCols + ` FROM wallet_topups`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := db.reader().QueryContext(ctx, q+` ORDER BY created_at, id LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find topups: %w", err)
	}
	defer rows.Close()
	var out []*smp.Topup
	for rows.Next() {
		t, err := scanTopup(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find topups: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// InsertTopup records a new top-up (see smp.WalletTx).
func (tx *Tx) InsertTopup(ctx context.Context, t *smp.Topup) error {
	if err := checkTopup("insert topup", t); err != nil {
		return err
	}
	var n int
	if err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM partners WHERE id = ?`, t.PartnerID).Scan(&n); err != nil {
		return fmt.Errorf("sqlstore: insert topup: %w", err)
	} else if n == 0 {
		return smp.Errorf(smp.ENOTFOUND, "partner %s not found", t.PartnerID)
	}
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO wallet_topups (`+topupCols+`) VALUES (`+placeholders(19)+`)`,
		t.ID, t.PartnerID, t.Gateway, t.TxnRef, t.AmountVND, string(t.Status), t.ClientIP, t.TransactionNo, t.BankCode, micros(t.PayDate),
		t.PostingID, micros(t.CreatedAt), micros(t.UpdatedAt), t.UserAgent, t.DeviceID, t.HoldReason, t.RefundAttempts, t.RefundError, t.RefundNo)
	if isUniqueViolation(err) {
		return smp.Errorf(smp.ECONFLICT, "top-up %s (%s:%s) exists", t.ID, t.Gateway, t.TxnRef)
	} else if err != nil {
		return fmt.Errorf("sqlstore: insert topup: %w", err)
	}
	return nil
}

// TopupForUpdate reads and locks a top-up (ENOTFOUND).
func (tx *Tx) TopupForUpdate(ctx context.Context, gateway, txnRef string) (*smp.Topup, error) {
	t, err := scanTopup(tx.tx.QueryRowContext(ctx, `SELECT `+topupCols+` FROM wallet_topups WHERE gateway = ? AND txn_ref = ?`+tx.db.dialect.ForUpdate, gateway, txnRef))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "top-up %s:%s not found", gateway, txnRef)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: topup for update: %w", err)
	}
	return t, nil
}

// UpdateTopup writes a top-up's outcome (ENOTFOUND).
func (tx *Tx) UpdateTopup(ctx context.Context, t *smp.Topup) error {
	if err := checkTopup("update topup", t); err != nil {
		return err
	}
	res, err := tx.tx.ExecContext(ctx, `UPDATE wallet_topups SET status = ?, transaction_no = ?, bank_code = ?, pay_date = ?, posting_id = ?, updated_at = ?, hold_reason = ?,
		refund_attempts = ?, refund_error = ?, refund_no = ? WHERE id = ?`,
		string(t.Status), t.TransactionNo, t.BankCode, micros(t.PayDate), t.PostingID, micros(t.UpdatedAt), t.HoldReason,
		t.RefundAttempts, t.RefundError, t.RefundNo, t.ID)
	if err != nil {
		return fmt.Errorf("sqlstore: update topup: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		// MySQL counts changed rows: an update to the same values is 0.
		var k int
		if err := tx.tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM wallet_topups WHERE id = ?`, t.ID).Scan(&k); err != nil {
			return fmt.Errorf("sqlstore: update topup: %w", err)
		} else if k == 0 {
			return smp.Errorf(smp.ENOTFOUND, "top-up %s not found", t.ID)
		}
	}
	return nil
}

// FindWalletsBelowFloor lists the partners below their floor, fresh
// (dispatch reads it on every candidate search).
func (db *DB) FindWalletsBelowFloor(ctx context.Context) ([]string, error) {
	rows, err := db.fresh().QueryContext(ctx, `SELECT partner_id FROM wallet_accounts WHERE partner_id <> '' AND balance_vnd < floor_vnd ORDER BY partner_id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: wallets below floor: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
