package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/centric-crm/centric/internal/crm"
)

// apiKeyRow is the api_keys table.
type apiKeyRow struct {
	ID             uuid.UUID
	Name           string
	Prefix         string
	SecretHash     []byte
	Scopes         textArray
	RootCustomerID *uuid.UUID
	RateLimit      *float64
	RateBurst      *int
	CreatedAt      time.Time
	RevokedAt      *time.Time
}

func (apiKeyRow) TableName() string { return "api_keys" }

func (r *apiKeyRow) key() crm.APIKey {
	perms := make([]crm.Permission, len(r.Scopes))
	for i, s := range r.Scopes {
		perms[i] = crm.Permission(s)
	}
	k := crm.APIKey{
		ID: r.ID, Name: r.Name, Prefix: r.Prefix, Permissions: perms, RootCustomerID: r.RootCustomerID,
		CreatedAt: r.CreatedAt.UTC(), RevokedAt: utcPtr(r.RevokedAt),
	}
	if r.RateLimit != nil && r.RateBurst != nil {
		k.RateLimit = &crm.RateLimit{PerSecond: *r.RateLimit, Burst: *r.RateBurst}
	}
	return k
}

// APIKeyStore implements crm.APIKeyStore.
type APIKeyStore struct {
	db *DB
}

// NewAPIKeyStore returns an APIKeyStore on db.
func NewAPIKeyStore(db *DB) *APIKeyStore { return &APIKeyStore{db: db} }

var _ crm.APIKeyStore = (*APIKeyStore)(nil)

// keysWithin selects the keys within scope: every key when it is unconfined, else the keys
// whose root customer is the scope's root or lies below it (deleted customers included, so a
// partner can still see and revoke a key whose root it deleted).
func keysWithin(tx *gorm.DB, scope crm.Scope) *gorm.DB {
	if scope.Root == nil {
		return tx
	}
	return tx.Where(`root_customer_id IN (SELECT id FROM customers WHERE id = ? OR ancestors @> ARRAY[?]::uuid[])`, *scope.Root, *scope.Root)
}

// CreateAPIKey checks the key's root customer and stores the key with the digest of its secret.
func (s *APIKeyStore) CreateAPIKey(ctx context.Context, scope crm.Scope, k *crm.APIKey, secretHash []byte) error {
	scopes := make(textArray, len(k.Permissions))
	for i, p := range k.Permissions {
		scopes[i] = string(p)
	}
	row := apiKeyRow{
		ID: k.ID, Name: k.Name, Prefix: k.Prefix, SecretHash: secretHash, Scopes: scopes,
		RootCustomerID: k.RootCustomerID, CreatedAt: k.CreatedAt,
	}
	if k.RateLimit != nil {
		row.RateLimit, row.RateBurst = &k.RateLimit.PerSecond, &k.RateLimit.Burst
	}
	return s.db.transact(ctx, func(tx *gorm.DB) error {
		if k.RootCustomerID != nil {
			var root customerRow
			err := live(tx, scope).Clauses(clause.Locking{Strength: "SHARE"}).
				Select("id", "kind").Where("id = ?", *k.RootCustomerID).Take(&root).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return crm.Invalid(crm.FieldError{Pointer: "/root_customer_id", Message: "names no live customer"})
			}
			if err != nil {
				return fmt.Errorf("read root customer: %w", err)
			}
			if root.Kind != string(crm.KindBusiness) {
				return crm.Invalid(crm.FieldError{Pointer: "/root_customer_id", Message: "must be a business account: a key is confined to a partner's subtree"})
			}
		}
		if err := tx.Create(&row).Error; err != nil {
			return fmt.Errorf("insert api key: %w", err)
		}
		return nil
	})
}

// APIKeyByPrefix returns the key with the given prefix and its secret digest.
func (s *APIKeyStore) APIKeyByPrefix(ctx context.Context, prefix string) (*crm.APIKey, []byte, error) {
	var row apiKeyRow
	err := s.db.session(ctx).Where("prefix = ?", prefix).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, crm.Errorf(crm.CodeNotFound, "No API key has prefix %s.", prefix)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read api key: %w", err)
	}
	k := row.key()
	return &k, row.SecretHash, nil
}

func keyNotFound(id uuid.UUID) error {
	return crm.Errorf(crm.CodeNotFound, "No API key has id %s.", id)
}

// APIKey returns one key within scope.
func (s *APIKeyStore) APIKey(ctx context.Context, scope crm.Scope, id uuid.UUID) (*crm.APIKey, error) {
	var row apiKeyRow
	err := keysWithin(s.db.session(ctx), scope).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, keyNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read api key %s: %w", id, err)
	}
	k := row.key()
	return &k, nil
}

// ListAPIKeys returns one page of the keys within scope, newest first, keyset-paginated on
// (created_at, id).
func (s *APIKeyStore) ListAPIKeys(ctx context.Context, scope crm.Scope, page crm.PageRequest) (crm.APIKeyPage, error) {
	list := fingerprint(struct {
		List string
		S    crm.Scope
	}{"api_keys", scope})
	after, err := decodeCursor(page.Cursor, list)
	if err != nil {
		return crm.APIKeyPage{}, err
	}
	q := keysWithin(s.db.session(ctx), scope)
	if after != nil {
		if after.Time == nil {
			return crm.APIKeyPage{}, crm.Invalid(crm.FieldError{Pointer: "query:cursor", Message: "does not match the sort"})
		}
		q = q.Where("(created_at, id) < (?, ?)", *after.Time, after.ID)
	}
	limit := page.LimitOrDefault()
	var rows []apiKeyRow
	if err := q.Order("created_at DESC, id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return crm.APIKeyPage{}, fmt.Errorf("list api keys: %w", err)
	}
	out := crm.APIKeyPage{Keys: make([]crm.APIKey, 0, min(len(rows), limit))}
	for i := range rows[:min(len(rows), limit)] {
		out.Keys = append(out.Keys, rows[i].key())
	}
	if len(rows) > limit {
		last := rows[limit-1]
		t := last.CreatedAt.UTC()
		out.NextCursor = encodeCursor(cursor{List: list, Time: &t, ID: last.ID})
	}
	return out, nil
}

// RevokeAPIKey marks a key within scope revoked; revoking a revoked key changes nothing.
func (s *APIKeyStore) RevokeAPIKey(ctx context.Context, scope crm.Scope, id uuid.UUID, at time.Time) (*crm.APIKey, error) {
	var rows []apiKeyRow
	res := keysWithin(s.db.session(ctx).Model(&rows), scope).Clauses(clause.Returning{}).Where("id = ?", id).
		Update("revoked_at", gorm.Expr("coalesce(revoked_at, ?)", at))
	if res.Error != nil {
		return nil, fmt.Errorf("revoke api key: %w", res.Error)
	}
	if len(rows) == 0 {
		return nil, keyNotFound(id)
	}
	k := rows[0].key()
	return &k, nil
}

// CountActiveAPIKeys counts the keys that are not revoked.
func (s *APIKeyStore) CountActiveAPIKeys(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.session(ctx).Model(&apiKeyRow{}).Where("revoked_at IS NULL").Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count api keys: %w", err)
	}
	return n, nil
}
