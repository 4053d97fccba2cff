package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/pkg/rfm"
)

// modelRunRow is the model_runs table.
type modelRunRow struct {
	ID               uuid.UUID
	Status           string
	Model            string
	TimeUnit         string
	CalibrationEnd   time.Time
	Currency         string
	Penalty          float64
	ClvHorizonMonths int
	ClvDiscountRate  float64
	ClvMargin        float64
	RequestedAt      time.Time
	StartedAt        *time.Time
	FinishedAt       *time.Time
	Result           *jsonColumn[analytics.RunResult]
	Error            *jsonColumn[analytics.RunError]
}

func (modelRunRow) TableName() string { return "model_runs" }

func rowFromRun(r *analytics.Run) modelRunRow {
	row := modelRunRow{
		ID: r.ID, Status: string(r.Status), Model: string(r.Model), TimeUnit: string(r.Unit),
		CalibrationEnd: r.CalibrationEnd, Currency: r.Currency, Penalty: r.Penalty,
		ClvHorizonMonths: r.CLV.HorizonMonths, ClvDiscountRate: r.CLV.AnnualDiscountRate, ClvMargin: r.CLV.Margin,
		RequestedAt: r.RequestedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
	}
	if r.Result != nil {
		row.Result = &jsonColumn[analytics.RunResult]{*r.Result}
	}
	if r.Error != nil {
		row.Error = &jsonColumn[analytics.RunError]{*r.Error}
	}
	return row
}

func (row *modelRunRow) run() analytics.Run {
	r := analytics.Run{
		ID: row.ID, Status: analytics.RunStatus(row.Status), RequestedAt: row.RequestedAt.UTC(),
		StartedAt: utcPtr(row.StartedAt), FinishedAt: utcPtr(row.FinishedAt),
		RunSettings: analytics.RunSettings{
			Model: analytics.Model(row.Model), Unit: analytics.TimeUnit(row.TimeUnit),
			CalibrationEnd: row.CalibrationEnd.UTC(), Currency: row.Currency, Penalty: row.Penalty,
			CLV: analytics.CLVSettings{HorizonMonths: row.ClvHorizonMonths, AnnualDiscountRate: row.ClvDiscountRate, Margin: row.ClvMargin},
		},
	}
	if row.Result != nil {
		result := row.Result.V
		r.Result = &result
	}
	if row.Error != nil {
		e := row.Error.V
		r.Error = &e
	}
	return r
}

// AnalyticsStore implements analytics.Store.
type AnalyticsStore struct {
	db             *DB
	refreshWorkers int
}

// NewAnalyticsStore returns an AnalyticsStore on db.
// A full refresh summarises the customers on refreshConnections connections at once (at least 1).
func NewAnalyticsStore(db *DB, refreshConnections int) *AnalyticsStore {
	return &AnalyticsStore{db: db, refreshWorkers: max(refreshConnections, 1)}
}

var _ analytics.Store = (*AnalyticsStore)(nil)

// CreateRun stores a queued run; the unique index on active runs makes a second one a conflict.
func (s *AnalyticsStore) CreateRun(ctx context.Context, r *analytics.Run) error {
	row := rowFromRun(r)
	err := s.db.session(ctx).Create(&row).Error
	if code, constraint := constraintOf(err); code == "23505" && constraint == "model_runs_one_active_idx" {
		var active modelRunRow
		if s.db.session(ctx).Where("status IN ('queued', 'running')").Take(&active).Error == nil {
			return crm.Errorf(crm.CodeConflict, "Model run %s is %s; wait for it to finish before starting another.", active.ID, active.Status)
		}
		return crm.Errorf(crm.CodeConflict, "Another model run is queued or running; wait for it to finish.")
	}
	if err != nil {
		return fmt.Errorf("insert model run: %w", err)
	}
	return nil
}

