package postgres

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/crm"
)

// InsightStore reads the set-based aggregates behind the analytics insights. Every query is one
// statement over live customers within the scope, with all time arithmetic in UTC.
type InsightStore struct {
	db *DB
}

// NewInsightStore returns an insight store on db.
func NewInsightStore(db *DB) *InsightStore {
	return &InsightStore{db: db}
}

var _ analytics.InsightStore = (*InsightStore)(nil)

// sqlArgs collects the arguments of a statement and names their placeholders.
type sqlArgs []any

// add appends v and returns its placeholder.
func (a *sqlArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// liveCustomer is the condition that the customer aliased c is live and within scope.
func liveCustomer(c string, scope crm.Scope, args *sqlArgs) string {
	cond := c + ".deleted_at IS NULL"
	if scope.Root != nil {
		root := args.add(*scope.Root)
		cond += fmt.Sprintf(" AND (%[1]s.ancestors @> ARRAY[%[2]s::uuid] OR %[1]s.id = %[2]s::uuid)", c, root)
	}
	return cond
}

// periodIndex numbers the UTC periods of the given length that contain the instant expr, so
// that consecutive periods have consecutive numbers. It uses date_part, whose double precision
// arithmetic is far cheaper over millions of rows than extract's numeric. Weeks start on
// Monday; 1970-01-05, the first Monday of the Unix epoch, is 345,600 seconds after it.
func periodIndex(unit analytics.CohortUnit, expr string) (string, error) {
	switch unit {
	case analytics.CohortWeek:
		return fmt.Sprintf("floor((date_part('epoch', %s) - 345600) / 604800)::int", expr), nil
	case analytics.CohortMonth:
		return fmt.Sprintf("(date_part('year', %[1]s AT TIME ZONE 'UTC') * 12 + date_part('month', %[1]s AT TIME ZONE 'UTC') - 1)::int", expr), nil
	case analytics.CohortQuarter:
		return fmt.Sprintf("(date_part('year', %[1]s AT TIME ZONE 'UTC') * 4 + date_part('quarter', %[1]s AT TIME ZONE 'UTC') - 1)::int", expr), nil
	}
	return "", fmt.Errorf("unknown cohort unit %q", unit)
}

// analyticsWorkMem is the memory each sort and hash of an insight query may use before it
// spills to disk; the queries aggregate whole tables, and the default 4 MB spills at 100,000
// customers.
const analyticsWorkMem = "64MB"

// query runs one statement in its own transaction, with analyticsWorkMem, and hands its rows
// to scan.
func (s *InsightStore) query(ctx context.Context, sql string, args sqlArgs, scan func(rows pgx.Rows) error) error {
	return s.db.withPgx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '"+analyticsWorkMem+"'"); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		if err := scan(rows); err != nil {
			return err
		}
		return rows.Err()
	})
}

