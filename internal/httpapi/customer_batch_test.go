package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
)

func ref(source, id string) map[string]any {
	return map[string]any{"source": source, "external_id": id}
}

// batchResult is one item of a customer batch's results, reduced to what tests compare.
type batchResult struct {
	Status   string
	Pointers []string
	Code     string
}

func upsertBatch(e *env, body map[string]any) (map[string]any, []batchResult) {
	e.t.Helper()
	out := e.mustDo(request{Method: "POST", Path: "/v1/customers/batch", Body: body}, http.StatusOK).json(e.t)
	var results []batchResult
	for i, r := range out["results"].([]any) {
		m := r.(map[string]any)
		if m["index"] != float64(i) {
			e.t.Fatalf("result %d has index %v", i, m["index"])
		}
		br := batchResult{Status: m["status"].(string)}
		if errObj, ok := m["error"].(map[string]any); ok {
			br.Code = errObj["code"].(string)
			for _, f := range errObj["errors"].([]any) {
				br.Pointers = append(br.Pointers, f.(map[string]any)["pointer"].(string))
			}
		}
		results = append(results, br)
	}
	return out, results
}

func resultField(out map[string]any, i int, field string) any {
	return out["results"].([]any)[i].(map[string]any)[field]
}

func TestCustomerBatchOutcomes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	distributor := createCustomer(e, map[string]any{"kind": "business", "role": "distributor", "name": "Northwind"})["id"].(string)

	// A child listed before its parent, a parent by id, an unknown parent, a duplicate, and an
	// item that cannot create a customer without a kind.
	out, results := upsertBatch(e, map[string]any{"items": []any{
		map[string]any{"external_ref": ref("erp", "C-1"), "kind": "consumer", "name": "Grace", "parent_ref": ref("erp", "D-1")},
		map[string]any{"external_ref": ref("erp", "D-1"), "kind": "business", "role": "dealer", "name": "Outlet", "parent_id": distributor},
		map[string]any{"external_ref": ref("erp", "C-2"), "kind": "consumer", "parent_ref": ref("erp", "D-9")},
		map[string]any{"external_ref": ref("erp", "C-1"), "kind": "consumer"},
		map[string]any{"external_ref": ref("erp", "C-3"), "name": "No kind"},
		map[string]any{"id": uuid.NewString(), "name": "Nobody"},
		map[string]any{"kind": "consumer"},
	}})
	want := []batchResult{
		{Status: "created"},
		{Status: "created"},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/2/parent_ref"}},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/3/external_ref"}},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/4/kind"}},
		{Status: "error", Code: "not_found", Pointers: []string{"/items/5/id"}},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/6"}},
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	if out["created"] != float64(2) || out["updated"] != float64(0) || out["unchanged"] != float64(0) || out["failed"] != float64(5) || out["dry_run"] != false {
		t.Errorf("counts = %v", out)
	}
	child, dealer := resultField(out, 0, "id").(string), resultField(out, 1, "id").(string)
	c := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + child}, http.StatusOK).json(t)
	if diff := cmp.Diff([]any{distributor, dealer}, c["ancestors"]); diff != "" || c["parent_id"] != dealer || c["name"] != "Grace" || c["version"] != float64(1) {
		t.Errorf("child placed wrongly (ancestors diff %s): %v", diff, c)
	}
	if diff := cmp.Diff([]any{ref("erp", "C-1")}, c["external_refs"]); diff != "" {
		t.Errorf("child's external_refs (-want +got):\n%s", diff)
	}

	// The same data again changes nothing: no version bump, no write.
	again := []any{
		map[string]any{"external_ref": ref("erp", "C-1"), "kind": "consumer", "name": "Grace", "parent_ref": ref("erp", "D-1")},
		map[string]any{"external_ref": ref("erp", "D-1"), "kind": "business", "role": "dealer", "name": "Outlet", "parent_id": distributor},
	}
	logged := changeLogSize(e)
	out, results = upsertBatch(e, map[string]any{"items": again})
	if diff := cmp.Diff([]batchResult{{Status: "unchanged"}, {Status: "unchanged"}}, results); diff != "" {
		t.Fatalf("resend (-want +got):\n%s", diff)
	}
	if resultField(out, 0, "version") != float64(1) || resultField(out, 0, "id") != child {
		t.Errorf("unchanged result = %v", out["results"])
	}
	after := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + child}, http.StatusOK).json(t)
	if after["updated_at"] != c["updated_at"] || after["version"] != float64(1) {
		t.Errorf("an unchanged item was written: %v", after)
	}
	if n := changeLogSize(e); n != logged {
		t.Errorf("unchanged items added %d changes to the log", n-logged)
	}

	// Updates by reference and by id, with and without a matching if_match.
	out, results = upsertBatch(e, map[string]any{"items": []any{
		map[string]any{"external_ref": ref("erp", "C-1"), "name": "Grace Hopper", "if_match": `"1"`},
		map[string]any{"id": dealer, "tags": []string{"gold"}, "if_match": `"5"`},
		map[string]any{"id": distributor, "email": "north@example.com", "if_match": `"1"`},
		map[string]any{"id": distributor, "email": "again@example.com"},
	}})
	want = []batchResult{
		{Status: "updated"},
		{Status: "error", Code: "precondition_failed", Pointers: []string{"/items/1/if_match"}},
		{Status: "updated"},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/3/id"}},
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Fatalf("updates (-want +got):\n%s", diff)
	}
	if resultField(out, 0, "version") != float64(2) || resultField(out, 2, "version") != float64(2) {
		t.Errorf("versions after update = %v", out["results"])
	}
	c = e.mustDo(request{Method: "GET", Path: "/v1/customers/" + child}, http.StatusOK).json(t)
	if c["name"] != "Grace Hopper" || c["version"] != float64(2) || c["parent_id"] != dealer {
		t.Errorf("updated child = %v", c)
	}
	if d := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + dealer}, http.StatusOK).json(t); len(d["tags"].([]any)) != 0 || d["version"] != float64(1) {
		t.Errorf("dealer = %v: an item with a stale if_match was applied", d)
	}
	if d := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + distributor}, http.StatusOK).json(t); d["email"] != "north@example.com" {
		t.Errorf("distributor = %v: the first item for it applies, the repeat does not", d)
	}
}

