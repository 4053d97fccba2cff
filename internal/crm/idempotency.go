package crm

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
)

// Idempotency keys are kept this long after the first request.
const IdempotencyTTL = 24 * time.Hour

// IdempotencyLease is how long a request may hold its key unanswered before a retry may take
// the key over, which frees the keys of requests lost to a crash; it is far above the server's
// write timeout.
const IdempotencyLease = 10 * time.Minute

// MaxIdempotencyKeyLength is the longest Idempotency-Key accepted.
const MaxIdempotencyKeyLength = 255

// StoredResponse is a response kept for replay.
type StoredResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// IdempotencyRecord is the first request made with an idempotency key: a digest of the
// request, and its response, or nil while it is still in flight.
type IdempotencyRecord struct {
	RequestHash []byte
	Response    *StoredResponse
}

// IdempotencyStore keeps the first request and response of each idempotency key, per API key.
type IdempotencyStore interface {
	// ClaimIdempotencyKey claims the key for a request with the given digest and reports true,
	// or, when the key is held already (unexpired, and answered or within its lease), returns
	// the earlier request and false.
	ClaimIdempotencyKey(ctx context.Context, apiKey uuid.UUID, key string, requestHash []byte, now time.Time) (*IdempotencyRecord, bool, error)
	// SaveIdempotentResponse stores the response of a claimed key.
	SaveIdempotentResponse(ctx context.Context, apiKey uuid.UUID, key string, res StoredResponse) error
	// ReleaseIdempotencyKey forgets a claimed key, so the request can be retried afresh.
	ReleaseIdempotencyKey(ctx context.Context, apiKey uuid.UUID, key string) error
	// PruneIdempotencyKeys deletes the keys expired at now and returns how many.
	PruneIdempotencyKeys(ctx context.Context, now time.Time) (int64, error)
}
