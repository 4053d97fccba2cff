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

// RateLimit is a token bucket: Burst requests at once, refilled at PerSecond requests a second.
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// The bounds of a key's own rate limit.
const (
	maxRatePerSecond = 1e6
	maxRateBurst     = 1000000
)

// APIKey is an API key without its secret; only a SHA-256 digest of the secret is stored.
type APIKey struct {
	ID          uuid.UUID
	Name        string
	Prefix      string
	Permissions []Permission
	// RootCustomerID confines the key to that business customer's subtree; nil is unconfined.
	RootCustomerID *uuid.UUID
	// RateLimit is the key's own rate limit; nil means the server's default.
	RateLimit *RateLimit
	CreatedAt time.Time
	RevokedAt *time.Time
}

// NewAPIKey is what a caller asks for when issuing a key.
type NewAPIKey struct {
	Name        string
	Permissions []Permission
	// RootCustomerID confines the new key to the subtree of this business customer.
	RootCustomerID *uuid.UUID
	// RateLimit gives the new key a rate limit of its own instead of the server's default.
	RateLimit *RateLimit
}

// APIKeyPage is one page of API keys.
type APIKeyPage struct {
	Keys       []APIKey
	NextCursor string
}

// Principal is the authenticated caller of a request.
type Principal struct {
	KeyID       uuid.UUID
	Permissions []Permission
	Scope       Scope
	// RateLimit is the key's own rate limit; nil means the server's default.
	RateLimit *RateLimit
}

// Allows reports whether the caller holds perm, directly or through admin.
func (p *Principal) Allows(perm Permission) bool {
	return slices.Contains(p.Permissions, PermAdmin) || slices.Contains(p.Permissions, perm)
}

// APIKeyStore persists API keys. A key is within a scope when the scope is unconfined or
// the key's root customer lies in the scope's subtree; other keys are reported as not found.
type APIKeyStore interface {
	// CreateAPIKey stores a key with the digest of its secret. A root customer must be a live
	// business account within scope: one outside it is reported exactly as a missing one.
	CreateAPIKey(ctx context.Context, scope Scope, k *APIKey, secretHash []byte) error
	// APIKeyByPrefix returns the key with the given prefix and its secret digest, or NotFound.
	APIKeyByPrefix(ctx context.Context, prefix string) (*APIKey, []byte, error)
	// APIKey returns one key within scope, or NotFound.
	APIKey(ctx context.Context, scope Scope, id uuid.UUID) (*APIKey, error)
	// ListAPIKeys returns one page of the keys within scope, newest first.
	ListAPIKeys(ctx context.Context, scope Scope, page PageRequest) (APIKeyPage, error)
	// RevokeAPIKey marks a key within scope revoked, keeping the first revocation time, and
	// returns it, or NotFound.
	RevokeAPIKey(ctx context.Context, scope Scope, id uuid.UUID, at time.Time) (*APIKey, error)
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

// Create issues an unconfined key with the given permissions on the operator's behalf (the
// CLI and the first start) and returns it with its secret token, which is shown only this once.
func (s *KeyService) Create(ctx context.Context, name string, perms []Permission) (*APIKey, string, error) {
	return s.Issue(ctx, nil, NewAPIKey{Name: name, Permissions: perms})
}

// Issue issues a key and returns it with its secret token, which is shown only this once. An
// issuer (nil for the operator) may grant only permissions it holds, and a confined issuer
// only keys confined within its own subtree that carry its own rate limit: a new key never
// reaches further, nor sends faster, than its issuer.
func (s *KeyService) Issue(ctx context.Context, issuer *Principal, req NewAPIKey) (*APIKey, string, error) {
	var fields []FieldError
	if strings.TrimSpace(req.Name) == "" {
		fields = append(fields, FieldError{Pointer: "/name", Message: "is required"})
	} else if len(req.Name) > 200 {
		fields = append(fields, FieldError{Pointer: "/name", Message: "must be at most 200 bytes"})
	}
	if len(req.Permissions) == 0 {
		fields = append(fields, FieldError{Pointer: "/permissions", Message: "must name at least one permission"})
	}
	for i, p := range req.Permissions {
		pointer := fmt.Sprintf("/permissions/%d", i)
		switch {
		case !slices.Contains(Permissions, p):
			fields = append(fields, FieldError{Pointer: pointer, Message: fmt.Sprintf("must be one of %v", Permissions)})
		case issuer != nil && !issuer.Allows(p):
			fields = append(fields, FieldError{Pointer: pointer, Message: fmt.Sprintf("cannot be granted: the calling key does not hold %s itself", p)})
		}
	}
	if l := req.RateLimit; l != nil {
		if !(l.PerSecond > 0 && l.PerSecond <= maxRatePerSecond) {
			fields = append(fields, FieldError{Pointer: "/rate_limit/per_second", Message: fmt.Sprintf("must be more than 0 and at most %g", float64(maxRatePerSecond))})
		}
		if l.Burst < 1 || l.Burst > maxRateBurst {
			fields = append(fields, FieldError{Pointer: "/rate_limit/burst", Message: fmt.Sprintf("must be from 1 to %d", maxRateBurst)})
		}
	}
	scope, limit := Scope{}, req.RateLimit
	if issuer != nil {
		scope = issuer.Scope
		if scope.Root != nil {
			if req.RootCustomerID == nil {
				fields = append(fields, FieldError{Pointer: "/root_customer_id", Message: "is required: this API key may only issue keys confined to its own subtree"})
			}
			if req.RateLimit != nil {
				fields = append(fields, FieldError{Pointer: "/rate_limit", Message: "cannot be set by a key confined to a subtree: the new key gets this key's own rate limit"})
			}
			limit = issuer.RateLimit
		}
	}
	if fields != nil {
		return nil, "", Invalid(fields...)
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
	perms := make([]Permission, 0, len(req.Permissions))
	for _, p := range req.Permissions {
		if !slices.Contains(perms, p) {
			perms = append(perms, p)
		}
	}
	k := &APIKey{
		ID: id, Name: strings.TrimSpace(req.Name), Prefix: prefix, Permissions: perms,
		RootCustomerID: req.RootCustomerID, RateLimit: limit, CreatedAt: s.now().UTC().Truncate(time.Microsecond),
	}
	digest := sha256.Sum256([]byte(secret))
	if err := s.store.CreateAPIKey(ctx, scope, k, digest[:]); err != nil {
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
	return &Principal{KeyID: k.ID, Permissions: k.Permissions, Scope: Scope{Root: k.RootCustomerID}, RateLimit: k.RateLimit}, nil
}

// Get returns one key within scope.
func (s *KeyService) Get(ctx context.Context, scope Scope, id uuid.UUID) (*APIKey, error) {
	return s.store.APIKey(ctx, scope, id)
}

// List returns one page of the keys within scope, newest first.
func (s *KeyService) List(ctx context.Context, scope Scope, page PageRequest) (APIKeyPage, error) {
	return s.store.ListAPIKeys(ctx, scope, page)
}

// Revoke revokes a key within scope at once; revoking a revoked key changes nothing.
func (s *KeyService) Revoke(ctx context.Context, scope Scope, id uuid.UUID) (*APIKey, error) {
	return s.store.RevokeAPIKey(ctx, scope, id, s.now().UTC().Truncate(time.Microsecond))
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
