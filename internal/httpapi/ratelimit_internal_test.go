package httpapi

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestKeyBuckets(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b := newKeyBuckets(clock.now)
	limit := crm.RateLimit{PerSecond: 2, Burst: 3}
	key, other := uuid.New(), uuid.New()
	steps := []struct {
		name    string
		advance time.Duration
		key     uuid.UUID
		want    rateDecision
	}{
		{"a full bucket", 0, key, rateDecision{allowed: true, remaining: 2, reset: 500 * time.Millisecond}},
		{"second of the burst", 0, key, rateDecision{allowed: true, remaining: 1, reset: time.Second}},
		{"last of the burst", 0, key, rateDecision{allowed: true, remaining: 0, reset: 1500 * time.Millisecond}},
		{"over the limit", 0, key, rateDecision{allowed: false, remaining: 0, reset: 1500 * time.Millisecond, retryAfter: 500 * time.Millisecond}},
		{"another key has its own bucket", 0, other, rateDecision{allowed: true, remaining: 2, reset: 500 * time.Millisecond}},
		{"half a token later", 250 * time.Millisecond, key, rateDecision{allowed: false, remaining: 0, reset: 1250 * time.Millisecond, retryAfter: 250 * time.Millisecond}},
		{"a token later", 250 * time.Millisecond, key, rateDecision{allowed: true, remaining: 0, reset: 1500 * time.Millisecond}},
		{"refilled, never above the burst", time.Hour, key, rateDecision{allowed: true, remaining: 2, reset: 500 * time.Millisecond}},
	}
	for _, s := range steps {
		clock.t = clock.t.Add(s.advance)
		got := b.take(s.key, limit)
		if diff := cmp.Diff(s.want, got, cmp.AllowUnexported(rateDecision{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
	}
	// Full buckets are dropped once a minute; the next request finds a full bucket again.
	clock.t = clock.t.Add(sweepEvery)
	b.take(key, limit)
	if len(b.buckets) != 1 {
		t.Errorf("%d buckets after the sweep, want only the key just used", len(b.buckets))
	}
	// A key with a limit of its own fills to its own burst.
	if got := b.take(other, crm.RateLimit{PerSecond: 1, Burst: 10}); got.remaining != 9 || got.reset != time.Second {
		t.Errorf("own limit: %+v, want 9 remaining and a reset in 1s", got)
	}
}

func TestSecondsRoundUp(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{0: "0", time.Nanosecond: "1", time.Second: "1", 1500 * time.Millisecond: "2"} {
		if got := seconds(d); got != want {
			t.Errorf("seconds(%v) = %s, want %s", d, got, want)
		}
	}
}

func BenchmarkKeyBuckets(b *testing.B) {
	buckets := newKeyBuckets(time.Now)
	limit := crm.RateLimit{PerSecond: 1e9, Burst: 1 << 30}
	keys := make([]uuid.UUID, 100)
	for i := range keys {
		keys[i] = uuid.New()
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			buckets.take(keys[i%len(keys)], limit)
			i++
		}
	})
}
