package crm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Permission is what an API key may do. PermAdmin grants every permission.
type Permission string

// The permissions an API key can carry.
const (
	PermCustomersRead     Permission = "customers:read"
	PermCustomersWrite    Permission = "customers:write"
	PermTransactionsRead  Permission = "transactions:read"
	PermTransactionsWrite Permission = "transactions:write"
	PermAnalyticsRead     Permission = "analytics:read"
	PermAnalyticsWrite    Permission = "analytics:write"
	PermSegmentsRead      Permission = "segments:read"
	PermSegmentsWrite     Permission = "segments:write"
	PermAdmin             Permission = "admin"
)

// Permissions lists every permission, in a stable order.
var Permissions = []Permission{
	PermCustomersRead, PermCustomersWrite, PermTransactionsRead, PermTransactionsWrite,
	PermAnalyticsRead, PermAnalyticsWrite, PermSegmentsRead, PermSegmentsWrite, PermAdmin,
}

// keyPrefix starts every API key, so leaked keys are easy to recognise and scan for.
const keyPrefix = "ck_"

// APIKey is an API key without its secret; only a SHA-256 digest of the secret is stored.
type APIKey struct {
	ID          uuid.UUID
	Name        string
	Prefix      string
	Permissions []Permission
	CreatedAt   time.Time
	RevokedAt   *time.Time
}

// Principal is the authenticated caller of a request.
type Principal struct {
	KeyID       uuid.UUID
	Permissions []Permission
	Scope       Scope
}

// Allows reports whether the caller holds perm, directly or through admin.
func (p *Principal) Allows(perm Permission) bool {
	return slices.Contains(p.Permissions, PermAdmin) || slices.Contains(p.Permissions, perm)
}

// APIKeyStore persists API keys.
type APIKeyStore interface {
	// CreateAPIKey stores a key with the digest of its secret.
	CreateAPIKey(ctx context.Context, k *APIKey, secretHash []byte) error
	// APIKeyByPrefix returns the key with the given prefix and its secret digest, or NotFound.
	APIKeyByPrefix(ctx context.Context, prefix string) (*APIKey, []byte, error)
	// ListAPIKeys returns every key, newest first.
	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	// RevokeAPIKey marks a key revoked, or returns NotFound.
	RevokeAPIKey(ctx context.Context, id uuid.UUID, at time.Time) error
	// CountActiveAPIKeys counts the keys that are not revoked.
	CountActiveAPIKeys(ctx context.Context) (int64, error)
}

// KeyService issues, checks and revokes API keys.
type KeyService struct {
	store APIKeyStore
	now   func() time.Time
}

// NewKeyService returns a KeyService over store.
func NewKeyService(store APIKeyStore, now func() time.Time) *KeyService {
	return &KeyService{store: store, now: now}
}

// Create issues a key with the given permissions and returns it with its secret token, which
// is shown only this once.
func (s *KeyService) Create(ctx context.Context, name string, perms []Permission) (*APIKey, string, error) {
	if strings.TrimSpace(name) == "" {
		return nil, "", Invalid(FieldError{Pointer: "/name", Message: "is required"})
	}
	if len(perms) == 0 {
		return nil, "", Invalid(FieldError{Pointer: "/permissions", Message: "must name at least one permission"})
	}
	for i, p := range perms {
		if !slices.Contains(Permissions, p) {
			return nil, "", Invalid(FieldError{Pointer: fmt.Sprintf("/permissions/%d", i), Message: fmt.Sprintf("must be one of %v", Permissions)})
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, "", err
	}
	prefixBytes := make([]byte, 6)
	secretBytes := make([]byte, 32)
	if _, err := rand.Read(prefixBytes); err != nil {
		return nil, "", fmt.Errorf("generate key: %w", err)
	}
	if _, err := rand.Read(secretBytes); err != nil {
		return nil, "", fmt.Errorf("generate key: %w", err)
	}
	prefix := hex.EncodeToString(prefixBytes)
	secret := base64.RawURLEncoding.EncodeToString(secretBytes)
	k := &APIKey{ID: id, Name: name, Prefix: prefix, Permissions: slices.Clone(perms), CreatedAt: s.now().UTC().Truncate(time.Microsecond)}
	digest := sha256.Sum256([]byte(secret))
	if err := s.store.CreateAPIKey(ctx, k, digest[:]); err != nil {
		return nil, "", err
	}
	return k, keyPrefix + prefix + "_" + secret, nil
}

// Authenticate checks a bearer token and returns its caller, or an Unauthorized error.
func (s *KeyService) Authenticate(ctx context.Context, token string) (*Principal, error) {
	unauthorized := Errorf(CodeUnauthorized, "The API key is not valid. Send an active key as Authorization: Bearer <key>.")
	rest, ok := strings.CutPrefix(token, keyPrefix)
	if !ok {
		return nil, unauthorized
	}
	prefix, secret, ok := strings.Cut(rest, "_")
	if !ok || len(prefix) != 12 {
		return nil, unauthorized
	}
	k, stored, err := s.store.APIKeyByPrefix(ctx, prefix)
	if ErrorCodeOf(err) == CodeNotFound {
		return nil, unauthorized
	}
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(digest[:], stored) != 1 || k.RevokedAt != nil {
		return nil, unauthorized
	}
	return &Principal{KeyID: k.ID, Permissions: k.Permissions}, nil
}

// List returns every key, newest first.
func (s *KeyService) List(ctx context.Context) ([]APIKey, error) { return s.store.ListAPIKeys(ctx) }

// Revoke revokes a key at once.
func (s *KeyService) Revoke(ctx context.Context, id uuid.UUID) error {
	return s.store.RevokeAPIKey(ctx, id, s.now().UTC())
}

// Bootstrap creates an admin key when no active key exists, so a new installation can be used,
// and returns its token; it returns "" when keys exist already.
func (s *KeyService) Bootstrap(ctx context.Context) (string, error) {
	n, err := s.store.CountActiveAPIKeys(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	_, token, err := s.Create(ctx, "bootstrap admin", []Permission{PermAdmin})
	return token, err
}
