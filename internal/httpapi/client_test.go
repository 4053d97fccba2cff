package httpapi_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/oapi-codegen/nullable"

	"github.com/centric-crm/centric/pkg/client"
)

// TestGeneratedClient drives the API through the generated Go SDK, as integrators do.
func TestGeneratedClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	c, err := client.NewClientWithResponses(e.url, client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+e.admin)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	name := "SDK Buyer"
	retryKey := "sdk-create-1"
	created, err := c.CreateCustomerWithResponse(ctx, &client.CreateCustomerParams{IdempotencyKey: &retryKey}, client.CustomerCreate{Kind: client.Consumer, Name: &name})
	if err != nil || created.JSON201 == nil {
		t.Fatalf("create: %v, status %d, body %s", err, created.StatusCode(), created.Body)
	}
	retried, err := c.CreateCustomerWithResponse(ctx, &client.CreateCustomerParams{IdempotencyKey: &retryKey}, client.CustomerCreate{Kind: client.Consumer, Name: &name})
	if err != nil || retried.JSON201 == nil || retried.JSON201.Id != created.JSON201.Id || retried.HTTPResponse.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry: %v, status %d, body %s; want the first response replayed", err, retried.StatusCode(), retried.Body)
	}
	id := created.JSON201.Id
	occurred := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
	tx, err := c.CreateTransactionWithResponse(ctx, nil, client.TransactionCreate{CustomerId: &id, Type: client.Purchase, OccurredAt: occurred, Amount: "12.30", Currency: "USD"})
	if err != nil || tx.JSON201 == nil {
		t.Fatalf("record: %v, status %d, body %s", err, tx.StatusCode(), tx.Body)
	}
	etag := `"1"`
	patched, err := c.UpdateCustomerWithResponse(ctx, id, &client.UpdateCustomerParams{IfMatch: &etag},
		client.CustomerPatch{Email: nullable.NewNullableWithValue("buyer@example.com"), Name: nullable.NewNullNullable[string]()})
	if err != nil || patched.JSON200 == nil {
		t.Fatalf("patch: %v, status %d, body %s", err, patched.StatusCode(), patched.Body)
	}
	if patched.JSON200.Name.IsSpecified() && !patched.JSON200.Name.IsNull() {
		t.Errorf("name after null patch = %v", patched.JSON200.Name)
	}
	list, err := c.ListCustomerTransactionsWithResponse(ctx, id, nil)
	if err != nil || list.JSON200 == nil || len(list.JSON200.Data) != 1 || list.JSON200.Data[0].Amount != "12.30" {
		t.Fatalf("list: %v, body %s", err, list.Body)
	}
	missing, err := c.GetCustomerWithResponse(ctx, tx.JSON201.Id)
	if err != nil || missing.ApplicationproblemJSON404 == nil || missing.ApplicationproblemJSON404.Code != client.NotFound {
		t.Fatalf("get unknown: %v, status %d, body %s", err, missing.StatusCode(), missing.Body)
	}
}

// TestConcurrentResend sends the same transaction from many clients at once: exactly one
// request creates it and every other gets the same transaction back.
func TestConcurrentResend(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cid := createCustomer(e, map[string]any{"kind": "consumer"})["id"].(string)
	const clients = 8
	var wg sync.WaitGroup
	statuses := make([]int, clients)
	ids := make([]string, clients)
	for i := range clients {
		wg.Go(func() {
			res := e.do(request{Method: "POST", Path: "/v1/transactions", Body: purchase(cid, "race-1", "9.99")})
			statuses[i] = res.Status
			if res.Status < 300 {
				ids[i] = res.json(t)["id"].(string)
			}
		})
	}
	wg.Wait()
	created := 0
	for i, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Errorf("client %d got %d", i, s)
		}
		if ids[i] != ids[0] {
			t.Errorf("client %d got transaction %s, client 0 got %s", i, ids[i], ids[0])
		}
	}
	if created != 1 || countRows(e, "transactions") != 1 {
		t.Errorf("created %d times, %d rows; want exactly one", created, countRows(e, "transactions"))
	}
}
