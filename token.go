package smp

import "context"

// TokenStore holds the hashes of bearer tokens and whom they belong to.
// Only hashes are stored; hashing is the caller's.
type TokenStore interface {
	// FindTokenOwner resolves a token's hash: kind is "customer",
	// "technician" or "admin"; for admin tokens role is set.
	// EUNAUTHORIZED if the hash is unknown.
	FindTokenOwner(ctx context.Context, tokenHash string) (kind, ownerID string, role Role, err error)
	// PutToken stores a token hash for an owner (kind as in
	// FindTokenOwner), replacing any owner the hash had. No codes.
	PutToken(ctx context.Context, tokenHash, kind, ownerID string, role Role) error
}
