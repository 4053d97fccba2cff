package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/demo"
)

// BenchmarkConfinedReads compares the reads of a partner key confined to one distributor's
// subtree with the same reads by an unconfined admin key, over HTTP, on a scored demo base of
// 100,000 accounts (about a million transactions) in which the distributor holds a minority of
// the customers. Rate limits are off. Besides ns/op it reports the median and 99th percentile
// in ms.
func BenchmarkConfinedReads(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	opts := demo.DefaultOptions(time.Now().Add(-time.Minute))
	opts.Customers = 100_000
	g, err := demo.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.app.DB.LoadDemo(ctx, g.Customers(), g.Transactions()); err != nil {
		b.Fatal(err)
	}
	run, err := e.app.Analytics.StartRun(ctx, analytics.RunSettings{Unit: analytics.UnitWeek})
	if err != nil {
		b.Fatal(err)
	}
	for run.Status == analytics.RunQueued || run.Status == analytics.RunRunning {
		time.Sleep(100 * time.Millisecond)
		if run, err = e.app.Analytics.Run(ctx, run.ID); err != nil {
			b.Fatal(err)
		}
	}
	if run.Status != analytics.RunSucceeded {
		b.Fatalf("model run %s: %+v", run.Status, run.Error)
	}
	root := g.Customer(0).ID
	partner := e.mustDo(request{Method: "POST", Path: "/v1/api-keys", Body: map[string]any{
		"name": "partner", "permissions": []string{string(crm.PermAdmin)}, "root_customer_id": root.String(),
	}}, http.StatusCreated).json(b)["secret"].(string)
	var subtree int
	if err := e.app.DB.SQL().QueryRowContext(ctx, "SELECT count(*) FROM customers WHERE ancestors @> ARRAY[$1::uuid]", root).Scan(&subtree); err != nil {
		b.Fatal(err)
	}
	b.Logf("demo: %d accounts; the partner's distributor has %d below it", opts.Customers, subtree)

	for _, path := range []string{
		"/v1/customers?limit=50",
		"/v1/customers?limit=50&sort=-clv",
		"/v1/customers?limit=50&churn_band=high",
		"/v1/transactions?limit=50",
		"/v1/analytics/concentration",
		"/v1/analytics/retention",
	} {
		for _, who := range []struct{ name, key string }{{"admin", e.admin}, {"partner", partner}} {
			b.Run(who.name+" "+path, func(b *testing.B) {
				var took []time.Duration
				for b.Loop() {
					start := time.Now()
					e.mustDo(request{Method: "GET", Path: path, Key: who.key}, http.StatusOK)
					took = append(took, time.Since(start))
				}
				reportPercentiles(b, took)
			})
		}
	}
}
