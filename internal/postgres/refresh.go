package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/centric-crm/centric/internal/analytics"
)

// A full refresh replaces every customer's scores. Rewriting a million rows of customer_scores
// in place costs a new heap version and three index insertions per row; instead the refresh
// summarises the customers in parts, on several connections sharing one snapshot, writes the
// scores into a fresh table, builds its indexes once, and swaps it in. Live
// rescores keep writing to whichever table is current; the customers whose data changed while
// the refresh ran are reported back for a rescore with the new run.

// refreshLockSQL serialises full refreshes: only one may build and swap the scores table.
const refreshLockSQL = `SELECT pg_advisory_lock(hashtextextended('centric: full score refresh', 0))`

// refreshUnlockSQL releases refreshLockSQL.
const refreshUnlockSQL = `SELECT pg_advisory_unlock(hashtextextended('centric: full score refresh', 0))`

// runSessionLockSQL takes an advisory lock on a run while it executes, so that
// FailInterruptedRuns in any process can tell a run in progress from an abandoned one;
// runSessionUnlockSQL releases it.
const (
	runSessionLockSQL   = `SELECT pg_advisory_lock(hashtextextended($1::text, 0))`
	runSessionUnlockSQL = `SELECT pg_advisory_unlock(hashtextextended($1::text, 0))`
)

// refreshSummariesSQL creates the table the parts of a full refresh write their summaries
// into. It is unlogged (derived data, emptied before and after each refresh) and not
// temporary, so that every connection of the refresh can write it.
const refreshSummariesSQL = `
CREATE UNLOGGED TABLE IF NOT EXISTS score_refresh_summaries (
	customer_id uuid, frequency int, recency_days int, t_days int, repeat_net numeric, total_net numeric,
	first_purchase_at timestamptz, last_purchase_at timestamptz, revenue numeric, refunds numeric, cost numeric
);
TRUNCATE score_refresh_summaries`

// nextScoresSQL creates the table a full refresh fills: customer_scores' columns, defaults
// and checks, without indexes, which are built after the rows are in.
const nextScoresSQL = `
DROP TABLE IF EXISTS customer_scores_next;
CREATE TABLE customer_scores_next (LIKE customer_scores INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`

// insertNextScoresSQL fills customer_scores_next from the staged scores and summaries.
// $1 run, $2 currency, $3 observation end, $4 days per unit, $5 computed at.
const insertNextScoresSQL = `INSERT INTO customer_scores_next ` + scoreSelectSQL + `
FROM score_rows sc JOIN score_refresh_summaries s USING (customer_id)`

// indexNextScoresSQL gives customer_scores_next the indexes of customer_scores, under names
// that are free while both tables exist. (The table has no foreign key: see migration 00007.)
const indexNextScoresSQL = `
ALTER TABLE customer_scores_next ADD CONSTRAINT customer_scores_next_pkey PRIMARY KEY (customer_id);
CREATE INDEX customer_scores_next_churn_idx ON customer_scores_next (churn_risk, customer_id);
CREATE INDEX customer_scores_next_clv_idx ON customer_scores_next (clv, customer_id);
CREATE INDEX customer_scores_next_net_value_idx ON customer_scores_next (net_value, customer_id);
ANALYZE customer_scores_next`

// changedDuringRefreshSQL lists the customers whose stored scores (written by live rescores
// while the refresh ran) rest on other purchases than the new ones: customers missing from the
// new table, or whose purchase totals differ. It runs with customer_scores locked against writes.
const changedDuringRefreshSQL = `
SELECT o.customer_id FROM customer_scores o
LEFT JOIN customer_scores_next n USING (customer_id)
WHERE n.customer_id IS NULL
	OR (o.purchases, o.first_purchase_at, o.last_purchase_at, o.revenue, o.refunds, o.cost)
		IS DISTINCT FROM (n.purchases, n.first_purchase_at, n.last_purchase_at, n.revenue, n.refunds, n.cost)`

// swapScoresSQL replaces customer_scores by customer_scores_next and gives the new table's
// indexes their usual names.
const swapScoresSQL = `
DROP TABLE customer_scores;
ALTER TABLE customer_scores_next RENAME TO customer_scores;
ALTER INDEX customer_scores_next_pkey RENAME TO customer_scores_pkey;
ALTER INDEX customer_scores_next_churn_idx RENAME TO customer_scores_churn_idx;
ALTER INDEX customer_scores_next_clv_idx RENAME TO customer_scores_clv_idx;
ALTER INDEX customer_scores_next_net_value_idx RENAME TO customer_scores_net_value_idx`