// ClaimRun marks the oldest queued run running and returns it.
func (s *AnalyticsStore) ClaimRun(ctx context.Context, at time.Time) (*analytics.Run, error) {
	var rows []modelRunRow
	err := s.db.session(ctx).Raw(`UPDATE model_runs SET status = 'running', started_at = ?
		WHERE id = (SELECT id FROM model_runs WHERE status = 'queued' ORDER BY requested_at LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING *`, at).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("claim model run: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	r := rows[0].run()
	return &r, nil
}

// FinishRun stores the outcome of a run.
func (s *AnalyticsStore) FinishRun(ctx context.Context, r *analytics.Run) error {
	row := rowFromRun(r)
	err := s.db.session(ctx).Model(&row).Select("status", "finished_at", "result", "error").Updates(&row).Error
	if err != nil {
		return fmt.Errorf("finish model run %s: %w", r.ID, err)
	}
	return nil
}

// FailInterruptedRuns fails the runs left running by a stopped process: those whose run lock
// (runSessionLockSQL) nobody holds. A run another process is executing keeps its lock and is left alone.
func (s *AnalyticsStore) FailInterruptedRuns(ctx context.Context, at time.Time) error {
	e := jsonColumn[analytics.RunError]{analytics.RunError{Code: "interrupted", Message: "the service stopped while the run was in progress; start it again"}}
	err := s.db.session(ctx).Model(&modelRunRow{}).
		Where("status = 'running' AND pg_try_advisory_xact_lock(hashtextextended(id::text, 0))").
		Updates(map[string]any{"status": "failed", "finished_at": at, "error": e}).Error
	if err != nil {
		return fmt.Errorf("fail interrupted model runs: %w", err)
	}
	return nil
}

// Run returns one run.
func (s *AnalyticsStore) Run(ctx context.Context, id uuid.UUID) (*analytics.Run, error) {
	var row modelRunRow
	err := s.db.session(ctx).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, crm.Errorf(crm.CodeNotFound, "No model run has id %s.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read model run %s: %w", id, err)
	}
	r := row.run()
	return &r, nil
}

// LatestRun returns the latest successful run.
func (s *AnalyticsStore) LatestRun(ctx context.Context) (*analytics.Run, error) {
	var row modelRunRow
	err := s.db.session(ctx).Where("status = 'succeeded'").Order("finished_at DESC").Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, crm.Errorf(crm.CodeNotFound, "No model run has succeeded yet; start one with POST /v1/analytics/model-runs.")
	}
	if err != nil {
		return nil, fmt.Errorf("read latest model run: %w", err)
	}
	r := row.run()
	return &r, nil
}

// ListRuns returns one page of runs, newest first.
func (s *AnalyticsStore) ListRuns(ctx context.Context, page crm.PageRequest) ([]analytics.Run, string, error) {
	const list = "model-runs"
	after, err := decodeCursor(page.Cursor, list)
	if err != nil {
		return nil, "", err
	}
	q := s.db.session(ctx)
	if after != nil {
		if after.Time == nil {
			return nil, "", crm.Invalid(crm.FieldError{Pointer: "query:cursor", Message: "does not match the list"})
		}
		q = q.Where("(requested_at, id) < (?, ?)", *after.Time, after.ID)
	}
	limit := page.LimitOrDefault()
	var rows []modelRunRow
	if err := q.Order("requested_at DESC, id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("list model runs: %w", err)
	}
	runs := make([]analytics.Run, 0, min(len(rows), limit))
	for i := range rows[:min(len(rows), limit)] {
		runs = append(runs, rows[i].run())
	}
	next := ""
	if len(rows) > limit {
		t := rows[limit-1].RequestedAt.UTC()
		next = encodeCursor(cursor{List: list, Time: &t, ID: rows[limit-1].ID})
	}
	return runs, next, nil
}

// MostUsedCurrency returns the currency of most purchases.
func (s *AnalyticsStore) MostUsedCurrency(ctx context.Context) (string, error) {
	var currency []string
	err := s.db.session(ctx).Raw(`SELECT currency FROM transactions WHERE type = 'purchase'
		GROUP BY currency ORDER BY count(*) DESC, currency LIMIT 1`).Scan(&currency).Error
	if err != nil {
		return "", fmt.Errorf("find most used currency: %w", err)
	}
	if len(currency) == 0 {
		return "", nil
	}
	return currency[0], nil
}

