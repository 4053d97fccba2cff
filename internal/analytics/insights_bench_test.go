package analytics_test

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/postgres"
	"github.com/centric-crm/centric/internal/postgres/pgtest"
)

// BenchmarkInsights measures every insight over a synthetic book of customers with three
// purchases each over about three years (INSIGHTS_BENCH_CUSTOMERS, default 100,000; the
// queries were checked at 1,000,000), seeded set-based in SQL.
func BenchmarkInsights(b *testing.B) {
	customers := 100_000
	if s := os.Getenv("INSIGHTS_BENCH_CUSTOMERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("INSIGHTS_BENCH_CUSTOMERS: %v", err)
		}
		customers = n
	}
	ctx := b.Context()
	db, err := postgres.Open(ctx, pgtest.DSN(b), postgres.Options{MaxConns: 4})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	seed := []string{
		`INSERT INTO customers (id, kind, acquired_at, acquisition_channel, acquisition_cost, acquisition_currency, created_at, updated_at)
		 SELECT gen_random_uuid(), 'consumer', now() - random() * interval '1100 days', (ARRAY['web', 'store', 'partner'])[1 + i % 3],
		        round((random() * 50)::numeric, 2), 'EUR', now(), now()
		 FROM generate_series(1, $1) AS i`,
		`INSERT INTO transactions (customer_id, id, type, occurred_at, amount, currency, created_at)
		 SELECT c.id, gen_random_uuid(), 'purchase', now() - random() * interval '1095 days', round((random() * 200)::numeric, 2), 'EUR', now()
		 FROM customers c CROSS JOIN generate_series(1, 3)`,
		`ANALYZE`,
	}
	for i, sql := range seed {
		args := []any{}
		if i == 0 {
			args = append(args, customers)
		}
		if _, err := db.SQL().ExecContext(ctx, sql, args...); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	insights := analytics.NewInsights(postgres.NewInsightStore(db), time.Now)
	scope := crm.Scope{}
	for _, bc := range []struct {
		name string
		run  func() error
	}{
		{"retention", func() error { _, err := insights.Retention(ctx, scope, analytics.RetentionQuery{}); return err }},
		{"projection", func() error {
			_, err := insights.ProjectRetention(ctx, scope, analytics.ProjectionRequest{Cohort: &analytics.CohortSelector{Unit: analytics.CohortMonth, Start: time.Now().AddDate(-2, 0, 0)}})
			return err
		}},
		{"concentration", func() error { _, err := insights.Concentration(ctx, scope, analytics.ConcentrationQuery{}); return err }},
		{"acquisition", func() error { _, err := insights.Acquisition(ctx, scope, analytics.AcquisitionQuery{}); return err }},
		{"what-if", func() error { _, err := insights.WhatIf(ctx, scope, analytics.WhatIfQuery{}); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if err := bc.run(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
