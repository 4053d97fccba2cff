package httpapi_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/centric-crm/centric/internal/crm"
)

func createCustomer(e *env, body map[string]any) map[string]any {
	e.t.Helper()
	return e.mustDo(request{Method: "POST", Path: "/v1/customers", Body: body}, http.StatusCreated).json(e.t)
}

func TestCustomerLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.mustDo(request{Method: "POST", Path: "/v1/customers", Body: map[string]any{
		"kind": "consumer", "name": "Ada Lovelace", "email": "ada@example.com", "country": "GB",
		"tags": []string{"vip", "newsletter", "vip"}, "attributes": map[string]any{"card": "LC-1", "legacy": 7},
		"acquired_at": "2026-03-01T10:00:00+02:00", "acquisition_channel": "paid_search",
		"acquisition_cost": map[string]any{"amount": "42.50", "currency": "EUR"},
		"external_refs":    []any{map[string]any{"source": "shop", "external_id": "C-1"}},
	}}, http.StatusCreated)
	created := res.json(t)
	id := created["id"].(string)
	if got := res.Header.Get("ETag"); got != `"1"` {
		t.Errorf("ETag = %q, want \"1\"", got)
	}
	if got := res.Header.Get("Location"); got != "/v1/customers/"+id {
		t.Errorf("Location = %q", got)
	}
	want := map[string]any{
		"kind": "consumer", "role": nil, "parent_id": nil, "ancestors": []any{}, "name": "Ada Lovelace",
		"email": "ada@example.com", "phone": nil, "country": "GB", "industry": nil,
		"tags": []any{"newsletter", "vip"}, "attributes": map[string]any{"card": "LC-1", "legacy": float64(7)},
		"owner": nil, "scores": nil, "segments": []any{}, "acquired_at": "2026-03-01T08:00:00Z", "acquisition_channel": "paid_search",
		"acquisition_cost": map[string]any{"amount": "42.50", "currency": "EUR"}, "referred_by": nil,
		"external_refs": []any{map[string]any{"source": "shop", "external_id": "C-1"}}, "version": float64(1),
	}
	for _, k := range []string{"id", "created_at", "updated_at"} {
		if created[k] == nil {
			t.Errorf("created customer lacks %s", k)
		}
		delete(created, k)
	}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created customer (-want +got):\n%s", diff)
	}

	got := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + id}, http.StatusOK)
	if got.Header.Get("ETag") != `"1"` {
		t.Errorf("GET ETag = %q", got.Header.Get("ETag"))
	}

	// Merge patch: null clears, absent keeps, attributes merge key by key.
	patched := e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + id, Headers: map[string]string{"If-Match": `"1"`},
		Body: map[string]any{"email": nil, "phone": "+44 1", "attributes": map[string]any{"legacy": nil, "tier": "gold"}}}, http.StatusOK)
	p := patched.json(t)
	if p["email"] != nil || p["phone"] != "+44 1" || p["name"] != "Ada Lovelace" || p["version"] != float64(2) {
		t.Errorf("patched = %s", patched.Body)
	}
	if diff := cmp.Diff(map[string]any{"card": "LC-1", "tier": "gold"}, p["attributes"]); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	if patched.Header.Get("ETag") != `"2"` {
		t.Errorf("PATCH ETag = %q", patched.Header.Get("ETag"))
	}

	// A stale If-Match is refused and changes nothing.
	stale := e.do(request{Method: "PATCH", Path: "/v1/customers/" + id, Headers: map[string]string{"If-Match": `"1"`}, Body: map[string]any{"name": "X"}})
	problem(t, stale, http.StatusPreconditionFailed, "precondition_failed")
	weak := e.do(request{Method: "PATCH", Path: "/v1/customers/" + id, Headers: map[string]string{"If-Match": `W/"2"`}, Body: map[string]any{"name": "X"}})
	problem(t, weak, http.StatusPreconditionFailed, "precondition_failed")
	if e.mustDo(request{Method: "GET", Path: "/v1/customers/" + id}, http.StatusOK).json(t)["name"] != "Ada Lovelace" {
		t.Error("a refused patch changed the customer")
	}
	problem(t, e.do(request{Method: "DELETE", Path: "/v1/customers/" + id, Headers: map[string]string{"If-Match": `"7"`}}), http.StatusPreconditionFailed, "precondition_failed")

	// The external reference is taken while the customer lives, and free after deletion.
	dup := e.do(request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "external_refs": []any{map[string]any{"source": "shop", "external_id": "C-1"}}}})
	if diff := cmp.Diff([]string{"/external_refs/0"}, pointers(problem(t, dup, http.StatusConflict, "conflict"))); diff != "" {
		t.Errorf("conflict pointers (-want +got):\n%s", diff)
	}
	e.mustDo(request{Method: "DELETE", Path: "/v1/customers/" + id, Headers: map[string]string{"If-Match": `"2"`}}, http.StatusNoContent)
	problem(t, e.do(request{Method: "GET", Path: "/v1/customers/" + id}), http.StatusNotFound, "not_found")
	problem(t, e.do(request{Method: "PATCH", Path: "/v1/customers/" + id, Body: map[string]any{"name": "Y"}}), http.StatusNotFound, "not_found")
	problem(t, e.do(request{Method: "DELETE", Path: "/v1/customers/" + id}), http.StatusNotFound, "not_found")
	reused := createCustomer(e, map[string]any{"kind": "consumer", "external_refs": []any{map[string]any{"source": "shop", "external_id": "C-1"}}})
	list := e.mustDo(request{Method: "GET", Path: "/v1/customers?external_source=shop&external_id=C-1"}, http.StatusOK).json(t)
	if data := list["data"].([]any); len(data) != 1 || data[0].(map[string]any)["id"] != reused["id"] {
		t.Errorf("lookup by external reference = %v, want only %v", list["data"], reused["id"])
	}
}

func TestCustomerValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	existing := createCustomer(e, map[string]any{"kind": "consumer"})
	tests := []struct {
		name         string
		req          request
		status       int
		code         string
		wantPointers []string
	}{
		{"bad email", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "email": "not-an-email"}}, 422, "validation_failed", []string{"/email"}},
		{"role on a consumer", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "role": "dealer"}}, 422, "validation_failed", []string{"/role"}},
		{"unknown kind", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "robot"}}, 422, "validation_failed", []string{"/kind"}},
		{"missing kind", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"name": "x"}}, 422, "validation_failed", []string{"/kind"}},
		{"bad country", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "country": "XX"}}, 422, "validation_failed", []string{"/country"}},
		{"bad money", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "acquisition_cost": map[string]any{"amount": "1e3", "currency": "EUR"}}}, 422, "validation_failed", []string{"/acquisition_cost/amount"}},
		{"unknown currency", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "acquisition_cost": map[string]any{"amount": "1", "currency": "ABC"}}}, 422, "validation_failed", []string{"/acquisition_cost/currency"}},
		{"two refs of one source", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "external_refs": []any{map[string]any{"source": "s", "external_id": "1"}, map[string]any{"source": "s", "external_id": "2"}}}}, 422, "validation_failed", []string{"/external_refs"}},
		{"unknown field", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "nickname": "x"}}, 422, "validation_failed", []string{"/nickname"}},
		{"wrong type", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "tags": "vip"}}, 422, "validation_failed", []string{"/tags"}},
		{"malformed JSON", request{Method: "POST", Path: "/v1/customers", Body: `{"kind": "consumer",`}, 400, "invalid_request", nil},
		{"empty body", request{Method: "POST", Path: "/v1/customers", Body: ""}, 400, "invalid_request", nil},
		{"missing parent", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "parent_id": "01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e"}}, 422, "validation_failed", []string{"/parent_id"}},
		{"consumer as parent", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "parent_id": existing["id"]}}, 422, "validation_failed", []string{"/parent_id"}},
		{"missing referrer", request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "referred_by": "01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e"}}, 422, "validation_failed", []string{"/referred_by"}},
		{"empty patch", request{Method: "PATCH", Path: "/v1/customers/" + existing["id"].(string), Body: map[string]any{}}, 422, "validation_failed", nil},
		{"self referral", request{Method: "PATCH", Path: "/v1/customers/" + existing["id"].(string), Body: map[string]any{"referred_by": existing["id"]}}, 422, "validation_failed", []string{"/referred_by"}},
		{"bad uuid in path", request{Method: "GET", Path: "/v1/customers/not-a-uuid"}, 400, "invalid_request", []string{"path:customer_id"}},
		{"limit too large", request{Method: "GET", Path: "/v1/customers?limit=500"}, 400, "invalid_request", []string{"query:limit"}},
		{"unknown sort", request{Method: "GET", Path: "/v1/customers?sort=email"}, 400, "invalid_request", []string{"query:sort"}},
		{"forged cursor", request{Method: "GET", Path: "/v1/customers?cursor=abc"}, 422, "validation_failed", []string{"query:cursor"}},
		{"half an external reference", request{Method: "GET", Path: "/v1/customers?external_source=shop"}, 422, "validation_failed", []string{"query:external_id"}},
		{"not JSON", request{Method: "POST", Path: "/v1/customers", Body: "kind=consumer", Headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type", nil},
		{"batch not JSON", request{Method: "POST", Path: "/v1/transactions/batch", Body: "items=1", Headers: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type", nil},
		{"batch malformed JSON", request{Method: "POST", Path: "/v1/transactions/batch", Body: `{"items": [`}, 400, "invalid_request", nil},
		{"batch unknown field", request{Method: "POST", Path: "/v1/transactions/batch", Body: map[string]any{"items": []any{map[string]any{"customer_id": "01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e", "type": "purchase", "occurred_at": "2026-01-01T00:00:00Z", "amount": "1", "currency": "EUR", "colour": "red"}}}}, 422, "validation_failed", []string{"/items/0/colour"}},
		{"unknown route", request{Method: "GET", Path: "/v1/nothing-here"}, 404, "not_found", nil},
		{"wrong method", request{Method: "PUT", Path: "/v1/customers", Body: map[string]any{}}, 405, "method_not_allowed", nil},
		{"no key", request{Method: "GET", Path: "/v1/customers", Key: "-"}, 401, "unauthorized", nil},
		{"unknown key", request{Method: "GET", Path: "/v1/customers", Key: "ck_000000000000_nope"}, 401, "unauthorized", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := problem(t, e.do(tc.req), tc.status, tc.code)
			if tc.wantPointers != nil {
				if diff := cmp.Diff(tc.wantPointers, pointers(p)); diff != "" {
					t.Errorf("pointers (-want +got):\n%s\nbody: %v", diff, p)
				}
			}
		})
	}
	var n int64
	if err := e.app.DB.SQL().QueryRow("SELECT count(*) FROM customers").Scan(&n); err != nil || n != 1 {
		t.Errorf("customers after failed requests = %d (%v), want 1: a failed request wrote", n, err)
	}
}

func TestCustomerPermissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	reader := e.key(crm.PermCustomersRead)
	problem(t, e.do(request{Method: "POST", Path: "/v1/customers", Key: reader, Body: map[string]any{"kind": "consumer"}}), http.StatusForbidden, "forbidden")
	e.mustDo(request{Method: "GET", Path: "/v1/customers", Key: reader}, http.StatusOK)
	txReader := e.key(crm.PermTransactionsRead)
	problem(t, e.do(request{Method: "GET", Path: "/v1/customers", Key: txReader}), http.StatusForbidden, "forbidden")
	revoked, token, err := e.app.Keys.Create(t.Context(), "soon gone", []crm.Permission{crm.PermAdmin})
	if err != nil {
		t.Fatal(err)
	}
	e.mustDo(request{Method: "GET", Path: "/v1/customers", Key: token}, http.StatusOK)
	if _, err := e.app.Keys.Revoke(t.Context(), crm.Scope{}, revoked.ID); err != nil {
		t.Fatal(err)
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/customers", Key: token}), http.StatusUnauthorized, "unauthorized")
	// Probes and the contract need no key.
	e.mustDo(request{Method: "GET", Path: "/healthz", Key: "-"}, http.StatusOK)
	e.mustDo(request{Method: "GET", Path: "/readyz", Key: "-"}, http.StatusOK)
	spec := e.mustDo(request{Method: "GET", Path: "/openapi.yaml", Key: "-"}, http.StatusOK)
	var contract struct {
		OpenAPI string         `yaml:"openapi"`
		Paths   map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(spec.Body, &contract); err != nil {
		t.Fatalf("parse /openapi.yaml: %v", err)
	}
	if contract.OpenAPI != "3.0.3" || contract.Paths["/v1/customers/{customer_id}"] == nil {
		t.Errorf("/openapi.yaml = version %q with %d paths", contract.OpenAPI, len(contract.Paths))
	}
}

func TestHierarchy(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := func(m map[string]any) string { return m["id"].(string) }
	north := createCustomer(e, map[string]any{"kind": "business", "role": "distributor", "name": "North"})
	south := createCustomer(e, map[string]any{"kind": "business", "role": "distributor", "name": "South"})
	dealer := createCustomer(e, map[string]any{"kind": "business", "role": "dealer", "name": "Dealer", "parent_id": id(north)})
	shopper := createCustomer(e, map[string]any{"kind": "consumer", "name": "Shopper", "parent_id": id(dealer)})
	if diff := cmp.Diff([]any{id(north), id(dealer)}, shopper["ancestors"]); diff != "" {
		t.Errorf("ancestors (-want +got):\n%s", diff)
	}
	listIDs := func(query string) []string {
		var ids []string
		for _, c := range e.mustDo(request{Method: "GET", Path: "/v1/customers?" + query}, http.StatusOK).json(t)["data"].([]any) {
			ids = append(ids, c.(map[string]any)["id"].(string))
		}
		return ids
	}
	if diff := cmp.Diff([]string{id(dealer), id(shopper)}, listIDs("descendant_of="+id(north))); diff != "" {
		t.Errorf("subtree of north (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{id(dealer)}, listIDs("parent_id="+id(north))); diff != "" {
		t.Errorf("children of north (-want +got):\n%s", diff)
	}

	// Cycles and self-parenting are refused.
	for name, parent := range map[string]string{"self": id(north), "own descendant": id(dealer)} {
		res := e.do(request{Method: "PATCH", Path: "/v1/customers/" + id(north), Body: map[string]any{"parent_id": parent}})
		if diff := cmp.Diff([]string{"/parent_id"}, pointers(problem(t, res, 422, "validation_failed"))); diff != "" {
			t.Errorf("%s: pointers (-want +got):\n%s", name, diff)
		}
	}
	// A consumer with a child cannot exist: the dealer must stay business while it has children.
	problem(t, e.do(request{Method: "PATCH", Path: "/v1/customers/" + id(dealer), Body: map[string]any{"kind": "consumer"}}), 422, "validation_failed")

	// Re-parenting the dealer moves its subtree.
	moved := e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + id(dealer), Body: map[string]any{"parent_id": id(south)}}, http.StatusOK).json(t)
	if diff := cmp.Diff([]any{id(south)}, moved["ancestors"]); diff != "" {
		t.Errorf("moved dealer ancestors (-want +got):\n%s", diff)
	}
	shopperNow := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + id(shopper)}, http.StatusOK).json(t)
	if diff := cmp.Diff([]any{id(south), id(dealer)}, shopperNow["ancestors"]); diff != "" {
		t.Errorf("shopper ancestors after move (-want +got):\n%s", diff)
	}
	if shopperNow["version"] != float64(2) {
		t.Errorf("shopper version after its path changed = %v, want 2", shopperNow["version"])
	}
	if got := listIDs("descendant_of=" + id(north)); len(got) != 0 {
		t.Errorf("north still has descendants %v", got)
	}
	if diff := cmp.Diff([]string{id(dealer), id(shopper)}, listIDs("descendant_of="+id(south))); diff != "" {
		t.Errorf("subtree of south (-want +got):\n%s", diff)
	}
	// Moving to the top clears the path.
	top := e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + id(dealer), Body: map[string]any{"parent_id": nil}}, http.StatusOK).json(t)
	if top["parent_id"] != nil || len(top["ancestors"].([]any)) != 0 {
		t.Errorf("dealer at the top = %v", top)
	}
	// A customer with live children cannot be deleted.
	problem(t, e.do(request{Method: "DELETE", Path: "/v1/customers/" + id(dealer)}), http.StatusConflict, "conflict")
	e.mustDo(request{Method: "DELETE", Path: "/v1/customers/" + id(shopper)}, http.StatusNoContent)
	e.mustDo(request{Method: "DELETE", Path: "/v1/customers/" + id(dealer)}, http.StatusNoContent)
}

func TestCustomerFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := createCustomer(e, map[string]any{"kind": "consumer", "name": "Ann Archer", "email": "ann@example.com", "tags": []string{"vip", "eu"}})
	b := createCustomer(e, map[string]any{"kind": "business", "role": "enterprise", "name": "Acme 100% Ltd", "tags": []string{"eu"}})
	c := createCustomer(e, map[string]any{"kind": "business", "role": "institution", "name": "City Hall", "email": "hall@city.example"})
	ids := func(query string) []string {
		var out []string
		for _, x := range e.mustDo(request{Method: "GET", Path: "/v1/customers?" + query}, http.StatusOK).json(t)["data"].([]any) {
			out = append(out, x.(map[string]any)["id"].(string))
		}
		return out
	}
	tests := []struct {
		query string
		want  []map[string]any
	}{
		{"kind=consumer", []map[string]any{a}},
		{"kind=business", []map[string]any{b, c}},
		{"role=institution", []map[string]any{c}},
		{"tag=eu", []map[string]any{a, b}},
		{"tag=eu&tag=vip", []map[string]any{a}},
		{"q=ARCHER", []map[string]any{a}},
		{"q=city.example", []map[string]any{c}},
		{"q=100%25", []map[string]any{b}},
		{"q=_", nil},
		{"sort=name", []map[string]any{b, a, c}},
		{"sort=-name", []map[string]any{c, a, b}},
		{"sort=-created_at", []map[string]any{c, b, a}},
		{"updated_since=2999-01-01T00:00:00Z", nil},
	}
	for _, tc := range tests {
		var want []string
		for _, m := range tc.want {
			want = append(want, m["id"].(string))
		}
		if diff := cmp.Diff(want, ids(tc.query)); diff != "" {
			t.Errorf("GET /v1/customers?%s (-want +got):\n%s", tc.query, diff)
		}
	}
}