func TestCustomerBatchAllOrNoneAndDryRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	_, results := upsertBatch(e, map[string]any{"items": []any{
		map[string]any{"external_ref": ref("erp", "A"), "kind": "consumer", "name": "Anna"},
	}})
	if results[0].Status != "created" {
		t.Fatalf("setup: %v", results)
	}

	// all_or_none: one bad item rejects the batch with a pointer to it and writes nothing.
	res := e.do(request{Method: "POST", Path: "/v1/customers/batch", Body: map[string]any{"all_or_none": true, "items": []any{
		map[string]any{"external_ref": ref("erp", "B"), "kind": "consumer"},
		map[string]any{"external_ref": ref("erp", "A"), "email": "not-an-email"},
	}}})
	if diff := cmp.Diff([]string{"/items/1/email"}, pointers(problem(t, res, http.StatusUnprocessableEntity, "validation_failed"))); diff != "" {
		t.Errorf("all_or_none pointers (-want +got):\n%s", diff)
	}
	if n := len(e.mustDo(request{Method: "GET", Path: "/v1/customers?external_source=erp&external_id=B"}, http.StatusOK).json(t)["data"].([]any)); n != 0 {
		t.Errorf("all_or_none wrote the good item")
	}

	// dry_run: the results say what would happen, and nothing is written.
	out, results := upsertBatch(e, map[string]any{"dry_run": true, "items": []any{
		map[string]any{"external_ref": ref("erp", "B"), "kind": "consumer"},
		map[string]any{"external_ref": ref("erp", "A"), "name": "Anna Karenina"},
		map[string]any{"external_ref": ref("erp", "A"), "name": "Anna"},
		map[string]any{"external_ref": ref("erp", "C"), "kind": "consumer", "email": "not-an-email"},
	}})
	want := []batchResult{{Status: "created"}, {Status: "updated"}, {Status: "error", Code: "validation_failed", Pointers: []string{"/items/2/external_ref"}}, {Status: "error", Code: "validation_failed", Pointers: []string{"/items/3/email"}}}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Fatalf("dry run (-want +got):\n%s", diff)
	}
	if out["dry_run"] != true || resultField(out, 0, "id") != nil || resultField(out, 1, "version") != float64(2) {
		t.Errorf("dry run results = %v", out)
	}
	if n := len(e.mustDo(request{Method: "GET", Path: "/v1/customers?external_source=erp&external_id=B"}, http.StatusOK).json(t)["data"].([]any)); n != 0 {
		t.Error("dry run created a customer")
	}
	a := e.mustDo(request{Method: "GET", Path: "/v1/customers?external_source=erp&external_id=A"}, http.StatusOK).json(t)["data"].([]any)[0].(map[string]any)
	if a["name"] != "Anna" || a["version"] != float64(1) {
		t.Errorf("dry run changed a customer: %v", a)
	}
}

func TestCustomerBatchHierarchyRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	consumer := createCustomer(e, map[string]any{"kind": "consumer", "external_refs": []any{ref("erp", "P")}})["id"].(string)
	taken := createCustomer(e, map[string]any{"kind": "business", "external_refs": []any{ref("crm", "T")}})["id"].(string)
	_, results := upsertBatch(e, map[string]any{"items": []any{
		// A consumer cannot be a parent.
		map[string]any{"external_ref": ref("erp", "X"), "kind": "consumer", "parent_ref": ref("erp", "P")},
		// Two new items naming each other as parents form a cycle.
		map[string]any{"external_ref": ref("erp", "Y"), "kind": "business", "parent_ref": ref("erp", "Z")},
		map[string]any{"external_ref": ref("erp", "Z"), "kind": "business", "parent_ref": ref("erp", "Y")},
		// A child of a failed item fails with it.
		map[string]any{"external_ref": ref("erp", "W"), "kind": "consumer", "parent_ref": ref("erp", "X")},
		// An external reference another customer holds is a conflict.
		map[string]any{"external_ref": ref("erp", "V"), "kind": "consumer", "external_refs": []any{ref("erp", "V"), ref("crm", "T")}},
		// Moving a customer under itself is refused.
		map[string]any{"id": taken, "parent_id": taken},
		// Two items cannot take the same reference: the first does.
		map[string]any{"external_ref": ref("erp", "Q1"), "kind": "consumer", "external_refs": []any{ref("erp", "Q1"), ref("crm", "Q")}},
		map[string]any{"external_ref": ref("erp", "Q2"), "kind": "consumer", "external_refs": []any{ref("erp", "Q2"), ref("crm", "Q")}},
	}})
	want := []batchResult{
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/0/parent_ref"}},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/1/parent_ref"}},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/2/parent_ref"}},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/3/parent_ref"}},
		{Status: "error", Code: "conflict", Pointers: []string{"/items/4/external_refs/1"}},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/5/parent_id"}},
		{Status: "created"},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/7/external_refs/1"}},
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	_ = consumer

	// Moving a dealer moves its subtree; a new customer under the moved dealer lands below its
	// new place.
	north := createCustomer(e, map[string]any{"kind": "business", "role": "distributor"})["id"].(string)
	south := createCustomer(e, map[string]any{"kind": "business", "role": "distributor"})["id"].(string)
	dealer := createCustomer(e, map[string]any{"kind": "business", "role": "dealer", "parent_id": north, "external_refs": []any{ref("erp", "D")}})["id"].(string)
	shop := createCustomer(e, map[string]any{"kind": "consumer", "parent_id": dealer})["id"].(string)
	out, results := upsertBatch(e, map[string]any{"items": []any{
		map[string]any{"external_ref": ref("erp", "N"), "kind": "consumer", "parent_ref": ref("erp", "D")},
		map[string]any{"external_ref": ref("erp", "D"), "parent_id": south},
	}})
	if diff := cmp.Diff([]batchResult{{Status: "created"}, {Status: "updated"}}, results); diff != "" {
		t.Fatalf("move (-want +got):\n%s", diff)
	}
	for _, id := range []string{shop, resultField(out, 0, "id").(string)} {
		got := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + id}, http.StatusOK).json(t)
		if diff := cmp.Diff([]any{south, dealer}, got["ancestors"]); diff != "" {
			t.Errorf("%s ancestors after the move (-want +got):\n%s", id, diff)
		}
	}
}

func TestCustomerBatchScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	mine := uuid.MustParse(createCustomer(e, map[string]any{"kind": "business", "role": "distributor"})["id"].(string))
	other := createCustomer(e, map[string]any{"kind": "business", "role": "distributor", "external_refs": []any{ref("erp", "O")}})["id"].(string)
	scope := crm.Scope{Root: &mine}
	items := []crm.CustomerUpsert{
		{Ref: &crm.ExternalRef{Source: "erp", ExternalID: "in"}, Patch: patchOf(t, map[string]any{"kind": "business", "parent_id": mine.String()})},
		{Ref: &crm.ExternalRef{Source: "erp", ExternalID: "out"}, Patch: patchOf(t, map[string]any{"kind": "consumer", "parent_id": other})},
		{Ref: &crm.ExternalRef{Source: "erp", ExternalID: "top"}, Patch: patchOf(t, map[string]any{"kind": "consumer"})},
		{ID: ptrTo(uuid.MustParse(other)), Patch: patchOf(t, map[string]any{"name": "Taken over"})},
		{Ref: &crm.ExternalRef{Source: "erp", ExternalID: "O"}, Patch: patchOf(t, map[string]any{"name": "Taken over"})},
	}
	results, err := e.app.CustomerBatches.Upsert(ctx, scope, items, crm.UpsertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]batchResult, len(results))
	for i, r := range results {
		got[i] = batchResult{Status: string(r.Status)}
		if r.Err != nil {
			got[i].Code = string(r.Err.Code)
			for _, f := range r.Err.Fields {
				got[i].Pointers = append(got[i].Pointers, f.Pointer)
			}
		}
	}
	want := []batchResult{
		{Status: "created"},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/1/parent_id"}},
		{Status: "error", Code: "validation_failed", Pointers: []string{"/items/2/parent_id"}},
		{Status: "error", Code: "not_found", Pointers: []string{"/items/3/id"}},
		{Status: "error", Code: "conflict", Pointers: []string{"/items/4/external_ref"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a scoped batch (-want +got):\n%s", diff)
	}
}

func ptrTo[T any](v T) *T { return &v }

func changeLogSize(e *env) int {
	e.t.Helper()
	var n int
	if err := e.app.DB.SQL().QueryRow(`SELECT count(*) FROM change_log`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// patchOf decodes a merge patch the way the API does.
func patchOf(t *testing.T, body map[string]any) crm.CustomerPatch {
	t.Helper()
	var p crm.CustomerPatch
	if k, ok := body["kind"].(string); ok {
		kind := crm.Kind(k)
		p.Kind = &kind
	}
	if id, ok := body["parent_id"].(string); ok {
		p.ParentID.Set(uuid.MustParse(id))
	}
	if name, ok := body["name"].(string); ok {
		p.Name.Set(name)
	}
	return p
}

// TestCustomerBatchConcurrentWriters has batches update the same customers at once: each batch
// either applies in full or is refused with a 409, and no update is lost.
func TestCustomerBatchConcurrentWriters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const customers, writers = 40, 4
	items := func(name string) []any {
		out := make([]any, customers)
		for i := range out {
			out[i] = map[string]any{"external_ref": ref("erp", fmt.Sprint("K-", i)), "kind": "consumer", "name": name}
		}
		return out
	}
	if _, results := upsertBatch(e, map[string]any{"items": items("initial")}); results[0].Status != "created" {
		t.Fatalf("setup: %v", results)
	}
	statuses := make([]int, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			res := e.do(request{Method: "POST", Path: "/v1/customers/batch", Body: map[string]any{"items": items(fmt.Sprint("writer ", w))}})
			statuses[w] = res.Status
			if res.Status == http.StatusOK && res.json(t)["updated"] != float64(customers) {
				t.Errorf("writer %d: %s", w, res.Body)
			}
			if res.Status != http.StatusOK {
				problem(t, res, http.StatusConflict, "conflict")
			}
		})
	}
	wg.Wait()
	applied := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			applied++
		}
	}
	if applied == 0 {
		t.Fatalf("no batch applied: %v", statuses)
	}
	page := e.mustDo(request{Method: "GET", Path: "/v1/customers?limit=200"}, http.StatusOK).json(t)
	for _, c := range page["data"].([]any) {
		if v := c.(map[string]any)["version"]; v != float64(1+applied) {
			t.Errorf("customer at version %v after %d applied batches: an update was lost", v, applied)
		}
	}
}
