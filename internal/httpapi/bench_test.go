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