// DefaultCurrency returns the currency of the latest succeeded model run, else the currency of
// most purchases within scope (ties broken alphabetically), else "".
func (s *InsightStore) DefaultCurrency(ctx context.Context, scope crm.Scope) (string, error) {
	var args sqlArgs
	sql := `SELECT coalesce(
		(SELECT currency FROM model_runs WHERE status = 'succeeded' ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1),
		(SELECT t.currency FROM transactions t JOIN customers c ON c.id = t.customer_id
		 WHERE t.type = 'purchase' AND ` + liveCustomer("c", scope, &args) + `
		 GROUP BY t.currency ORDER BY count(*) DESC, t.currency LIMIT 1),
		'')`
	var currency string
	err := s.query(ctx, sql, args, func(rows pgx.Rows) error {
		var err error
		currency, err = pgx.CollectExactlyOneRow(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return "", fmt.Errorf("read default currency: %w", err)
	}
	return currency, nil
}

// occasionsSQL selects one row per live customer within scope and period with a purchase:
// customer_id, period (see periodIndex) and first_at, the first purchase of the period.
func occasionsSQL(unit analytics.CohortUnit, scope crm.Scope, args *sqlArgs) (string, error) {
	period, err := periodIndex(unit, "t.occurred_at")
	if err != nil {
		return "", err
	}
	return `SELECT t.customer_id, ` + period + ` AS period, min(t.occurred_at) AS first_at
		FROM transactions t JOIN customers c ON c.id = t.customer_id
		WHERE t.type = 'purchase' AND ` + liveCustomer("c", scope, args) + `
		GROUP BY t.customer_id, period`, nil
}

// CohortActivity counts, per acquisition cohort and period after acquisition, the customers
// active in the period and those of them active in the next one too, in one statement: the
// purchases collapse into (customer, period) occasions, window functions find each customer's
// cohort and whether its next occasion is in the next period, and the latest period with a
// purchase bounds what every cohort has reached.
func (s *InsightStore) CohortActivity(ctx context.Context, scope crm.Scope, q analytics.RetentionQuery) ([]analytics.CohortCell, error) {
	var args sqlArgs
	occasions, err := occasionsSQL(q.Unit, scope, &args)
	if err != nil {
		return nil, err
	}
	filter := "f.period - f.cohort <= " + args.add(q.Periods)
	if q.From != nil {
		filter += " AND f.acquired_at >= " + args.add(*q.From)
	}
	if q.To != nil {
		filter += " AND f.acquired_at < " + args.add(*q.To)
	}
	sql := `WITH occasions AS (` + occasions + `),
	flagged AS (
		SELECT period,
			min(period) OVER customer AS cohort,
			min(first_at) OVER customer AS acquired_at,
			coalesce(lead(period) OVER (PARTITION BY customer_id ORDER BY period) = period + 1, false) AS retained
		FROM occasions
		WINDOW customer AS (PARTITION BY customer_id)
	)
	SELECT date_trunc(` + args.add(string(q.Unit)) + `::text, min(f.acquired_at), 'UTC'), (SELECT max(period) FROM occasions) - f.cohort,
		f.period - f.cohort, count(*), count(*) FILTER (WHERE f.retained)
	FROM flagged f
	WHERE ` + filter + `
	GROUP BY f.cohort, f.period - f.cohort
	ORDER BY f.cohort, f.period - f.cohort`
	var cells []analytics.CohortCell
	err = s.query(ctx, sql, args, func(rows pgx.Rows) error {
		var c analytics.CohortCell
		_, err := pgx.ForEachRow(rows, []any{&c.Start, &c.Reached, &c.Period, &c.Active, &c.Retained}, func() error {
			c.Start = c.Start.UTC()
			cells = append(cells, c)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read cohort activity: %w", err)
	}
	return cells, nil
}

// CohortSurvival counts the customers of one acquisition cohort by the period of their last
// purchase after acquisition.
func (s *InsightStore) CohortSurvival(ctx context.Context, scope crm.Scope, unit analytics.CohortUnit, start time.Time) (analytics.CohortLastPurchases, error) {
	var args sqlArgs
	occasions, err := occasionsSQL(unit, scope, &args)
	if err != nil {
		return analytics.CohortLastPurchases{}, err
	}
	cohort, err := periodIndex(unit, args.add(start)+"::timestamptz")
	if err != nil {
		return analytics.CohortLastPurchases{}, err
	}
	sql := `WITH occasions AS (` + occasions + `),
	spans AS (SELECT min(period) AS cohort, max(period) AS last FROM occasions GROUP BY customer_id)
	SELECT (SELECT max(last) FROM spans) - p.cohort, p.last - p.cohort, count(*)
	FROM spans p
	WHERE p.cohort = ` + cohort + `
	GROUP BY p.cohort, p.last
	ORDER BY p.last`
	var out analytics.CohortLastPurchases
	err = s.query(ctx, sql, args, func(rows pgx.Rows) error {
		var k, n int
		_, err := pgx.ForEachRow(rows, []any{&out.Reached, &k, &n}, func() error {
			if out.LastPeriod == nil {
				out.LastPeriod = make([]int, out.Reached+1)
			}
			out.LastPeriod[k] = n
			return nil
		})
		return err
	})
	if err != nil {
		return analytics.CohortLastPurchases{}, fmt.Errorf("read cohort survival: %w", err)
	}
	return out, nil
}

// RankedValues streams the customers' values in descending order; only the first row carries
// the exact total.
func (s *InsightStore) RankedValues(ctx context.Context, scope crm.Scope, basis analytics.ValueBasis, currency string) (analytics.RankedValues, error) {
	var args sqlArgs
	var values string
	switch basis {
	case analytics.BasisNetValue:
		values = `SELECT sum(CASE WHEN t.type = 'purchase' THEN t.amount ELSE -t.amount END) AS v
			FROM transactions t JOIN customers c ON c.id = t.customer_id
			WHERE t.type IN ('purchase', 'refund') AND t.currency = ` + args.add(currency) + ` AND ` + liveCustomer("c", scope, &args) + `
			GROUP BY t.customer_id`
	case analytics.BasisCLV:
		values = `SELECT s.clv AS v
			FROM customer_scores s JOIN customers c ON c.id = s.customer_id
			WHERE s.currency = ` + args.add(currency) + ` AND ` + liveCustomer("c", scope, &args)
	default:
		return analytics.RankedValues{}, fmt.Errorf("unknown value basis %q", basis)
	}
	sql := `SELECT v::float8, CASE WHEN row_number() OVER (ORDER BY v DESC) = 1 THEN (sum(v) OVER ())::text END
		FROM (` + values + `) ranked
		ORDER BY ranked.v DESC`
	out := analytics.RankedValues{Total: "0"}
	err := s.query(ctx, sql, args, func(rows pgx.Rows) error {
		var v float64
		var total *string
		_, err := pgx.ForEachRow(rows, []any{&v, &total}, func() error {
			if total != nil {
				out.Total = *total
			}
			out.Values = append(out.Values, v)
			return nil
		})
		return err
	})
	if err != nil {
		return analytics.RankedValues{}, fmt.Errorf("rank customers by %s: %w", basis, err)
	}
	return out, nil
}

// AcquisitionGroups sums, per group of acquired customers, their count, their acquisition
// spend in the currency and their CLV scores in the currency.
func (s *InsightStore) AcquisitionGroups(ctx context.Context, scope crm.Scope, q analytics.AcquisitionQuery, currency string) ([]analytics.AcquisitionRow, error) {
	var args sqlArgs
	cur := args.add(currency)
	var key string
	switch q.GroupBy {
	case analytics.GroupByCohort:
		key = `date_trunc(` + args.add(string(q.Unit)) + `::text, a.acquired_at, 'UTC'), NULL::text`
	case analytics.GroupByChannel:
		key = `NULL::timestamptz, a.channel`
	default:
		return nil, fmt.Errorf("unknown acquisition grouping %q", q.GroupBy)
	}
	// Within a partner's subtree only its customers' transactions are aggregated; across all
	// customers the final join drops the deleted ones.
	inScope := ""
	if scope.Root != nil {
		inScope = ` AND t.customer_id IN (SELECT c.id FROM customers c WHERE ` + liveCustomer("c", scope, &args) + `)`
	}
	sql := `WITH per_customer AS (
		SELECT t.customer_id,
			min(t.occurred_at) FILTER (WHERE t.type = 'purchase') AS first_purchase,
			sum(t.amount) FILTER (WHERE t.type = 'cost' AND t.currency = ` + cur + `) AS spend
		FROM transactions t
		WHERE (t.type = 'purchase' OR (t.type = 'cost' AND t.category = 'acquisition'))` + inScope + `
		GROUP BY t.customer_id
	),
	acquired AS (
		SELECT c.id,
			coalesce(c.acquired_at, p.first_purchase) AS acquired_at,
			coalesce(c.acquisition_channel, ` + args.add(analytics.UnknownChannel) + `) AS channel,
			CASE WHEN c.acquisition_currency = ` + cur + ` THEN c.acquisition_cost ELSE 0 END + coalesce(p.spend, 0) AS cost
		FROM customers c LEFT JOIN per_customer p ON p.customer_id = c.id
		WHERE ` + liveCustomer("c", scope, &args) + `
	)
	SELECT ` + key + `, count(*), sum(a.cost)::text, count(s.customer_id), coalesce(sum(s.clv), 0)::text
	FROM acquired a LEFT JOIN customer_scores s ON s.customer_id = a.id AND s.currency = ` + cur + `
	WHERE a.acquired_at IS NOT NULL
	GROUP BY 1, 2
	ORDER BY 1, 2`
	var out []analytics.AcquisitionRow
	err := s.query(ctx, sql, args, func(rows pgx.Rows) error {
		var cohort *time.Time
		var channel *string
		var r analytics.AcquisitionRow
		_, err := pgx.ForEachRow(rows, []any{&cohort, &channel, &r.Customers, &r.Cost, &r.Scored, &r.CLV}, func() error {
			r.Cohort, r.Channel = time.Time{}, ""
			if cohort != nil {
				r.Cohort = cohort.UTC()
			}
			if channel != nil {
				r.Channel = *channel
			}
			out = append(out, r)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read acquisition groups: %w", err)
	}
	return out, nil
}

// AnnualActivity counts the customers active in the year before last and in the last year,
// and sums the positive net values of the last year in the currency.
func (s *InsightStore) AnnualActivity(ctx context.Context, scope crm.Scope, currency string, now time.Time) (analytics.AnnualActivity, error) {
	const year = 365 * 24 * time.Hour
	var args sqlArgs
	start, yearStart, end := args.add(now.Add(-2*year)), args.add(now.Add(-year)), args.add(now)
	sql := `WITH activity AS (
		SELECT
			bool_or(t.type = 'purchase' AND t.occurred_at <= ` + yearStart + `) AS previous,
			bool_or(t.type = 'purchase' AND t.occurred_at > ` + yearStart + `) AS recent,
			sum(CASE WHEN t.type = 'purchase' THEN t.amount ELSE -t.amount END)
				FILTER (WHERE t.occurred_at > ` + yearStart + ` AND t.currency = ` + args.add(currency) + `) AS net
		FROM transactions t JOIN customers c ON c.id = t.customer_id
		WHERE t.type IN ('purchase', 'refund') AND t.occurred_at > ` + start + ` AND t.occurred_at <= ` + end + `
			AND ` + liveCustomer("c", scope, &args) + `
		GROUP BY t.customer_id
	)
	SELECT count(*) FILTER (WHERE previous), count(*) FILTER (WHERE previous AND recent),
		count(*) FILTER (WHERE net > 0), coalesce(sum(net) FILTER (WHERE net > 0), 0)::text
	FROM activity`
	var out analytics.AnnualActivity
	err := s.query(ctx, sql, args, func(rows pgx.Rows) error {
		if !rows.Next() {
			return pgx.ErrNoRows
		}
		return rows.Scan(&out.Previous, &out.Retained, &out.Customers, &out.NetValue)
	})
	if err != nil {
		return analytics.AnnualActivity{}, fmt.Errorf("read annual activity: %w", err)
	}
	return out, nil
}
