package httpapi_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func purchase(customerID string, externalID string, amount string) map[string]any {
	return map[string]any{
		"customer_id": customerID, "type": "purchase", "occurred_at": "2026-03-02T14:30:00Z",
		"amount": amount, "currency": "EUR", "source": "shop", "external_id": externalID,
	}
}

func countRows(e *env, table string) int {
	e.t.Helper()
	var n int
	if err := e.app.DB.SQL().QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		e.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

func TestTransactionCreateAndResend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := createCustomer(e, map[string]any{"kind": "consumer", "external_refs": []any{map[string]any{"source": "shop", "external_id": "C-9"}}})
	cid := c["id"].(string)
	body := purchase(cid, "order-1", "129.90")
	body["product"], body["quantity"], body["margin"], body["metadata"] = "SKU-1", 2, "-3.5", map[string]any{"coupon": "X"}
	res := e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: body}, http.StatusCreated)
	tx := res.json(t)
	id := tx["id"].(string)
	if res.Header.Get("Location") != "/v1/transactions/"+id {
		t.Errorf("Location = %q", res.Header.Get("Location"))
	}
	want := map[string]any{
		"customer_id": cid, "type": "purchase", "occurred_at": "2026-03-02T14:30:00Z", "amount": "129.90",
		"currency": "EUR", "product": "SKU-1", "category": nil, "quantity": float64(2), "margin": "-3.5",
		"channel": nil, "dealer_id": nil, "source": "shop", "external_id": "order-1", "metadata": map[string]any{"coupon": "X"},
	}
	delete(tx, "id")
	delete(tx, "created_at")
	if diff := cmp.Diff(want, tx); diff != "" {
		t.Errorf("transaction (-want +got):\n%s", diff)
	}

	// The same reference and content again: 200 with the stored transaction, no duplicate.
	again := e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: body}, http.StatusOK).json(t)
	if again["id"] != id {
		t.Errorf("resend id = %v, want %s", again["id"], id)
	}
	// The same amount written with another scale is the same content.
	body["amount"] = "129.9000"
	e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: body}, http.StatusOK)
	// Other content under the same reference is a conflict.
	body["amount"] = "130.00"
	if diff := cmp.Diff([]string{"/external_id"}, pointers(problem(t, e.do(request{Method: "POST", Path: "/v1/transactions", Body: body}), http.StatusConflict, "conflict"))); diff != "" {
		t.Errorf("conflict pointers (-want +got):\n%s", diff)
	}
	if n := countRows(e, "transactions"); n != 1 {
		t.Errorf("transactions = %d, want 1", n)
	}

	// A customer named by its external reference.
	byRef := e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
		"customer_ref": map[string]any{"source": "shop", "external_id": "C-9"}, "type": "refund",
		"occurred_at": "2026-03-03T09:00:00Z", "amount": "10", "currency": "EUR",
	}}, http.StatusCreated).json(t)
	if byRef["customer_id"] != cid {
		t.Errorf("customer by reference = %v, want %s", byRef["customer_id"], cid)
	}
	got := e.mustDo(request{Method: "GET", Path: "/v1/transactions/" + id}, http.StatusOK).json(t)
	if got["amount"] != "129.90" {
		t.Errorf("GET amount = %v", got["amount"])
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/transactions/01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e"}), http.StatusNotFound, "not_found")
}

func TestTransactionValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cid := createCustomer(e, map[string]any{"kind": "consumer"})["id"].(string)
	with := func(k string, v any) map[string]any {
		b := purchase(cid, "x-1", "1.00")
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	tests := []struct {
		name         string
		body         any
		status       int
		code         string
		wantPointers []string
	}{
		{"too many decimals", with("amount", "1.23456"), 422, "validation_failed", []string{"/amount"}},
		{"negative amount", with("amount", "-1"), 422, "validation_failed", []string{"/amount"}},
		{"amount as number", with("amount", 1.5), 422, "validation_failed", []string{"/amount"}},
		{"unknown currency", with("currency", "XYZ"), 422, "validation_failed", []string{"/currency"}},
		{"unknown type", with("type", "gift"), 422, "validation_failed", []string{"/type"}},
		{"bad time", with("occurred_at", "yesterday"), 422, "validation_failed", []string{"/occurred_at"}},
		{"far future", with("occurred_at", "2999-01-01T00:00:00Z"), 422, "validation_failed", []string{"/occurred_at"}},
		{"no customer", with("customer_id", nil), 422, "validation_failed", []string{"/customer_id"}},
		{"unknown customer", with("customer_id", "01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e"), 422, "validation_failed", []string{"/customer_id"}},
		{"unknown customer reference", map[string]any{"customer_ref": map[string]any{"source": "shop", "external_id": "none"}, "type": "purchase", "occurred_at": "2026-01-01T00:00:00Z", "amount": "1", "currency": "EUR"}, 422, "validation_failed", []string{"/customer_ref"}},
		{"source without id", with("external_id", nil), 422, "validation_failed", []string{"/external_id"}},
		{"unknown dealer", with("dealer_id", cid), 422, "validation_failed", []string{"/dealer_id"}},
		{"zero quantity", with("quantity", 0), 422, "validation_failed", []string{"/quantity"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := problem(t, e.do(request{Method: "POST", Path: "/v1/transactions", Body: tc.body}), tc.status, tc.code)
			if diff := cmp.Diff(tc.wantPointers, pointers(p)); diff != "" {
				t.Errorf("pointers (-want +got):\n%s\nbody: %v", diff, p)
			}
		})
	}
	if n := countRows(e, "transactions"); n != 0 {
		t.Errorf("transactions after failed requests = %d, want 0", n)
	}
}

func TestTransactionBatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cid := createCustomer(e, map[string]any{"kind": "consumer"})["id"].(string)
	e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: purchase(cid, "old-1", "5.00")}, http.StatusCreated)
	items := []any{
		purchase(cid, "new-1", "1.00"),
		purchase(cid, "old-1", "5.00"),
		purchase(cid, "old-1", "5.00"),
		purchase(cid, "new-2", "1.234567"),
		purchase(cid, "new-1", "1.00"),
		map[string]any{"customer_ref": map[string]any{"source": "pos", "external_id": "walk-in-7"}, "type": "purchase", "occurred_at": "2026-01-01T00:00:00Z", "amount": "3", "currency": "USD"},
		purchase("01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e", "new-3", "1.00"),
	}
	// all_or_none: everything fails and nothing is written.
	before := countRows(e, "transactions")
	p := problem(t, e.do(request{Method: "POST", Path: "/v1/transactions/batch", Body: map[string]any{"items": items, "all_or_none": true, "create_customers": true}}), 422, "validation_failed")
	if diff := cmp.Diff([]string{"/items/3/amount"}, pointers(p)); diff != "" {
		t.Errorf("all_or_none contract pointers (-want +got):\n%s", diff)
	}
	items[3] = purchase(cid, "new-2", "2.00")
	p = problem(t, e.do(request{Method: "POST", Path: "/v1/transactions/batch", Body: map[string]any{"items": items, "all_or_none": true, "create_customers": true}}), 422, "validation_failed")
	if diff := cmp.Diff([]string{"/items/2/external_id", "/items/4/external_id", "/items/6/customer_id"}, pointers(p)); diff != "" {
		t.Errorf("all_or_none pointers (-want +got):\n%s", diff)
	}
	if after := countRows(e, "transactions"); after != before || countRows(e, "customers") != 1 {
		t.Fatalf("all_or_none wrote: transactions %d → %d, customers %d", before, after, countRows(e, "customers"))
	}

	// Without all_or_none each item gets its own result.
	res := e.mustDo(request{Method: "POST", Path: "/v1/transactions/batch", Body: map[string]any{"items": items, "create_customers": true}}, http.StatusOK).json(t)
	var statuses, errPointers []string
	for _, r := range res["results"].([]any) {
		m := r.(map[string]any)
		statuses = append(statuses, m["status"].(string))
		if m["error"] != nil {
			for _, fe := range m["error"].(map[string]any)["errors"].([]any) {
				errPointers = append(errPointers, fe.(map[string]any)["pointer"].(string))
			}
		}
	}
	if diff := cmp.Diff([]string{"created", "existing", "error", "created", "error", "created", "error"}, statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/items/2/external_id", "/items/4/external_id", "/items/6/customer_id"}, errPointers); diff != "" {
		t.Errorf("error pointers (-want +got):\n%s", diff)
	}
	if res["created"] != float64(3) || res["existing"] != float64(1) || res["failed"] != float64(3) {
		t.Errorf("counts = %v/%v/%v", res["created"], res["existing"], res["failed"])
	}
	if n := countRows(e, "transactions"); n != before+3 {
		t.Errorf("transactions = %d, want %d", n, before+3)
	}
	walkIn := e.mustDo(request{Method: "GET", Path: "/v1/customers?external_source=pos&external_id=walk-in-7"}, http.StatusOK).json(t)["data"].([]any)
	if len(walkIn) != 1 || walkIn[0].(map[string]any)["kind"] != "consumer" {
		t.Errorf("created customer for reference = %v", walkIn)
	}

	// Too many items is refused by the contract.
	big := make([]any, 10001)
	for i := range big {
		big[i] = purchase(cid, fmt.Sprint("big-", i), "1")
	}
	problem(t, e.do(request{Method: "POST", Path: "/v1/transactions/batch", Body: map[string]any{"items": big}}), 422, "validation_failed")
	problem(t, e.do(request{Method: "POST", Path: "/v1/transactions/batch", Body: map[string]any{"items": []any{}}}), 422, "validation_failed")
}

