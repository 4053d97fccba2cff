package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/centric-crm/centric/internal/crm"
)

// IdempotencyStore implements crm.IdempotencyStore.
type IdempotencyStore struct {
	db *DB
}

// NewIdempotencyStore returns an IdempotencyStore on db.
func NewIdempotencyStore(db *DB) *IdempotencyStore { return &IdempotencyStore{db: db} }

var _ crm.IdempotencyStore = (*IdempotencyStore)(nil)

// idempotencyRow is the idempotency_keys table.
type idempotencyRow struct {
	APIKeyID    uuid.UUID
	Key         string
	RequestHash []byte
	Status      *int
	Headers     []byte
	Body        []byte
	StartedAt   time.Time
	ExpiresAt   time.Time
}

func (idempotencyRow) TableName() string { return "idempotency_keys" }

// ClaimIdempotencyKey inserts the key, or takes over a row that expired or whose request was
// lost unanswered; otherwise it returns the row that holds the key.
func (s *IdempotencyStore) ClaimIdempotencyKey(ctx context.Context, apiKey uuid.UUID, key string, requestHash []byte, now time.Time) (*crm.IdempotencyRecord, bool, error) {
	now = now.UTC()
	for range 3 {
		res := s.db.session(ctx).Exec(`INSERT INTO idempotency_keys (api_key_id, key, request_hash, started_at, expires_at)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (api_key_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash, status = NULL,
				headers = NULL, body = NULL, started_at = EXCLUDED.started_at, expires_at = EXCLUDED.expires_at
			WHERE idempotency_keys.expires_at <= EXCLUDED.started_at
				OR (idempotency_keys.status IS NULL AND idempotency_keys.started_at < ?)`,
			apiKey, key, requestHash, now, now.Add(crm.IdempotencyTTL), now.Add(-crm.IdempotencyLease))
		if res.Error != nil {
			return nil, false, fmt.Errorf("claim idempotency key: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			return nil, true, nil
		}
		var row idempotencyRow
		err := s.db.session(ctx).Where("api_key_id = ? AND key = ?", apiKey, key).Take(&row).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			continue // released meanwhile: claim it again
		}
		if err != nil {
			return nil, false, fmt.Errorf("read idempotency key: %w", err)
		}
		rec := &crm.IdempotencyRecord{RequestHash: row.RequestHash}
		if row.Status != nil {
			rec.Response = &crm.StoredResponse{Status: *row.Status, Header: http.Header{}, Body: row.Body}
			if err := json.Unmarshal(row.Headers, &rec.Response.Header); err != nil {
				return nil, false, fmt.Errorf("decode stored headers: %w", err)
			}
		}
		return rec, false, nil
	}
	return nil, false, crm.Errorf(crm.CodeIdempotencyKeyInUse, "The Idempotency-Key %q is being claimed and released by concurrent requests; retry shortly.", key)
}

// SaveIdempotentResponse stores the response of a claimed key.
func (s *IdempotencyStore) SaveIdempotentResponse(ctx context.Context, apiKey uuid.UUID, key string, r crm.StoredResponse) error {
	headers, err := json.Marshal(r.Header)
	if err != nil {
		return fmt.Errorf("encode headers: %w", err)
	}
	err = s.db.session(ctx).Exec(`UPDATE idempotency_keys SET status = ?, headers = ?::jsonb, body = ?
		WHERE api_key_id = ? AND key = ?`, r.Status, string(headers), r.Body, apiKey, key).Error
	if err != nil {
		return fmt.Errorf("store idempotent response: %w", err)
	}
	return nil
}

// ReleaseIdempotencyKey deletes a claimed key.
func (s *IdempotencyStore) ReleaseIdempotencyKey(ctx context.Context, apiKey uuid.UUID, key string) error {
	err := s.db.session(ctx).Exec(`DELETE FROM idempotency_keys WHERE api_key_id = ? AND key = ?`, apiKey, key).Error
	if err != nil {
		return fmt.Errorf("release idempotency key: %w", err)
	}
	return nil
}

// PruneIdempotencyKeys deletes the expired keys.
func (s *IdempotencyStore) PruneIdempotencyKeys(ctx context.Context, now time.Time) (int64, error) {
	res := s.db.session(ctx).Exec(`DELETE FROM idempotency_keys WHERE expires_at <= ?`, now.UTC())
	if res.Error != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", res.Error)
	}
	return res.RowsAffected, nil
}