// summarySQL selects every live customer's purchase summary at an observation end, as one
// sorted pipeline (nothing materialised twice, nothing
// hashed): one aggregate per customer and day, the first purchase day as a window over the same
// rows, one aggregate per customer. Purchases on one calendar day (UTC) are one occasion worth
// that day's purchases minus its refunds; refunds on days without purchases count against repeat
// spend; costs are kept apart. $1 currency, $2 the first instant after the observation end's day,
// $3 that day. The %s is the filter on customers: summaryForCustomers, or a range of ids.
const summarySQL = `SELECT s.* FROM (
	SELECT d.customer_id,
		(count(*) FILTER (WHERE d.bought IS NOT NULL) - 1)::int,
		(max(d.day) FILTER (WHERE d.bought IS NOT NULL) - min(d.first_day))::int,
		($3::date - min(d.first_day))::int,
		coalesce(sum(coalesce(d.bought, 0) - d.refunded) FILTER (WHERE d.day > d.first_day), 0),
		sum(coalesce(d.bought, 0) - d.refunded),
		min(d.first_at), max(d.last_at),
		coalesce(sum(d.bought), 0), sum(d.refunded), sum(d.spent)
	FROM (
		SELECT daily.*, min(daily.day) FILTER (WHERE daily.bought IS NOT NULL) OVER (PARTITION BY daily.customer_id) AS first_day
		FROM (
			SELECT t.customer_id, (t.occurred_at AT TIME ZONE 'UTC')::date AS day,
				sum(t.amount) FILTER (WHERE t.type = 'purchase') AS bought,
				coalesce(sum(t.amount) FILTER (WHERE t.type = 'refund'), 0) AS refunded,
				coalesce(sum(t.amount) FILTER (WHERE t.type = 'cost'), 0) AS spent,
				min(t.occurred_at) FILTER (WHERE t.type = 'purchase') AS first_at,
				max(t.occurred_at) FILTER (WHERE t.type = 'purchase') AS last_at
			FROM transactions t
			WHERE t.currency = $1 AND t.occurred_at < $2 %s
			GROUP BY 1, 2
		) daily
	) d
	WHERE d.first_day IS NOT NULL
	GROUP BY d.customer_id
) s
WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = s.customer_id AND c.deleted_at IS NULL)`

// summaryArgs are the first three arguments of summarySQL for q.
func summaryArgs(q analytics.RefreshQuery) []any {
	endDay := q.ObservationEnd.UTC().Truncate(24 * time.Hour)
	return []any{q.Run.Currency, endDay.Add(24 * time.Hour), pgtype.Date{Time: endDay, Valid: true}}
}

// summaryForCustomers limits summarySQL to the customers in $4. It is a statement of its own,
// not an "IS NULL OR" branch, so a cached generic plan can never lose the customer index.
const summaryForCustomers = "AND t.customer_id = ANY($4)"

// stagingTablesSQL creates the session's staging tables of a rescore, emptied at commit.
const stagingTablesSQL = `
CREATE TEMP TABLE IF NOT EXISTS summary_rows (
	customer_id uuid, frequency int, recency_days int, t_days int, repeat_net numeric, total_net numeric,
	first_purchase_at timestamptz, last_purchase_at timestamptz, revenue numeric, refunds numeric, cost numeric
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS score_rows (
	customer_id uuid, p_alive float8, band text, e30 float8, e90 float8, e365 float8, spend float8, clv float8,
	rfm_r int2, rfm_f int2, rfm_m int2, segment text
) ON COMMIT DELETE ROWS`

