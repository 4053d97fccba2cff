package postgres_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/postgres"
	"github.com/centric-crm/centric/internal/postgres/pgtest"
)

// benchBaseSQL fills an empty database with $1 live customers (one in ten a business, five
// countries, one in seven tagged vip, a numeric attribute) and a score row for each, drawn
// with a fixed seed: Pareto-like net value and CLV, geometric purchase counts, uniform churn
// risk and RFM scores.
var benchBaseSQL = []string{
	`SELECT setseed(0.42)`,
	`INSERT INTO customers (id, kind, country, tags, attributes, created_at, updated_at)
	SELECT gen_random_uuid(), CASE WHEN i % 10 = 0 THEN 'business' ELSE 'consumer' END,
		(ARRAY['DE', 'FR', 'US', 'GB', 'IT'])[1 + i % 5], CASE WHEN i % 7 = 0 THEN ARRAY['vip'] ELSE '{}'::text[] END,
		jsonb_build_object('score', i % 100), now(), now()
	FROM generate_series(1, $1::int) i`,
	insertScoresSQL + `
	SELECT id, '01900000-0000-7000-8000-000000000000', 'EUR', now(), f, f * 20, 400, 25, f + 1,
		now() - interval '400 days', now() - interval '10 days', v + 5, 0, 5, v, 1 - r, r,
		CASE WHEN r >= 0.7 THEN 'high' WHEN r >= 0.3 THEN 'medium' ELSE 'low' END, 0.1, 0.3, 1.2, 25, round(v * (1 - r)::numeric * 0.8, 2),
		1 + floor(random() * 4)::int, 1 + floor(random() * 4)::int, 1 + floor(random() * 4)::int, 'Other', now()
	FROM (
		SELECT id, round((20 / power(1 - random(), 0.9))::numeric, 2) AS v, floor(-ln(1 - random()) * 3)::int AS f, random() AS r
		FROM customers
	) x`,
	`VACUUM ANALYZE customers`,
	`VACUUM ANALYZE customer_scores`,
}

// fiveConditions is the custom rule the benchmark evaluates.
var fiveConditions = map[string]any{"all": []any{
	map[string]any{"field": "country", "op": "in", "value": []any{"DE", "FR"}},
	map[string]any{"field": "churn_risk", "op": "gte", "value": 0.3},
	map[string]any{"field": "clv", "op": "gt", "value": "20"},
	map[string]any{"field": "tags", "op": "not_in", "value": []any{"vip"}},
	map[string]any{"field": "attributes.score", "op": "lt", "value": 80.0},
}}

