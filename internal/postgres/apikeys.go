package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/centric-crm/centric/internal/crm"
)

// apiKeyRow is the api_keys table.
type apiKeyRow struct {
	ID         uuid.UUID
	Name       string
	Prefix     string
	SecretHash []byte
	Scopes     textArray
	CreatedAt  time.Time
	RevokedAt  *time.Time
}

func (apiKeyRow) TableName() string { return "api_keys" }

func (r *apiKeyRow) key() crm.APIKey {
	perms := make([]crm.Permission, len(r.Scopes))
	for i, s := range r.Scopes {
		perms[i] = crm.Permission(s)
	}
	return crm.APIKey{ID: r.ID, Name: r.Name, Prefix: r.Prefix, Permissions: perms, CreatedAt: r.CreatedAt.UTC(), RevokedAt: utcPtr(r.RevokedAt)}
}

// APIKeyStore implements crm.APIKeyStore.
type APIKeyStore struct {
	db *DB
}

// NewAPIKeyStore returns an APIKeyStore on db.
func NewAPIKeyStore(db *DB) *APIKeyStore { return &APIKeyStore{db: db} }

var _ crm.APIKeyStore = (*APIKeyStore)(nil)

// CreateAPIKey stores a key with the digest of its secret.
func (s *APIKeyStore) CreateAPIKey(ctx context.Context, k *crm.APIKey, secretHash []byte) error {
	scopes := make(textArray, len(k.Permissions))
	for i, p := range k.Permissions {
		scopes[i] = string(p)
	}
	row := apiKeyRow{ID: k.ID, Name: k.Name, Prefix: k.Prefix, SecretHash: secretHash, Scopes: scopes, CreatedAt: k.CreatedAt}
	if err := s.db.session(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("insert api key: %w", err)
	}
	return nil
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

// ListAPIKeys returns every key, newest first.
func (s *APIKeyStore) ListAPIKeys(ctx context.Context) ([]crm.APIKey, error) {
	var rows []apiKeyRow
	if err := s.db.session(ctx).Order("created_at DESC, id DESC").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	keys := make([]crm.APIKey, len(rows))
	for i := range rows {
		keys[i] = rows[i].key()
	}
	return keys, nil
}

// RevokeAPIKey marks a key revoked; revoking a revoked key changes nothing.
func (s *APIKeyStore) RevokeAPIKey(ctx context.Context, id uuid.UUID, at time.Time) error {
	res := s.db.session(ctx).Model(&apiKeyRow{}).Where("id = ?", id).
		Update("revoked_at", gorm.Expr("coalesce(revoked_at, ?)", at))
	if res.Error != nil {
		return fmt.Errorf("revoke api key: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return crm.Errorf(crm.CodeNotFound, "No API key has id %s.", id)
	}
	return nil
}

// CountActiveAPIKeys counts the keys that are not revoked.
func (s *APIKeyStore) CountActiveAPIKeys(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.session(ctx).Model(&apiKeyRow{}).Where("revoked_at IS NULL").Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count api keys: %w", err)
	}
	return n, nil
}
