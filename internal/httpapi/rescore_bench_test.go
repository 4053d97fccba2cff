package httpapi_test

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/demo"
)

// BenchmarkLiveRescore measures keeping one customer's scores current after a model run on a
// demo base of 20,000 accounts (about 200,000 transactions), fitted with unit day:
//
//   - ScoresAndBuiltins: analytics.Service.Rescore of one customer without the custom
//     segments' rules: the latest run, the customer's SQL summary, scoring, and in one
//     transaction the upsert of its score row, the value buckets of the tier thresholds and
//     its placement in the built-in segment families;
//   - Rescore: the same as the transaction service calls it, which also evaluates the custom
//     segments' rules for the customer (none here);
//   - PostTransaction: POST /v1/transactions of a new purchase end to end over HTTP, which
//     records it and rescores the customer before answering.
//
// Each op takes the next of 1,000 customers with repeat purchases in turn, so no customer's
// history grows much. Besides ns/op it reports the median and 99th percentile in ms.
func BenchmarkLiveRescore(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	opts := demo.DefaultOptions(time.Now().Add(-time.Minute))
	opts.Customers = 20_000
	g, err := demo.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	load, err := e.app.DB.LoadDemo(ctx, g.Customers(), g.Transactions())
	if err != nil {
		b.Fatal(err)
	}
	run, err := e.app.Analytics.StartRun(ctx, analytics.RunSettings{Unit: analytics.UnitDay})
	if err != nil {
		b.Fatal(err)
	}
	for run.Status == analytics.RunQueued || run.Status == analytics.RunRunning {
		time.Sleep(50 * time.Millisecond)
		if run, err = e.app.Analytics.Run(ctx, run.ID); err != nil {
			b.Fatal(err)
		}
	}
	if run.Status != analytics.RunSucceeded {
		b.Fatalf("model run %s: %+v", run.Status, run.Error)
	}
	b.Logf("demo: %d customers, %d transactions; model run: %d customers scored in %d ms",
		load.Customers, load.Transactions, run.Result.Customers, run.FinishedAt.Sub(*run.StartedAt).Milliseconds())

	var ids []uuid.UUID
	for i := g.Partners(); len(ids) < 1000 && i < opts.Customers; i++ {
		purchases := 0
		for _, t := range g.CustomerTransactions(i) {
			if t.Type == crm.TypePurchase {
				purchases++
			}
		}
		if purchases > 1 {
			ids = append(ids, g.Customer(i).ID)
		}
	}

	rescore := func(b *testing.B) {
		var took []time.Duration
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			if err := e.app.Analytics.Rescore(ctx, []uuid.UUID{ids[i%len(ids)]}); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(start))
		}
		reportPercentiles(b, took)
	}
	b.Run("ScoresAndBuiltins", func(b *testing.B) {
		// Without evaluating the custom segments' rules for the customer.
		e.app.Analytics.SetMembershipUpdater(nil)
		defer e.app.Analytics.SetMembershipUpdater(e.app.Segments)
		rescore(b)
	})
	b.Run("Rescore", rescore)

	first := ids[0].String()
	revenue := func() *big.Rat {
		v, _ := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + first + "/scores"}, http.StatusOK).json(b)["revenue"].(string)
		r, ok := new(big.Rat).SetString(v)
		if !ok {
			b.Fatalf("revenue %q is not a decimal", v)
		}
		return r
	}
	before, posted, sent := revenue(), int64(0), 0
	b.Run("PostTransaction", func(b *testing.B) {
		var took []time.Duration
		for b.Loop() {
			i := sent
			sent++ // across -count runs too: every external id is new
			id := ids[i%len(ids)]
			body := map[string]any{
				"customer_id": id.String(), "type": "purchase", "amount": "42.50", "currency": opts.Currency,
				"occurred_at": time.Now().UTC().Format(time.RFC3339Nano),
				"source":      "bench", "external_id": fmt.Sprint("rescore-", i),
			}
			start := time.Now()
			e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: body}, http.StatusCreated)
			took = append(took, time.Since(start))
			if id == ids[0] {
				posted++
			}
		}
		reportPercentiles(b, took)
	})
	// The purchases posted were scored before each POST answered.
	want := new(big.Rat).Add(before, new(big.Rat).Mul(big.NewRat(4250, 100), big.NewRat(posted, 1)))
	if after := revenue(); after.Cmp(want) != 0 {
		b.Errorf("customer %s has revenue %s in its scores after %d purchases of 42.50 were posted to its %s",
			first, after.FloatString(2), posted, before.FloatString(2))
	}
}

// reportPercentiles reports the median and 99th percentile of took in milliseconds.
func reportPercentiles(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	at := func(q float64) float64 {
		return float64(took[min(int(q*float64(len(took))), len(took)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.5), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