// scoreSelectSQL selects the score rows of customer_scores from the staged scores (sc) and
// summaries (s). $1 run, $2 currency, $3 observation end, $4 days per unit, $5 computed at.
const scoreSelectSQL = `(customer_id, model_run_id, currency, observation_end,
	frequency, recency, t, monetary, purchases, first_purchase_at, last_purchase_at, revenue, refunds, cost, net_value,
	p_alive, churn_risk, churn_band, expected_purchases_30d, expected_purchases_90d, expected_purchases_365d,
	expected_spend, clv, rfm_recency, rfm_frequency, rfm_monetary, rfm_segment, computed_at)
SELECT s.customer_id, $1, $2, $3, s.frequency, s.recency_days / $4::float8, s.t_days / $4::float8,
	round(greatest(CASE WHEN s.frequency > 0 THEN s.repeat_net / s.frequency ELSE 0 END, 0), 4), s.frequency + 1,
	s.first_purchase_at, s.last_purchase_at, s.revenue, s.refunds, s.cost, s.revenue - s.refunds - s.cost,
	sc.p_alive, 1 - sc.p_alive, sc.band, sc.e30, sc.e90, sc.e365, round(sc.spend::numeric, 2), round(sc.clv::numeric, 2),
	sc.rfm_r, sc.rfm_f, sc.rfm_m, sc.segment, $5`

// upsertScoresSQL stores the staged scores of a rescore with their summaries, and moves the
// customers between the value buckets of the segment thresholds. Its arguments are those of
// scoreSelectSQL and, sixth, the rescored customers' ids.
var upsertScoresSQL = `WITH stored AS (
INSERT INTO customer_scores ` + scoreSelectSQL + `
FROM score_rows sc JOIN summary_rows s USING (customer_id)
ON CONFLICT (customer_id) DO UPDATE SET
	model_run_id = EXCLUDED.model_run_id, currency = EXCLUDED.currency, observation_end = EXCLUDED.observation_end,
	frequency = EXCLUDED.frequency, recency = EXCLUDED.recency, t = EXCLUDED.t, monetary = EXCLUDED.monetary,
	purchases = EXCLUDED.purchases, first_purchase_at = EXCLUDED.first_purchase_at,
	last_purchase_at = EXCLUDED.last_purchase_at, revenue = EXCLUDED.revenue, refunds = EXCLUDED.refunds,
	cost = EXCLUDED.cost, net_value = EXCLUDED.net_value, p_alive = EXCLUDED.p_alive, churn_risk = EXCLUDED.churn_risk,
	churn_band = EXCLUDED.churn_band, expected_purchases_30d = EXCLUDED.expected_purchases_30d,
	expected_purchases_90d = EXCLUDED.expected_purchases_90d, expected_purchases_365d = EXCLUDED.expected_purchases_365d,
	expected_spend = EXCLUDED.expected_spend, clv = EXCLUDED.clv, rfm_recency = EXCLUDED.rfm_recency,
	rfm_frequency = EXCLUDED.rfm_frequency, rfm_monetary = EXCLUDED.rfm_monetary, rfm_segment = EXCLUDED.rfm_segment,
	computed_at = EXCLUDED.computed_at
RETURNING customer_id, net_value, clv, purchases
), ` + rescoredValuesSQL("$6") + `
` + moveBucketsSQL

var scoreColumns = []string{"customer_id", "p_alive", "band", "e30", "e90", "e365", "spend", "clv", "rfm_r", "rfm_f", "rfm_m", "segment"}

// RefreshScores computes summaries in SQL, scores them in Go and stores the scores. A refresh
// of some customers upserts their scores and places them in the built-in segment families in
// one transaction; a full refresh replaces the table (see refreshAll), after which the
// segment refresh places everyone.
func (s *AnalyticsStore) RefreshScores(ctx context.Context, q analytics.RefreshQuery, score func([]analytics.SummaryRow) ([]analytics.ScoreRow, error)) (analytics.RefreshStats, error) {
	if q.CustomerIDs == nil {
		return s.refreshAll(ctx, q, score)
	}
	var stats analytics.RefreshStats
	err := s.db.withPgx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, stagingTablesSQL); err != nil {
			return fmt.Errorf("create staging tables: %w", err)
		}
		start := time.Now()
		query := "INSERT INTO summary_rows " + fmt.Sprintf(summarySQL, summaryForCustomers)
		if _, err := tx.Exec(ctx, query, append(summaryArgs(q), q.CustomerIDs)...); err != nil {
			return fmt.Errorf("summarise purchases: %w", err)
		}
		rows, err := readSummaries(ctx, tx, "summary_rows", &stats)
		if err != nil {
			return err
		}
		stats.SummaryDuration = time.Since(start)
		scores, err := score(rows)
		if err != nil {
			return err
		}
		if err := copyScores(ctx, tx, scores); err != nil {
			return err
		}
		// The scores, the value buckets and the placements of the customers change together.
		if _, err := tx.Exec(ctx, membershipLockSQL); err != nil {
			return fmt.Errorf("lock memberships: %w", err)
		}
		if _, err := tx.Exec(ctx, upsertScoresSQL, q.Run.ID, q.Run.Currency, q.ObservationEnd, q.Run.Unit.Days(), q.ComputedAt, q.CustomerIDs); err != nil {
			return fmt.Errorf("store scores: %w", err)
		}
		return placeRescored(ctx, tx, q.CustomerIDs, q.ComputedAt)
	})
	return stats, err
}

