package postgres

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// RescoreForTest rewrites the scores of the given customers with the assignments set (of
// customer_scores columns) as a live rescore stores new scores: the value buckets of the tier
// thresholds and the built-in placements change with them, in one transaction.
func (s *SegmentStore) RescoreForTest(ctx context.Context, set string, ids []uuid.UUID, now time.Time) error {
	return s.db.withPgx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, membershipLockSQL); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `WITH stored AS (
			UPDATE customer_scores SET `+set+` WHERE customer_id = ANY($1) RETURNING customer_id, net_value, clv, purchases
		), `+rescoredValuesSQL("$1")+"\n"+moveBucketsSQL, ids)
		if err != nil {
			return err
		}
		return placeRescored(ctx, tx, ids, now)
	})
}
