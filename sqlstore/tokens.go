package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"smp"
)

// Bearer token hashes (smp.TokenStore).

var _ smp.TokenStore = (*DB)(nil)

// FindTokenOwner resolves a token hash.
func (db *DB) FindTokenOwner(ctx context.Context, tokenHash string) (string, string, smp.Role, error) {
	var kind, owner, role string
	err := db.fresh().QueryRowContext(ctx, `SELECT kind, owner_id, role FROM tokens WHERE token_hash = ?`, tokenHash).Scan(&kind, &owner, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", "", smp.Errorf(smp.EUNAUTHORIZED, "invalid token")
	} else if err != nil {
		return "", "", "", fmt.Errorf("sqlstore: find token: %w", err)
	}
	return kind, owner, smp.Role(role), nil
}

// PutToken stores a token hash.
func (db *DB) PutToken(ctx context.Context, tokenHash, kind, ownerID string, role smp.Role) error {
	if err := checkSizes("put token",
		chars("token_hash", tokenHash, 64),
		chars("kind", kind, 16),
		chars("owner_id", ownerID, 64),
		chars("role", string(role), 16)); err != nil {
		return err
	}
	return db.exec(ctx, "put token", db.dialect.Upsert("tokens", []string{"token_hash"}, []string{"token_hash", "kind", "owner_id", "role"}),
		tokenHash, kind, ownerID, string(role))
}