// querier runs queries on a connection or in a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// readSummaries reads the summaries staged in table and describes them in stats.
func readSummaries(ctx context.Context, q querier, table string, stats *analytics.RefreshStats) ([]analytics.SummaryRow, error) {
	var first, last pgtype.Timestamptz
	if err := q.QueryRow(ctx, `SELECT count(*), min(first_purchase_at), max(last_purchase_at) FROM `+table).
		Scan(&stats.Customers, &first, &last); err != nil {
		return nil, fmt.Errorf("count summaries: %w", err)
	}
	stats.FirstPurchaseAt, stats.LastPurchaseAt = first.Time.UTC(), last.Time.UTC()
	rows, err := q.Query(ctx, `SELECT customer_id, frequency, recency_days, t_days,
		(CASE WHEN frequency > 0 THEN repeat_net / frequency ELSE 0 END)::float8, total_net::float8
		FROM `+table)
	if err != nil {
		return nil, fmt.Errorf("read summaries: %w", err)
	}
	out := make([]analytics.SummaryRow, 0, stats.Customers)
	var r analytics.SummaryRow
	_, err = pgx.ForEachRow(rows, []any{&r.CustomerID, &r.Frequency, &r.RecencyDays, &r.TDays, &r.Monetary, &r.Total}, func() error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read summaries: %w", err)
	}
	return out, nil
}

func copyScores(ctx context.Context, tx pgx.Tx, scores []analytics.ScoreRow) error {
	i := -1
	row := make([]any, len(scoreColumns))
	source := pgx.CopyFromFunc(func() ([]any, error) {
		i++
		if i >= len(scores) {
			return nil, nil
		}
		sc := &scores[i]
		row[0], row[1], row[2], row[3] = pgtype.UUID{Bytes: sc.CustomerID, Valid: true}, sc.ProbabilityAlive, sc.Band, sc.Expected30
		row[4], row[5], row[6], row[7] = sc.Expected90, sc.Expected365, sc.ExpectedSpend, sc.CLV
		row[8], row[9], row[10], row[11] = int16(sc.RFM.R), int16(sc.RFM.F), int16(sc.RFM.M), sc.Segment
		return row, nil
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"score_rows"}, scoreColumns, source); err != nil {
		return fmt.Errorf("copy scores: %w", err)
	}
	return nil
}

// scoreRow is the customer_scores table.
type scoreRow struct {
	CustomerID            uuid.UUID
	ModelRunID            uuid.UUID
	Currency              string
	ObservationEnd        time.Time
	Frequency             int
	Recency               float64
	T                     float64
	Monetary              string
	Purchases             int
	FirstPurchaseAt       time.Time
	LastPurchaseAt        time.Time
	Revenue               string
	Refunds               string
	Cost                  string
	NetValue              string
	PAlive                float64
	ChurnRisk             float64
	ChurnBand             string
	ExpectedPurchases30d  float64 `gorm:"column:expected_purchases_30d"`
	ExpectedPurchases90d  float64 `gorm:"column:expected_purchases_90d"`
	ExpectedPurchases365d float64 `gorm:"column:expected_purchases_365d"`
	ExpectedSpend         string
	CLV                   string `gorm:"column:clv"`
	RFMRecency            int    `gorm:"column:rfm_recency"`
	RFMFrequency          int    `gorm:"column:rfm_frequency"`
	RFMMonetary           int    `gorm:"column:rfm_monetary"`
	RFMSegment            string `gorm:"column:rfm_segment"`
	ComputedAt            time.Time
}

