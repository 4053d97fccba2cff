package httpapi_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/centric-crm/centric/internal/config"
	"github.com/centric-crm/centric/internal/crm"
)

// TestRateLimit checks the headers on every authenticated response, the 429 problem with
// Retry-After beyond the burst, that a refused request changes nothing, and that each key has
// its own bucket.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	// One request per 100 seconds, so no token comes back while the test runs.
	e := newEnvWith(t, func(c *config.Config) { c.RateLimit, c.RateBurst = 0.01, 3 })
	writer, other := e.key(crm.PermCustomersRead, crm.PermCustomersWrite), e.key(crm.PermCustomersRead)
	create := request{Method: "POST", Path: "/v1/customers", Key: writer, Body: map[string]any{"kind": "consumer", "name": "Counted"}}
	for i, want := range []struct{ status, remaining, reset int }{{201, 2, 100}, {201, 1, 200}, {201, 0, 300}} {
		res := e.do(create)
		if res.Status != want.status {
			t.Fatalf("request %d: status %d, want %d; body %s", i, res.Status, want.status, res.Body)
		}
		got := [3]string{res.Header.Get("RateLimit-Limit"), res.Header.Get("RateLimit-Remaining"), res.Header.Get("RateLimit-Reset")}
		if got != [3]string{"3", strconv.Itoa(want.remaining), strconv.Itoa(want.reset)} {
			t.Errorf("request %d: RateLimit-Limit, -Remaining, -Reset = %v, want [3 %d %d]", i, got, want.remaining, want.reset)
		}
	}
	res := e.do(create)
	p := problem(t, res, http.StatusTooManyRequests, "rate_limited")
	if got := res.Header.Get("Retry-After"); got != "100" {
		t.Errorf("Retry-After = %q, want 100", got)
	}
	if res.Header.Get("RateLimit-Remaining") != "0" || res.Header.Get("RateLimit-Limit") != "3" {
		t.Errorf("429 headers: %v", res.Header)
	}
	if p["detail"] != "This API key sent more than 3 requests in a burst or more than 0.01 per second; retry in 100 s." {
		t.Errorf("detail = %q", p["detail"])
	}
	// The refused request created nothing: another key with its own full bucket finds three.
	list := e.do(request{Method: "GET", Path: "/v1/customers?q=Counted", Key: other})
	if list.Status != http.StatusOK || len(list.json(t)["data"].([]any)) != 3 {
		t.Errorf("other key: status %d, body %s; want the 3 customers created before the limit", list.Status, list.Body)
	}
	if list.Header.Get("RateLimit-Remaining") != "2" {
		t.Errorf("other key's RateLimit-Remaining = %q, want 2", list.Header.Get("RateLimit-Remaining"))
	}
	// A request without a valid key is refused before it is counted.
	anon := e.do(request{Method: "GET", Path: "/v1/customers", Key: "-"})
	if anon.Status != http.StatusUnauthorized || anon.Header.Get("RateLimit-Limit") != "" {
		t.Errorf("unauthenticated: status %d, RateLimit-Limit %q; want 401 without rate limit headers", anon.Status, anon.Header.Get("RateLimit-Limit"))
	}
}