// refreshAll is RefreshScores for every customer.
func (s *AnalyticsStore) refreshAll(ctx context.Context, q analytics.RefreshQuery, score func([]analytics.SummaryRow) ([]analytics.ScoreRow, error)) (analytics.RefreshStats, error) {
	var stats analytics.RefreshStats
	err := s.db.withConn(ctx, func(conn *pgx.Conn) (err error) {
		if _, err := conn.Exec(ctx, refreshLockSQL); err != nil {
			return fmt.Errorf("wait for other score refreshes: %w", err)
		}
		if _, err := conn.Exec(ctx, runSessionLockSQL, q.Run.ID); err != nil {
			return fmt.Errorf("lock run %s: %w", q.Run.ID, err)
		}
		defer func() {
			// The session ends the locks if it breaks; otherwise they are released here.
			unlockCtx := context.WithoutCancel(ctx)
			_, errRun := conn.Exec(unlockCtx, runSessionUnlockSQL, q.Run.ID)
			_, errRefresh := conn.Exec(unlockCtx, refreshUnlockSQL+"; TRUNCATE score_refresh_summaries")
			if err == nil && (errRun != nil || errRefresh != nil) {
				err = fmt.Errorf("release refresh locks: %v, %v", errRun, errRefresh)
			}
		}()
		if _, err := conn.Exec(ctx, refreshSummariesSQL+";"+stagingTablesSQL); err != nil {
			return fmt.Errorf("create refresh tables: %w", err)
		}

		start := time.Now()
		if err := s.summariseAll(ctx, conn, q); err != nil {
			return err
		}
		rows, err := readSummaries(ctx, conn, "score_refresh_summaries", &stats)
		if err != nil {
			return err
		}
		stats.SummaryDuration = time.Since(start)
		scores, err := score(rows)
		if err != nil {
			return err
		}

		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := copyScores(ctx, tx, scores); err != nil {
				return err
			}
			scores = nil // The copy holds them now; the collector may take them while the table is built.
			if _, err := tx.Exec(ctx, nextScoresSQL); err != nil {
				return fmt.Errorf("create next scores table: %w", err)
			}
			if _, err := tx.Exec(ctx, insertNextScoresSQL, q.Run.ID, q.Run.Currency, q.ObservationEnd, q.Run.Unit.Days(), q.ComputedAt); err != nil {
				return fmt.Errorf("write scores: %w", err)
			}
			if _, err := tx.Exec(ctx, indexNextScoresSQL); err != nil {
				return fmt.Errorf("index scores: %w", err)
			}
			// Readers go on reading the current scores until the swap; writers (live rescores)
			// wait from here until the commit and then write to the new table.
			if _, err := tx.Exec(ctx, `LOCK TABLE customer_scores IN EXCLUSIVE MODE`); err != nil {
				return fmt.Errorf("lock scores: %w", err)
			}
			changedRows, err := tx.Query(ctx, changedDuringRefreshSQL)
			if err != nil {
				return fmt.Errorf("find customers changed during the refresh: %w", err)
			}
			changed, err := pgx.CollectRows(changedRows, pgx.RowTo[uuid.UUID])
			if err != nil {
				return fmt.Errorf("find customers changed during the refresh: %w", err)
			}
			stats.ChangedCustomers = changed
			if _, err := tx.Exec(ctx, swapScoresSQL); err != nil {
				return fmt.Errorf("swap scores table: %w", err)
			}
			if q.Run.Result != nil {
				result := jsonColumn[analytics.RunResult]{*q.Run.Result}
				if _, err := tx.Exec(ctx, `UPDATE model_runs SET result = $1 WHERE id = $2`, result, q.Run.ID); err != nil {
					return fmt.Errorf("store the parameters of run %s: %w", q.Run.ID, err)
				}
			}
			return nil
		})
	})
	return stats, err
}

// summariseAll writes every customer's summary into score_refresh_summaries, in parts split
// by customer id, each on its own connection, all reading one snapshot.
func (s *AnalyticsStore) summariseAll(ctx context.Context, conn *pgx.Conn, q analytics.RefreshQuery) error {
	return pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		var snapshot string
		if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
			return fmt.Errorf("export snapshot: %w", err)
		}
		bounds, err := customerSplits(ctx, tx, s.refreshWorkers)
		if err != nil {
			return err
		}
		args := summaryArgs(q)
		insert := "INSERT INTO score_refresh_summaries " + summarySQL
		part := func(ctx context.Context, tx pgx.Tx, i int) error {
			filter, partArgs := "", args
			if i > 0 {
				filter += " AND t.customer_id >= $4"
				partArgs = append(partArgs, bounds[i-1])
			}
			if i < len(bounds) {
				filter += fmt.Sprintf(" AND t.customer_id < $%d", len(partArgs)+1)
				partArgs = append(partArgs, bounds[i])
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(insert, filter), partArgs...); err != nil {
				return fmt.Errorf("summarise purchases (part %d of %d): %w", i+1, len(bounds)+1, err)
			}
			return nil
		}
		g, gctx := errgroup.WithContext(ctx)
		for i := 1; i <= len(bounds); i++ {
			g.Go(func() error {
				return s.db.withConn(gctx, func(c *pgx.Conn) error {
					return pgx.BeginTxFunc(gctx, c, pgx.TxOptions{IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
						if _, err := tx.Exec(gctx, "SET TRANSACTION SNAPSHOT '"+snapshot+"'"); err != nil {
							return fmt.Errorf("import snapshot: %w", err)
						}
						if _, err := tx.Exec(gctx, "SET LOCAL work_mem = '256MB'"); err != nil {
							return fmt.Errorf("raise work_mem: %w", err)
						}
						return part(gctx, tx, i)
					})
				})
			})
		}
		g.Go(func() error {
			if _, err := tx.Exec(gctx, "SET LOCAL work_mem = '256MB'"); err != nil {
				return fmt.Errorf("raise work_mem: %w", err)
			}
			return part(gctx, tx, 0)
		})
		return g.Wait()
	})
}

// customerSplits returns parts-1 customer ids that split the customers into parts of about
// equal size, or none for one part or fewer customers than parts.
func customerSplits(ctx context.Context, tx pgx.Tx, parts int) ([]uuid.UUID, error) {
	if parts < 2 {
		return nil, nil
	}
	var n int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM customers`).Scan(&n); err != nil {
		return nil, fmt.Errorf("count customers: %w", err)
	}
	if n < int64(parts) {
		return nil, nil
	}
	bounds := make([]uuid.UUID, 0, parts-1)
	for i := 1; i < parts; i++ {
		var id uuid.UUID
		if err := tx.QueryRow(ctx, `SELECT id FROM customers ORDER BY id OFFSET $1 LIMIT 1`, n*int64(i)/int64(parts)).Scan(&id); err != nil {
			return nil, fmt.Errorf("split customers: %w", err)
		}
		bounds = append(bounds, id)
	}
	return bounds, nil
}
