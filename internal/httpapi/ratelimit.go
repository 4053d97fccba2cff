package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/centric-crm/centric/internal/crm"
)

// keyBuckets holds one token bucket per API key. Buckets live in this process, so behind
// several replicas a key gets its limit once per replica.
type keyBuckets struct {
	now func() time.Time

	mu        sync.Mutex
	buckets   map[uuid.UUID]*bucket
	lastSweep time.Time
}

// bucket is a key's tokens as of a moment, under the key's limit.
type bucket struct {
	limit  crm.RateLimit
	tokens float64
	at     time.Time
}

// sweepEvery is how often buckets that have filled up again are dropped, so the map holds only
// keys that were active within about the time a bucket takes to fill.
const sweepEvery = time.Minute

func newKeyBuckets(now func() time.Time) *keyBuckets {
	return &keyBuckets{now: now, buckets: map[uuid.UUID]*bucket{}, lastSweep: now()}
}

// rateDecision is the outcome of one request against its key's bucket.
type rateDecision struct {
	allowed bool
	// remaining is the whole number of requests the key may still send now.
	remaining int
	// reset is how long until the bucket is full again.
	reset time.Duration
	// retryAfter is how long until the next request is allowed; zero when allowed.
	retryAfter time.Duration
}

// take spends one token of key's bucket, which has the given limit, if it has one.
func (b *keyBuckets) take(key uuid.UUID, limit crm.RateLimit) rateDecision {
	now := b.now()
	burst := float64(limit.Burst)
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Sub(b.lastSweep) >= sweepEvery {
		b.sweep(now)
	}
	bk, ok := b.buckets[key]
	if !ok || bk.limit != limit {
		bk = &bucket{limit: limit, tokens: burst, at: now}
		b.buckets[key] = bk
	}
	if elapsed := now.Sub(bk.at); elapsed > 0 {
		bk.tokens = math.Min(burst, bk.tokens+elapsed.Seconds()*limit.PerSecond)
		bk.at = now
	}
	d := rateDecision{allowed: bk.tokens >= 1}
	if d.allowed {
		bk.tokens--
	} else {
		d.retryAfter = refillTime(limit, 1-bk.tokens)
	}
	d.remaining = int(math.Floor(bk.tokens))
	d.reset = refillTime(limit, burst-bk.tokens)
	return d
}

// refillTime is how long a bucket with the limit takes to gain the given number of tokens.
func refillTime(limit crm.RateLimit, tokens float64) time.Duration {
	return time.Duration(tokens / limit.PerSecond * float64(time.Second))
}

// sweep drops the buckets that are full by now; a new request recreates them full.
func (b *keyBuckets) sweep(now time.Time) {
	for key, bk := range b.buckets {
		if now.Sub(bk.at) >= refillTime(bk.limit, float64(bk.limit.Burst)) {
			delete(b.buckets, key)
		}
	}
	b.lastSweep = now
}

// seconds rounds a duration up to whole seconds, as the rate limit headers count.
func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

// rateLimiter limits the requests of every authenticated caller per API key, by the key's own
// rate limit or else by def (none when def.PerSecond is 0), and reports the state of its
// bucket in RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset on every response; a
// request over the limit is a 429 problem with Retry-After and never reaches the handlers.
// Unauthenticated requests pass through: they are refused before they cost anything.
func rateLimiter(def crm.RateLimit, now func() time.Time) echo.MiddlewareFunc {
	buckets := newKeyBuckets(now)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := principalOf(c.Request().Context())
			if p == nil {
				return next(c)
			}
			limit := def
			if p.RateLimit != nil {
				limit = *p.RateLimit
			}
			if limit.PerSecond <= 0 || limit.Burst < 1 {
				return next(c)
			}
			d := buckets.take(p.KeyID, limit)
			h := c.Response().Header()
			h.Set("RateLimit-Limit", strconv.Itoa(limit.Burst))
			h.Set("RateLimit-Remaining", strconv.Itoa(d.remaining))
			h.Set("RateLimit-Reset", seconds(d.reset))
			if !d.allowed {
				h.Set("Retry-After", seconds(d.retryAfter))
				return &requestError{status: http.StatusTooManyRequests, detail: fmt.Sprintf(
					"This API key sent more than %d requests in a burst or more than %g per second; retry in %s s.",
					limit.Burst, limit.PerSecond, seconds(d.retryAfter))}
			}
			return next(c)
		}
	}
}