func TestTransactionLists(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := createCustomer(e, map[string]any{"kind": "consumer"})["id"].(string)
	b := createCustomer(e, map[string]any{"kind": "consumer"})["id"].(string)
	var items []any
	for i := range 30 {
		cust := a
		if i%3 == 0 {
			cust = b
		}
		it := purchase(cust, fmt.Sprint("o-", i), "1.00")
		it["occurred_at"] = fmt.Sprintf("2026-01-%02dT10:00:00Z", i%28+1)
		if i%5 == 0 {
			it["type"] = "cost"
			it["category"] = "support"
		}
		items = append(items, it)
	}
	e.mustDo(request{Method: "POST", Path: "/v1/transactions/batch", Body: map[string]any{"items": items}}, http.StatusOK)
	collect := func(path string) []map[string]any {
		var out []map[string]any
		cursor := ""
		for {
			p := path
			if cursor != "" {
				p += "&cursor=" + cursor
			}
			page := e.mustDo(request{Method: "GET", Path: p}, http.StatusOK).json(t)
			for _, x := range page["data"].([]any) {
				out = append(out, x.(map[string]any))
			}
			if page["has_more"] != true {
				return out
			}
			cursor = page["next_cursor"].(string)
		}
	}
	all := collect("/v1/transactions?limit=4")
	if len(all) != 30 {
		t.Fatalf("paged %d transactions, want 30", len(all))
	}
	for i := 1; i < len(all); i++ {
		if mustTime(t, all[i-1]["occurred_at"].(string)).Before(mustTime(t, all[i]["occurred_at"].(string))) {
			t.Errorf("default sort is not newest first at %d", i)
		}
	}
	if got := len(collect("/v1/customers/" + b + "/transactions?limit=3")); got != 10 {
		t.Errorf("b's transactions = %d, want 10", got)
	}
	if got := len(collect("/v1/transactions?type=cost&limit=2")); got != 6 {
		t.Errorf("costs = %d, want 6", got)
	}
	if got := len(collect("/v1/transactions?customer_id=" + a + "&occurred_from=2026-01-10T00:00:00Z&occurred_to=2026-01-20T00:00:00Z&sort=occurred_at")); got != 6 {
		t.Errorf("a's transactions from the 10th to the 20th = %d, want 6", got)
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/customers/01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e/transactions"}), http.StatusNotFound, "not_found")
	problem(t, e.do(request{Method: "GET", Path: "/v1/transactions?occurred_from=soon"}), http.StatusBadRequest, "invalid_request")
}