// BenchmarkSegments measures segment membership on a base of CENTRIC_BENCH_CUSTOMERS scored
// customers (default 1,000,000) generated in SQL:
//
//   - the first refresh of every built-in family, placing every customer and recording 6
//     entered changes each, is timed once and logged;
//   - BuiltinRefresh: refreshing every built-in family (POST /v1/segments/{id}/refresh of a
//     built-in segment: thresholds, then the customers between old and new thresholds moved
//     and their changes logged) after 5% of the customers were rescored live, each placed
//     with its new scores as a live rescore does (untimed);
//   - BuiltinRefreshUnchanged: the same when no score changed, which is the cost of
//     recomputing the thresholds alone;
//   - BuiltinPlaceEveryone: placing every customer again, as after a model run replaced
//     every score, when 5% of the scores changed: thresholds, the comparison of every
//     customer's new tiers with its stored ones, and the moves;
//   - CustomRulePreview: counting a 5-condition rule over every customer and reading the first
//     page, as POST /v1/segments/preview does;
//   - CustomRuleRefresh: rematerialising a saved segment with that rule after 5% of the scores
//     changed;
//   - RescoreOneCustomer: what a live rescore does for segments: storing one customer's
//     scores with the value buckets and its placement in every built-in family (in one
//     transaction), then re-evaluating it against the custom segment.
func BenchmarkSegments(b *testing.B) {
	ctx := context.Background()
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("CENTRIC_BENCH_CUSTOMERS")); err == nil && v > 0 {
		n = v
	}
	db, err := postgres.Open(ctx, pgtest.DSN(b), postgres.Options{MaxConns: 4})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	for _, stmt := range benchBaseSQL {
		var args []any
		if stmt == benchBaseSQL[1] {
			args = append(args, n)
		}
		if _, err := db.SQL().ExecContext(ctx, stmt, args...); err != nil {
			b.Fatalf("generate the base: %v", err)
		}
	}
	b.Logf("generated %d customers with scores in %s", n, time.Since(start).Round(time.Millisecond))
	store := postgres.NewSegmentStore(db)
	if err := store.EnsureBuiltinSegments(ctx, time.Now().UTC()); err != nil {
		b.Fatal(err)
	}
	page, err := store.ListSegments(ctx, crm.Scope{}, crm.SegmentFilter{Family: crm.FamilyValueTier})
	if err != nil {
		b.Fatal(err)
	}
	builtin := page.Segments[0].ID
	// changed5Percent is how the scores of 5% of the customers change in a round: CLV × 1.5,
	// net value + 7, churn risk mirrored.
	const changed5Percent = `clv = round(clv * 1.5, 2), net_value = net_value + 7, churn_risk = 1 - churn_risk,
		churn_band = CASE WHEN 1 - churn_risk >= 0.7 THEN 'high' WHEN 1 - churn_risk >= 0.3 THEN 'medium' ELSE 'low' END`
	const in5Percent = `abs(hashtextextended(customer_id::text, $1)) % 20 = 0`
	// changeScores changes the scores of 5% of the customers, as a model run would, without
	// placing anyone.
	changeScores := func(b *testing.B, round int) {
		b.Helper()
		if _, err := db.SQL().ExecContext(ctx, `UPDATE customer_scores SET `+changed5Percent+` WHERE `+in5Percent, round); err != nil {
			b.Fatal(err)
		}
	}
	// rescore changes the scores of 5% of the customers as live rescores do: their value
	// buckets and placements change with them.
	rescore := func(b *testing.B, round int) {
		b.Helper()
		rows, err := db.SQL().QueryContext(ctx, `SELECT customer_id FROM customer_scores WHERE `+in5Percent, round)
		if err != nil {
			b.Fatal(err)
		}
		var ids []uuid.UUID
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		if err := store.RescoreForTest(ctx, changed5Percent, ids, time.Now().UTC()); err != nil {
			b.Fatal(err)
		}
	}
	round := 0
	// membershipChanges counts the membership changes of a cause logged so far.
	membershipChanges := func(b *testing.B, cause string) int64 {
		b.Helper()
		var n int64
		err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM change_log WHERE entity_type = 'segment_membership' AND state->>'cause' = $1`, cause).Scan(&n)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	// reportMoves reports the customers moved per operation, from the membership changes of
	// the cause logged since from.
	reportMoves := func(b *testing.B, cause string, from int64) {
		b.Helper()
		b.ReportMetric(float64(membershipChanges(b, cause)-from)/float64(b.N), "moved/op")
	}

	start = time.Now()
	if _, err := store.RefreshSegment(ctx, crm.Scope{}, builtin, time.Now().UTC()); err != nil {
		b.Fatal(err)
	}
	b.Logf("first refresh of every built-in family (every customer enters 6 segments): %s", time.Since(start).Round(time.Millisecond))
	b.Run("BuiltinRefresh", func(b *testing.B) {
		from := membershipChanges(b, crm.CauseRefresh)
		for b.Loop() {
			b.StopTimer()
			round++
			rescore(b, round)
			b.StartTimer()
			if _, err := store.RefreshSegment(ctx, crm.Scope{}, builtin, time.Now().UTC()); err != nil {
				b.Fatal(err)
			}
		}
		reportMoves(b, crm.CauseRefresh, from)
	})
	b.Run("BuiltinRefreshUnchanged", func(b *testing.B) {
		for b.Loop() {
			if _, err := store.RefreshSegment(ctx, crm.Scope{}, builtin, time.Now().UTC()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("BuiltinPlaceEveryone", func(b *testing.B) {
		from := membershipChanges(b, crm.CauseModelRun)
		for b.Loop() {
			b.StopTimer()
			round++
			changeScores(b, round)
			b.StartTimer()
			if err := store.RefreshAllSegments(ctx, crm.CauseModelRun, time.Now().UTC()); err != nil {
				b.Fatal(err)
			}
		}
		reportMoves(b, crm.CauseModelRun, from)
	})
	rule, err := crm.ParseRule(fiveConditions, "/definition")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("CustomRulePreview", func(b *testing.B) {
		var count int64
		for b.Loop() {
			p, err := store.PreviewRule(ctx, crm.Scope{}, rule, 50)
			if err != nil {
				b.Fatal(err)
			}
			count = p.Count
		}
		b.ReportMetric(float64(count), "members")
	})
	now := time.Now().UTC().Truncate(time.Microsecond)
	seg := &crm.Segment{ID: uuid.Must(uuid.NewV7()), Family: crm.FamilyCustom, Name: "bench", Definition: fiveConditions, Rule: rule,
		Version: 1, CreatedAt: now, UpdatedAt: now, RefreshedAt: &now}
	if err := store.CreateSegment(ctx, crm.Scope{}, seg); err != nil {
		b.Fatal(err)
	}
	b.Run("CustomRuleRefresh", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			round++
			changeScores(b, round)
			b.StartTimer()
			if _, err := store.RefreshSegment(ctx, crm.Scope{}, seg.ID, time.Now().UTC()); err != nil {
				b.Fatal(err)
			}
		}
	})
	var one uuid.UUID
	if err := db.SQL().QueryRowContext(ctx, `SELECT customer_id FROM customer_scores LIMIT 1`).Scan(&one); err != nil {
		b.Fatal(err)
	}
	b.Run("RescoreOneCustomer", func(b *testing.B) {
		for b.Loop() {
			if err := store.RescoreForTest(ctx, "computed_at = now()", []uuid.UUID{one}, time.Now().UTC()); err != nil {
				b.Fatal(err)
			}
			if err := store.UpdateMemberships(ctx, []uuid.UUID{one}, time.Now().UTC()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