func (scoreRow) TableName() string { return "customer_scores" }

// CustomerScores returns a live customer's scores within scope.
func (s *AnalyticsStore) CustomerScores(ctx context.Context, scope crm.Scope, customerID uuid.UUID) (*analytics.CustomerScores, error) {
	var rows []scoreRow
	q := s.db.session(ctx).Where("customer_id = ?", customerID).
		Where("customer_id IN (?)", live(s.db.session(ctx).Model(&customerRow{}).Select("id"), scope))
	if err := q.Limit(1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read scores of %s: %w", customerID, err)
	}
	if len(rows) == 0 {
		if _, err := NewCustomerStore(s.db).Customer(ctx, scope, customerID); err != nil {
			return nil, err
		}
		return nil, crm.Errorf(crm.CodeNotFound, "Customer %s has no scores yet: it has no purchase in the scored currency, or no model run has succeeded.", customerID)
	}
	r := rows[0]
	run, err := s.Run(ctx, r.ModelRunID)
	if err != nil {
		return nil, err
	}
	return &analytics.CustomerScores{
		CustomerID: r.CustomerID, Run: run, Currency: r.Currency, ObservationEnd: r.ObservationEnd.UTC(),
		ComputedAt: r.ComputedAt.UTC(), Frequency: r.Frequency, Recency: r.Recency, T: r.T, Monetary: r.Monetary,
		Purchases: r.Purchases, FirstPurchaseAt: r.FirstPurchaseAt.UTC(), LastPurchaseAt: r.LastPurchaseAt.UTC(),
		Revenue: r.Revenue, Refunds: r.Refunds, Cost: r.Cost, NetValue: r.NetValue,
		PAlive: r.PAlive, ChurnRisk: r.ChurnRisk, ChurnBand: r.ChurnBand,
		Expected30: r.ExpectedPurchases30d, Expected90: r.ExpectedPurchases90d, Expected365: r.ExpectedPurchases365d,
		ExpectedSpend: r.ExpectedSpend, CLV: r.CLV,
		RFM:     rfm.Score{R: r.RFMRecency, F: r.RFMFrequency, M: r.RFMMonetary},
		Segment: r.RFMSegment,
	}, nil
}

// scoreSummaries returns the headline scores of the given customers.
func scoreSummaries(tx *gorm.DB, ids []uuid.UUID) (map[uuid.UUID]*crm.ScoreSummary, error) {
	out := make(map[uuid.UUID]*crm.ScoreSummary, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var rows []scoreRow
	err := tx.Select("customer_id", "model_run_id", "p_alive", "churn_risk", "churn_band",
		"expected_purchases_90d", "clv", "currency", "computed_at").Where("customer_id IN ?", ids).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read scores: %w", err)
	}
	for _, r := range rows {
		out[r.CustomerID] = &crm.ScoreSummary{
			ModelRunID: r.ModelRunID, PAlive: r.PAlive, ChurnRisk: r.ChurnRisk, ChurnBand: r.ChurnBand,
			ExpectedPurchases90d: r.ExpectedPurchases90d, CLV: r.CLV, Currency: r.Currency, ComputedAt: r.ComputedAt.UTC(),
		}
	}
	return out, nil
}

// CustomersScoredByOtherRuns returns the customers whose stored scores another run produced.
func (s *AnalyticsStore) CustomersScoredByOtherRuns(ctx context.Context, runID uuid.UUID) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := s.db.session(ctx).Raw(`SELECT customer_id FROM customer_scores WHERE model_run_id <> ?`, runID).Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("find customers scored by other runs: %w", err)
	}
	return ids, nil
}
