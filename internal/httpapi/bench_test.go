package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkTransactionBatch posts batches of 10,000 new transactions for 1,000 customers named
// by reference, end to end over HTTP, and reports transactions per second.
func BenchmarkTransactionBatch(b *testing.B) {
	e := newEnv(b)
	const size = 10000
	bodies := make([][]byte, b.N)
	for n := range bodies {
		items := make([]map[string]any, size)
		for i := range items {
			items[i] = map[string]any{
				"customer_ref": map[string]any{"source": "bench", "external_id": fmt.Sprint("c-", i%1000)},
				"type":         "purchase", "occurred_at": "2026-01-02T03:04:05Z", "amount": "19.99", "currency": "EUR",
				"source": "bench", "external_id": fmt.Sprintf("t-%d-%d", n, i),
			}
		}
		raw, err := json.Marshal(map[string]any{"items": items, "create_customers": true})
		if err != nil {
			b.Fatal(err)
		}
		bodies[n] = raw
	}
	b.ResetTimer()
	for n := range b.N {
		res := e.mustDo(request{Method: "POST", Path: "/v1/transactions/batch", Body: bodies[n]}, http.StatusOK)
		if got := res.json(b)["created"]; got != float64(size) {
			b.Fatalf("created %v, want %d", got, size)
		}
	}
	b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkCustomerBatch posts batches of 1,000 customers matched on external references, end to
// end over HTTP: new customers, then batches already sent (all unchanged), and reports customers
// per second.
func BenchmarkCustomerBatch(b *testing.B) {
	e := newEnv(b)
	const size = 1000
	distributor := e.mustDo(request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "business", "role": "distributor"}}, http.StatusCreated).json(b)["id"]
	var sent [][]byte
	newBody := func() []byte {
		items := make([]map[string]any, size)
		for i := range items {
			id := fmt.Sprintf("%d-%d", len(sent), i)
			items[i] = map[string]any{
				"external_ref": map[string]any{"source": "bench", "external_id": "c-" + id},
				"kind":         "consumer", "name": "Customer " + id, "email": "c" + id + "@example.com",
				"country": "GB", "tags": []string{"synced"}, "attributes": map[string]any{"tier": i % 4},
				"acquisition_cost": map[string]any{"amount": "12.50", "currency": "EUR"}, "parent_id": distributor,
			}
		}
		raw, err := json.Marshal(map[string]any{"items": items})
		if err != nil {
			b.Fatal(err)
		}
		sent = append(sent, raw)
		return raw
	}
	post := func(b *testing.B, body []byte, status string) {
		res := e.mustDo(request{Method: "POST", Path: "/v1/customers/batch", Body: body}, http.StatusOK)
		if got := res.json(b)[status]; got != float64(size) {
			b.Fatalf("%s %v, want %d", status, got, size)
		}
	}
	b.Run("created", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			body := newBody()
			b.StartTimer()
			post(b, body, "created")
		}
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "customers/s")
	})
	b.Run("unchanged", func(b *testing.B) {
		for n := range b.N {
			post(b, sent[n%len(sent)], "unchanged")
		}
		b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "customers/s")
	})
}
