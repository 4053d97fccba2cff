package httpapi_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centric-crm/centric/internal/crm"
)

func TestIdempotencyReplay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := map[string]any{"kind": "consumer", "name": "Retry Me", "external_refs": []any{ref("shop", "R-1")}}
	key := map[string]string{"Idempotency-Key": "create-retry-me"}
	first := e.mustDo(request{Method: "POST", Path: "/v1/customers", Body: body, Headers: key}, http.StatusCreated)
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Error("the first response says it was replayed")
	}
	again := e.mustDo(request{Method: "POST", Path: "/v1/customers", Body: body, Headers: key}, http.StatusCreated)
	if string(again.Body) != string(first.Body) {
		t.Errorf("replayed body = %s, want %s", again.Body, first.Body)
	}
	for _, h := range []string{"Location", "ETag", "Content-Type"} {
		if again.Header.Get(h) != first.Header.Get(h) {
			t.Errorf("replayed %s = %q, want %q", h, again.Header.Get(h), first.Header.Get(h))
		}
	}
	if again.Header.Get("Idempotent-Replayed") != "true" {
		t.Error("a replay lacks Idempotent-Replayed: true")
	}
	list := e.mustDo(request{Method: "GET", Path: "/v1/customers?external_source=shop&external_id=R-1"}, http.StatusOK).json(t)
	if n := len(list["data"].([]any)); n != 1 {
		t.Errorf("%d customers after a retried create, want 1", n)
	}

	// The same key with another body is refused, and so is a key that is too long.
	other := e.do(request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "name": "Someone else"}, Headers: key})
	problem(t, other, http.StatusUnprocessableEntity, "idempotency_key_reused")
	long := e.do(request{Method: "POST", Path: "/v1/customers", Body: body, Headers: map[string]string{"Idempotency-Key": strings.Repeat("k", 256)}})
	if got := pointers(problem(t, long, http.StatusBadRequest, "invalid_request")); len(got) != 1 || got[0] != "header:Idempotency-Key" {
		t.Errorf("pointers of a long key = %v", got)
	}

	// Keys belong to the API key that sent them: another key's request with the same
	// Idempotency-Key runs on its own (here it conflicts on the external reference).
	writer := e.key(crm.PermCustomersWrite)
	problem(t, e.do(request{Method: "POST", Path: "/v1/customers", Body: body, Headers: key, Key: writer}), http.StatusConflict, "conflict")

	// A client error is stored and replayed too.
	bad := map[string]string{"Idempotency-Key": "bad-parent"}
	badBody := map[string]any{"kind": "consumer", "parent_id": "01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e"}
	firstBad := e.do(request{Method: "POST", Path: "/v1/customers", Body: badBody, Headers: bad})
	problem(t, firstBad, http.StatusUnprocessableEntity, "validation_failed")
	replayedBad := e.do(request{Method: "POST", Path: "/v1/customers", Body: badBody, Headers: bad})
	if replayedBad.Status != firstBad.Status || string(replayedBad.Body) != string(firstBad.Body) || replayedBad.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("replayed error = %d %s, want %d %s", replayedBad.Status, replayedBad.Body, firstBad.Status, firstBad.Body)
	}
}

func TestIdempotencyInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	keys, err := e.app.Keys.List(ctx, crm.Scope{}, crm.PageRequest{Limit: 10})
	if err != nil || len(keys.Keys) != 1 {
		t.Fatalf("keys = %v, %v", keys, err)
	}
	admin := keys.Keys[0].ID
	// A request holding the key, as another server would while the request runs.
	body := `{"kind":"consumer","name":"Slow"}`
	digest := sha256.Sum256([]byte("POST\n/v1/customers\n" + body))
	if _, claimed, err := e.app.Idempotency.ClaimIdempotencyKey(ctx, admin, "in-flight", digest[:], time.Now()); err != nil || !claimed {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	res := e.do(request{Method: "POST", Path: "/v1/customers", Body: body, Headers: map[string]string{"Idempotency-Key": "in-flight"}})
	problem(t, res, http.StatusConflict, "idempotency_key_in_use")
	// Once its lease has run out, the key can be taken over; after its 24 hours it is free.
	later := time.Now().Add(crm.IdempotencyLease + time.Minute)
	if _, claimed, err := e.app.Idempotency.ClaimIdempotencyKey(ctx, admin, "in-flight", digest[:], later); err != nil || !claimed {
		t.Errorf("take over after the lease: %v %v", claimed, err)
	}
	if err := e.app.Idempotency.SaveIdempotentResponse(ctx, admin, "in-flight", crm.StoredResponse{Status: 201, Header: http.Header{}, Body: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if _, claimed, _ := e.app.Idempotency.ClaimIdempotencyKey(ctx, admin, "in-flight", digest[:], later); claimed {
		t.Error("an answered key was claimed again before it expired")
	}
	if n, err := e.app.Idempotency.PruneIdempotencyKeys(ctx, later.Add(crm.IdempotencyTTL)); err != nil || n != 1 {
		t.Errorf("pruned %d, %v; want 1", n, err)
	}
}

func TestIdempotencyConcurrentRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 8
	body := map[string]any{"items": []any{map[string]any{"external_ref": ref("erp", "K-1"), "kind": "consumer", "name": "Once"}}}
	responses := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			responses[i] = e.do(request{Method: "POST", Path: "/v1/customers/batch", Body: body, Headers: map[string]string{"Idempotency-Key": "race"}})
		})
	}
	wg.Wait()
	var first string
	for _, r := range responses {
		switch r.Status {
		case http.StatusOK:
			if first == "" {
				first = string(r.Body)
			} else if string(r.Body) != first {
				t.Errorf("two different answers to one key:\n%s\n%s", first, r.Body)
			}
		case http.StatusConflict:
			problem(t, r, http.StatusConflict, "idempotency_key_in_use")
		default:
			t.Errorf("status %d: %s", r.Status, r.Body)
		}
	}
	if first == "" || !strings.Contains(first, `"created":1`) {
		t.Errorf("no request created the customer: %s", first)
	}
	list := e.mustDo(request{Method: "GET", Path: "/v1/customers?external_source=erp&external_id=K-1"}, http.StatusOK).json(t)
	if len(list["data"].([]any)) != 1 {
		t.Errorf("customers = %v, want exactly one", list["data"])
	}
}