// TestPaginationUnderConcurrentInserts pages through every sort while other customers are
// being created, and checks that each customer that existed before paging began is seen
// exactly once and in order.
func TestPaginationUnderConcurrentInserts(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var before []string
	for i := range 40 {
		before = append(before, createCustomer(e, map[string]any{"kind": "consumer", "name": fmt.Sprintf("Customer %02d", i%17)})["id"].(string))
	}
	for _, sort := range []string{"created_at", "-created_at", "updated_at", "-updated_at", "name", "-name"} {
		t.Run(sort, func(t *testing.T) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					createCustomer(e, map[string]any{"kind": "consumer", "name": fmt.Sprintf("Concurrent %s %d", sort, i)})
				}
			})
			seen := map[string]int{}
			var order []map[string]any
			cursor := ""
			for pages := 0; ; pages++ {
				path := "/v1/customers?limit=7&sort=" + sort
				if cursor != "" {
					path += "&cursor=" + cursor
				}
				page := e.mustDo(request{Method: "GET", Path: path}, http.StatusOK).json(t)
				for _, c := range page["data"].([]any) {
					m := c.(map[string]any)
					seen[m["id"].(string)]++
					order = append(order, m)
				}
				if page["has_more"] != true {
					if page["next_cursor"] != nil {
						t.Errorf("last page has next_cursor %v", page["next_cursor"])
					}
					break
				}
				cursor = page["next_cursor"].(string)
				if pages > 100 {
					t.Fatal("paging does not end")
				}
			}
			close(stop)
			wg.Wait()
			for _, id := range before {
				if seen[id] != 1 {
					t.Errorf("customer %s seen %d times, want 1", id, seen[id])
				}
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("customer %s seen %d times", id, n)
				}
			}
			key := map[string]string{"created_at": "created_at", "updated_at": "updated_at", "name": "name"}[trimMinus(sort)]
			for i := 1; i < len(order); i++ {
				prev, cur := fmt.Sprint(order[i-1][key]), fmt.Sprint(order[i][key])
				var c int
				if key == "name" {
					c = strings.Compare(lower(prev), lower(cur))
				} else {
					c = mustTime(t, prev).Compare(mustTime(t, cur))
				}
				if (sort[0] == '-' && c < 0) || (sort[0] != '-' && c > 0) {
					t.Errorf("out of order at %d: %q then %q", i, prev, cur)
				}
			}
		})
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("parse time %q: %v", s, err)
	}
	return v
}

func trimMinus(s string) string {
	if s != "" && s[0] == '-' {
		return s[1:]
	}
	return s
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
