package httpapi_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
)

func TestAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.mustDo(request{Method: "POST", Path: "/v1/api-keys", Body: map[string]any{
		"name": "  shop sync ", "permissions": []string{"customers:read", "customers:read"},
	}}, http.StatusCreated)
	created := res.json(t)
	id, secret := created["id"].(string), created["secret"].(string)
	if res.Header.Get("Location") != "/v1/api-keys/"+id || !strings.HasPrefix(secret, created["prefix"].(string)+"_") {
		t.Errorf("Location %q, secret %q, prefix %v", res.Header.Get("Location"), secret, created["prefix"])
	}
	if created["name"] != "shop sync" || !cmp.Equal(created["permissions"], []any{"customers:read"}) || created["root_customer_id"] != nil || created["rate_limit"] != nil || created["revoked_at"] != nil {
		t.Errorf("created key = %v", created)
	}
	got := e.mustDo(request{Method: "GET", Path: "/v1/api-keys/" + id}, http.StatusOK).json(t)
	delete(created, "secret")
	if diff := cmp.Diff(created, got); diff != "" {
		t.Errorf("read key differs from the issued one without its secret (-issued +read):\n%s", diff)
	}
	e.mustDo(request{Method: "GET", Path: "/v1/customers", Key: secret}, http.StatusOK)
	problem(t, e.do(request{Method: "POST", Path: "/v1/customers", Key: secret, Body: map[string]any{"kind": "consumer"}}), http.StatusForbidden, "forbidden")
	problem(t, e.do(request{Method: "GET", Path: "/v1/api-keys", Key: secret}), http.StatusForbidden, "forbidden")

	revoked := e.mustDo(request{Method: "DELETE", Path: "/v1/api-keys/" + id}, http.StatusOK).json(t)
	if revoked["revoked_at"] == nil {
		t.Fatalf("revoked key = %v", revoked)
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/customers", Key: secret}), http.StatusUnauthorized, "unauthorized")
	again := e.mustDo(request{Method: "DELETE", Path: "/v1/api-keys/" + id}, http.StatusOK).json(t)
	if again["revoked_at"] != revoked["revoked_at"] {
		t.Errorf("revoking again moved revoked_at from %v to %v", revoked["revoked_at"], again["revoked_at"])
	}
	missing := uuid.NewString()
	p := problem(t, e.do(request{Method: "DELETE", Path: "/v1/api-keys/" + missing}), http.StatusNotFound, "not_found")
	if p["detail"] != "No API key has id "+missing+"." {
		t.Errorf("detail = %v", p["detail"])
	}
}

// TestAPIKeyEveryPermission issues a key with each permission through the API: the contract
// knows every permission the service does.
func TestAPIKeyEveryPermission(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, perm := range crm.Permissions {
		created := e.mustDo(request{Method: "POST", Path: "/v1/api-keys", Body: map[string]any{
			"name": "only " + string(perm), "permissions": []string{string(perm)},
		}}, http.StatusCreated).json(t)
		if !cmp.Equal(created["permissions"], []any{string(perm)}) {
			t.Errorf("key issued with %s has permissions %v", perm, created["permissions"])
		}
	}
}

func TestAPIKeyValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	consumer := createCustomer(e, map[string]any{"kind": "consumer"})["id"].(string)
	for _, c := range []struct {
		name     string
		body     map[string]any
		status   int
		pointers []string
	}{
		{"blank name", map[string]any{"name": " ", "permissions": []string{"admin"}}, 422, []string{"/name"}},
		{"no permissions", map[string]any{"name": "x", "permissions": []string{}}, 422, []string{"/permissions"}},
		{"unknown permission", map[string]any{"name": "x", "permissions": []string{"customers:read", "root"}}, 422, []string{"/permissions/1"}},
		{"unknown field", map[string]any{"name": "x", "permissions": []string{"admin"}, "scopes": []string{}}, 422, []string{"/scopes"}},
		{"root is a consumer", map[string]any{"name": "x", "permissions": []string{"admin"}, "root_customer_id": consumer}, 422, []string{"/root_customer_id"}},
		{"root does not exist", map[string]any{"name": "x", "permissions": []string{"admin"}, "root_customer_id": uuid.NewString()}, 422, []string{"/root_customer_id"}},
		{"rate limit out of range", map[string]any{"name": "x", "permissions": []string{"admin"}, "rate_limit": map[string]any{"per_second": 0, "burst": 0}}, 422, []string{"/rate_limit/burst", "/rate_limit/per_second"}},
		{"rate limit half given", map[string]any{"name": "x", "permissions": []string{"admin"}, "rate_limit": map[string]any{"per_second": 5}}, 422, []string{"/rate_limit/burst"}},
	} {
		p := problem(t, e.do(request{Method: "POST", Path: "/v1/api-keys", Body: c.body}), c.status, "validation_failed")
		if diff := cmp.Diff(c.pointers, pointers(p)); diff != "" {
			t.Errorf("%s: pointers (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestAPIKeyListPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var want []any
	for range 4 {
		want = append([]any{e.mustDo(request{Method: "POST", Path: "/v1/api-keys", Body: map[string]any{"name": "k", "permissions": []string{"customers:read"}}}, http.StatusCreated).json(t)["id"]}, want...)
	}
	var got []any
	path := "/v1/api-keys?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 3 {
			t.Fatal("too many pages")
		}
		page := e.mustDo(request{Method: "GET", Path: path}, http.StatusOK).json(t)
		for _, k := range page["data"].([]any) {
			got = append(got, k.(map[string]any)["id"])
		}
		path = ""
		if next, _ := page["next_cursor"].(string); next != "" {
			path = "/v1/api-keys?limit=2&cursor=" + next
		}
	}
	// The newest first, then the test's own admin key.
	if diff := cmp.Diff(want, got[:4]); diff != "" || len(got) != 5 {
		t.Errorf("keys over all pages: %d (-want +got):\n%s", len(got), diff)
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/api-keys?cursor=bogus"}), 422, "validation_failed")
}

// TestConfinedKeyIssuesNarrowerKeys checks that a partner's admin key issues keys only within
// its subtree, and that such a key is confined to its own root.
func TestConfinedKeyIssuesNarrowerKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	hq := createCustomer(e, map[string]any{"kind": "business", "role": "other"})["id"].(string)
	dist := createCustomer(e, map[string]any{"kind": "business", "role": "distributor", "parent_id": hq})["id"].(string)
	dealer := createCustomer(e, map[string]any{"kind": "business", "role": "dealer", "parent_id": dist})["id"].(string)
	partner := e.mustDo(request{Method: "POST", Path: "/v1/api-keys", Body: map[string]any{
		"name": "partner", "permissions": []string{"admin"}, "root_customer_id": dist,
	}}, http.StatusCreated).json(t)["secret"].(string)

	// Not above its own root: the head office is as unknown to it as a customer that does not exist.
	above := problem(t, e.do(request{Method: "POST", Path: "/v1/api-keys", Key: partner, Body: map[string]any{
		"name": "wider", "permissions": []string{"admin"}, "root_customer_id": hq,
	}}), 422, "validation_failed")
	if diff := cmp.Diff([]string{"/root_customer_id"}, pointers(above)); diff != "" || !strings.Contains(above["detail"].(string), "names no live customer") {
		t.Errorf("root above the partner: %v (-want +got pointers):\n%s", above["detail"], diff)
	}

	dealerKey := e.mustDo(request{Method: "POST", Path: "/v1/api-keys", Key: partner, Body: map[string]any{
		"name": "dealer", "permissions": []string{"customers:read", "customers:write"}, "root_customer_id": dealer,
	}}, http.StatusCreated).json(t)["secret"].(string)
	problem(t, e.do(request{Method: "GET", Path: "/v1/customers/" + dist, Key: dealerKey}), http.StatusNotFound, "not_found")
	got := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + dealer, Key: dealerKey}, http.StatusOK).json(t)
	if got["parent_id"] != nil {
		t.Errorf("the dealer key sees its root's parent %v", got["parent_id"])
	}
	child := e.mustDo(request{Method: "POST", Path: "/v1/customers", Key: dealerKey, Body: map[string]any{"kind": "consumer", "parent_id": dealer}}, http.StatusCreated).json(t)
	if diff := cmp.Diff([]any{dealer}, child["ancestors"]); diff != "" {
		t.Errorf("ancestors as the dealer key sees them (-want +got):\n%s", diff)
	}
	full := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + child["id"].(string)}, http.StatusOK).json(t)
	if diff := cmp.Diff([]any{hq, dist, dealer}, full["ancestors"]); diff != "" {
		t.Errorf("ancestors as the admin sees them (-want +got):\n%s", diff)
	}
}

