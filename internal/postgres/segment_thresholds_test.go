package postgres

import (
	"context"
	"database/sql"
	"math/big"
	"testing"

	"github.com/centric-crm/centric/internal/postgres/pgtest"
)

// TestBucketRangeHoldsItsBucket checks bucketRange against PostgreSQL's own bucket expression
// on values at and around every bucket edge from 0 to beyond 10^15: each value must lie in the
// range Go computes for the bucket PostgreSQL puts it in.
func TestBucketRangeHoldsItsBucket(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("pgx", pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The buckets up to 10^15 and a few beyond.
	buckets := 35 * bucketsPerE
	rows, err := db.QueryContext(context.Background(), `SELECT v::text, b FROM (
		SELECT v, floor(ln((least(v, 1e15)::int8 + 1)::float8) * $1) AS b
		FROM generate_series(0, $2::int) AS e (i)
		CROSS JOIN LATERAL (SELECT round(exp(i / $1::float8)::numeric, 0) AS edge) x
		CROSS JOIN LATERAL unnest(ARRAY[edge - 2.5, edge - 1.51, edge - 1.5, edge - 1.49, edge - 1, edge - 0.51, edge - 0.5,
			edge - 0.49, edge, edge + 0.5, edge + 1, 0.01, 0.49, 0.5]) AS v
		WHERE v > 0
	) s`, bucketsPerE, buckets)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	checked := 0
	for rows.Next() {
		var value string
		var bucket float64
		if err := rows.Scan(&value, &bucket); err != nil {
			t.Fatal(err)
		}
		from, to := bucketRange(bucket)
		v, _ := new(big.Rat).SetString(value)
		lo, _ := new(big.Rat).SetString(from)
		hi, _ := new(big.Rat).SetString(to)
		if v.Cmp(lo) < 0 || v.Cmp(hi) >= 0 {
			t.Errorf("value %s is in bucket %v, outside its range [%s, %s)", value, bucket, from, to)
		}
		checked++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if checked < 10*buckets {
		t.Errorf("checked %d values, want every edge of %d buckets", checked, buckets+1)
	}
}
