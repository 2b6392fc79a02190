package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"smp"
)

// Customers' and technicians' sessions (smp.SessionStore) on the embedded
// default and on MySQL without Redis. Expired rows are pruned as new
// sessions are created.

var _ smp.SessionStore = (*DB)(nil)

const sessionCols = `id, owner_kind, owner_id, secret_hash, created_at, expires_at, ip`

func scanSession(row scanner) (*smp.Session, error) {
	var s smp.Session
	var created, expires int64
	if err := row.Scan(&s.ID, &s.OwnerKind, &s.OwnerID, &s.SecretHash, &created, &expires, &s.IP); err != nil {
		return nil, err
	}
	s.CreatedAt, s.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &s, nil
}

// CreateSession stores a new session and prunes expired ones.
func (db *DB) CreateSession(ctx context.Context, s *smp.Session) error {
	if s.ID == "" || s.OwnerKind == "" || s.OwnerID == "" || s.ExpiresAt.IsZero() {
		return smp.Errorf(smp.EINVALID, "create session: id, owner and expiry are required")
	}
	if err := checkSizes("create session",
		chars("id", s.ID, 32),
		chars("owner_kind", s.OwnerKind, 16),
		chars("owner_id", s.OwnerID, 64),
		chars("secret_hash", s.SecretHash, 64),
		chars("ip", s.IP, 64)); err != nil {
		return err
	}
	_, err := db.execWrite(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES (?,?,?,?,?,?,?)`,
		s.ID, s.OwnerKind, s.OwnerID, s.SecretHash, micros(s.CreatedAt), micros(s.ExpiresAt), s.IP)
	if isUniqueViolation(err) {
		return smp.Errorf(smp.ECONFLICT, "session %s exists", s.ID)
	} else if err != nil {
		return fmt.Errorf("sqlstore: create session: %w", err)
	}
	if !s.CreatedAt.IsZero() {
		// Bounded by the expiry index; what expired is never read again.
		if _, err := db.execWrite(ctx, `DELETE FROM sessions WHERE expires_at < ?`, micros(s.CreatedAt)); err != nil {
			db.cfg.Logger.Warn("sqlstore: pruning expired sessions failed", "err", err)
		}
	}
	return nil
}

// FindSession returns a session by id.
func (db *DB) FindSession(ctx context.Context, id string) (*smp.Session, error) {
	s, err := scanSession(db.fresh().QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, smp.Errorf(smp.ENOTFOUND, "no session %s", id)
	} else if err != nil {
		return nil, fmt.Errorf("sqlstore: find session: %w", err)
	}
	return s, nil
}

// FindSessions lists sessions, newest first.
func (db *DB) FindSessions(ctx context.Context, f smp.SessionFilter) ([]*smp.Session, error) {
	var where []string
	var args []any
	if f.OwnerKind != "" {
		where, args = append(where, "owner_kind = ?"), append(args, f.OwnerKind)
	}
	if f.OwnerID != "" {
		where, args = append(where, "owner_id = ?"), append(args, f.OwnerID)
	}
	if !f.Now.IsZero() {
		where, args = append(where, "expires_at > ?"), append(args, micros(f.Now))
	}
	q := `SELECT ` + sessionCols + ` FROM sessions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := db.fresh().QueryContext(ctx, q+fmt.Sprintf(" ORDER BY created_at DESC, id DESC LIMIT %d", limit), args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: find sessions: %w", err)
	}
	defer rows.Close()
	var out []*smp.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: find sessions: %w", err)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// DeleteSession removes a session and returns it.
func (db *DB) DeleteSession(ctx context.Context, id string) (*smp.Session, error) {
	s, err := db.FindSession(ctx, id)
	if err != nil {
		return nil, err
	}
	res, err := db.execWrite(ctx, `DELETE FROM sessions WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: delete session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, smp.Errorf(smp.ENOTFOUND, "no session %s", id)
	}
	return s, nil
}

// DeleteSessions removes every session of an owner.
func (db *DB) DeleteSessions(ctx context.Context, ownerKind, ownerID string) (int, error) {
	res, err := db.execWrite(ctx, `DELETE FROM sessions WHERE owner_kind = ? AND owner_id = ?`, ownerKind, ownerID)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