// TestIssuerCannotGrantWhatItLacks checks the key service's own rule: an issuer grants only
// permissions it holds. Over HTTP only admin keys issue keys, so the service is called directly.
func TestIssuerCannotGrantWhatItLacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	issuer := &crm.Principal{Permissions: []crm.Permission{crm.PermCustomersRead, crm.PermCustomersWrite}}
	_, _, err := e.app.Keys.Issue(t.Context(), issuer, crm.NewAPIKey{Name: "x", Permissions: []crm.Permission{crm.PermCustomersRead, crm.PermAdmin, crm.PermAnalyticsRead}})
	var domainErr *crm.Error
	if !errors.As(err, &domainErr) || domainErr.Code != crm.CodeInvalid {
		t.Fatalf("error = %v, want a validation error", err)
	}
	want := []crm.FieldError{
		{Pointer: "/permissions/1", Message: "cannot be granted: the calling key does not hold admin itself"},
		{Pointer: "/permissions/2", Message: "cannot be granted: the calling key does not hold analytics:read itself"},
	}
	if diff := cmp.Diff(want, domainErr.Fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	if _, _, err := e.app.Keys.Issue(t.Context(), issuer, crm.NewAPIKey{Name: "x", Permissions: []crm.Permission{crm.PermCustomersWrite}}); err != nil {
		t.Errorf("granting a held permission: %v", err)
	}
}

// TestKeyWithItsOwnRateLimit checks that a key's own rate limit replaces the server's default
// (here none), and that a confined key's new keys get its limit and cannot set another.
func TestKeyWithItsOwnRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dist := createCustomer(e, map[string]any{"kind": "business", "role": "distributor"})["id"].(string)
	created := e.mustDo(request{Method: "POST", Path: "/v1/api-keys", Body: map[string]any{
		"name": "partner", "permissions": []string{"admin"}, "root_customer_id": dist,
		"rate_limit": map[string]any{"per_second": 0.01, "burst": 2},
	}}, http.StatusCreated).json(t)
	if diff := cmp.Diff(map[string]any{"per_second": 0.01, "burst": float64(2)}, created["rate_limit"]); diff != "" {
		t.Errorf("rate_limit (-want +got):\n%s", diff)
	}
	partner := created["secret"].(string)
	if res := e.mustDo(request{Method: "GET", Path: "/v1/customers"}, http.StatusOK); res.Header.Get("RateLimit-Limit") != "" {
		t.Errorf("the admin key, without a limit of its own or a default, got RateLimit-Limit %q", res.Header.Get("RateLimit-Limit"))
	}

	p := problem(t, e.do(request{Method: "POST", Path: "/v1/api-keys", Key: partner, Body: map[string]any{
		"name": "faster", "permissions": []string{"customers:read"}, "root_customer_id": dist,
		"rate_limit": map[string]any{"per_second": 1000, "burst": 1000},
	}}), 422, "validation_failed")
	if diff := cmp.Diff([]string{"/rate_limit"}, pointers(p)); diff != "" {
		t.Errorf("pointers (-want +got):\n%s", diff)
	}
	res := e.mustDo(request{Method: "POST", Path: "/v1/api-keys", Key: partner, Body: map[string]any{
		"name": "dealer", "permissions": []string{"customers:read"}, "root_customer_id": dist,
	}}, http.StatusCreated)
	if diff := cmp.Diff(created["rate_limit"], res.json(t)["rate_limit"]); diff != "" {
		t.Errorf("the confined key's new key's rate limit (-issuer +new):\n%s", diff)
	}
	if res.Header.Get("RateLimit-Limit") != "2" || res.Header.Get("RateLimit-Remaining") != "0" {
		t.Errorf("partner headers: limit %q remaining %q after two requests, want 2 and 0",
			res.Header.Get("RateLimit-Limit"), res.Header.Get("RateLimit-Remaining"))
	}
	limited := e.do(request{Method: "GET", Path: "/v1/customers", Key: partner})
	problem(t, limited, http.StatusTooManyRequests, "rate_limited")
	if limited.Header.Get("Retry-After") != "100" {
		t.Errorf("Retry-After = %q, want 100", limited.Header.Get("Retry-After"))
	}
}
