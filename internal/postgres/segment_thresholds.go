package postgres

import (
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"time"

	"gorm.io/gorm"
)

// liveScoresSQL keeps the scores of live customers. It is an anti-join on the partial index of
// deleted customers, which is tiny, so it costs nothing like a join with every customer.
const liveScoresSQL = `NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = s.customer_id AND c.deleted_at IS NOT NULL)`

// bucketsPerE is the number of logarithmic value buckets per factor e.
const bucketsPerE = 64

// netBucket and clvBucket are logarithmic buckets of positive values, bucketsPerE per factor
// e, on the values rounded to integers: converting a numeric to an integer is cheap where
// converting it to a float is not. The buckets only partition the values in order, so rounding
// does not matter; a threshold is then found exactly among the values of the one bucket where
// the cumulative value crosses it.
var (
	netBucket = valueBucketSQL("net_value")
	clvBucket = valueBucketSQL("clv")
)

func valueBucketSQL(column string) string {
	return fmt.Sprintf(`CASE WHEN s.%[1]s > 0 THEN floor(ln((least(s.%[1]s, 1e15)::int8 + 1)::float8) * %[2]d) END`, column, bucketsPerE)
}

// countBucketsSQL counts the value buckets afresh and stores them: two parallel reads of
// every live score, one into counts and sums per net value bucket and number of purchase
// occasions, summed per family, the other per CLV bucket. (Grouping by all three at once
// would make too many groups of fine buckets.)
var countBucketsSQL = `INSERT INTO segment_value_buckets (family, bucket, customers, total)
WITH net AS (
	SELECT ` + netBucket + ` AS net_bucket, s.purchases, count(*) AS n, sum(s.net_value) FILTER (WHERE s.net_value > 0) AS net_sum
	FROM customer_scores s WHERE ` + liveScoresSQL + `
	GROUP BY 1, 2
)
SELECT CASE WHEN GROUPING(net_bucket) = 0 THEN 'net_value' ELSE 'purchases' END, coalesce(net_bucket, purchases), sum(n),
	CASE WHEN GROUPING(net_bucket) = 0 THEN sum(net_sum) ELSE 0 END
FROM net GROUP BY GROUPING SETS ((net_bucket), (purchases))
HAVING GROUPING(net_bucket) = 1 OR net_bucket IS NOT NULL
UNION ALL
SELECT 'clv', ` + clvBucket + `, count(*), sum(s.clv)
FROM customer_scores s WHERE s.clv > 0 AND ` + liveScoresSQL + `
GROUP BY 2`

// moveBucketsSQL ends a statement that writes scores: it moves the customers in its CTE
// moved_values (customer_id, sign, net_value, clv, purchases) between the value buckets,
// adding those with sign 1 and taking out those with sign -1. It writes the buckets in order,
// so two writers never wait for each other crosswise.
var moveBucketsSQL = `INSERT INTO segment_value_buckets AS b (family, bucket, customers, total)
SELECT f.family, f.bucket, sum(s.sign), sum(s.sign * f.value)
FROM moved_values s CROSS JOIN LATERAL (VALUES
	('net_value', ` + netBucket + `, s.net_value), ('clv', ` + clvBucket + `, s.clv), ('purchases', s.purchases, 0)
) f (family, bucket, value)
WHERE f.bucket IS NOT NULL
GROUP BY f.family, f.bucket
HAVING sum(s.sign) <> 0 OR sum(s.sign * f.value) <> 0
ORDER BY f.family, f.bucket
ON CONFLICT (family, bucket) DO UPDATE SET customers = b.customers + EXCLUDED.customers, total = b.total + EXCLUDED.total`

// rescoredValuesSQL returns the CTE moved_values of a statement that rewrites the scores of
// the customers whose ids are in the array ids (a placeholder) and whose CTE stored returns
// the scores it wrote (customer_id, net_value, clv, purchases): those scores in, the live
// scores the customers had before out. Every part of a statement reads the data as it was
// before the statement, so the previous scores are those it replaces.
func rescoredValuesSQL(ids string) string {
	return `previous AS (
	SELECT s.customer_id, s.net_value, s.clv, s.purchases FROM customer_scores s
	WHERE s.customer_id = ANY(` + ids + `) AND ` + liveScoresSQL + `
), moved_values AS (
	SELECT s.customer_id, 1 AS sign, s.net_value, s.clv, s.purchases FROM stored s WHERE ` + liveScoresSQL + `
	UNION ALL
	SELECT customer_id, -1, net_value, clv, purchases FROM previous
)`
}

// thresholdSQL finds a tier's threshold among the values of the bucket where the cumulative
// value crosses the tier's share: walking down from the bucket's largest value, the first
// value that brings the sum of the buckets above (the third argument) and the values walked
// so far to the share (the fourth). That customer still belongs to the tier, since the values
// above it sum to less than the share, and the next does not. The values are read from the
// index on the value column, in the range bucketRange gives (the first two arguments),
// narrowed to the bucket by PostgreSQL's own bucket expression (the fifth), and the walk
// stops at the answer. %[1]s is the column and %[2]s its bucket expression, from
// tierValueColumns.
const thresholdSQL = `SELECT v::text FROM (
	SELECT s.%[1]s AS v, sum(s.%[1]s) OVER (ORDER BY s.%[1]s DESC ROWS UNBOUNDED PRECEDING) AS walked
	FROM customer_scores s
	WHERE s.%[1]s >= ?::numeric AND s.%[1]s < ?::numeric AND %[2]s = ? AND ` + liveScoresSQL + `
) x
WHERE ?::numeric + walked >= ?::numeric
ORDER BY v DESC LIMIT 1`

// valueBucket sums the positive values of one bucket.
type valueBucket struct {
	bucket float64
	sum    *big.Rat
}

// putBucket records the sum of a bucket of a family.
func putBucket(buckets map[float64]*valueBucket, bucket float64, sum string) error {
	v, ok := new(big.Rat).SetString(sum)
	if !ok {
		return fmt.Errorf("value distribution: bad sum %q", sum)
	}
	buckets[bucket] = &valueBucket{bucket: bucket, sum: v}
	return nil
}

// bucketRange is a range of values that holds every value of a bucket, and next to nothing
// else. With n buckets per factor e, bucket b holds the values v whose rounding k (half away
// from zero, as PostgreSQL casts) has e^(b/n) <= k + 1 < e^((b+1)/n): the integers k from
// kLo to kHi, so the values from kLo - 0.5 up to kHi + 0.5. Go's exponential may differ from
// PostgreSQL's logarithm in the last digits, so an integer whose k + 1 lies within a relative
// 1e-9 of an edge is taken in on either side, and the bucket expression keeps the bucket's
// values alone.
func bucketRange(bucket float64) (from, to string) {
	kLo := math.Ceil(math.Exp(bucket/bucketsPerE)*(1-1e-9)) - 1
	hi := math.Exp((bucket+1)/bucketsPerE) * (1 + 1e-9)
	if hi > 1e15 {
		// The top bucket also holds every value above 10^15.
		return strconv.FormatFloat(kLo-0.5, 'f', 1, 64), "1e300"
	}
	kHi := math.Ceil(hi) - 2
	return strconv.FormatFloat(kLo-0.5, 'f', 1, 64), strconv.FormatFloat(kHi+0.5, 'f', 1, 64)
}

// The value-tier shares: tier A makes 80% of the positive value, tiers A and B 95%.
var (
	shareA = big.NewRat(80, 100)
	shareB = big.NewRat(95, 100)
)

// tierValueColumns names the score column of each value kind; a kind selects an entry, so no
// other text reaches SQL.
var tierValueColumns = map[string]struct{ column, bucket string }{
	"net_value": {"net_value", netBucket},
	"clv":       {"clv", clvBucket},
}

// computeThresholds recomputes the thresholds of the value, CLV and usage tiers over every
// scored live customer and stores them. It reads the value buckets, counted afresh from every
// score when count is set (otherwise as the writers of scores kept them), and then only the
// values of the buckets where a share is crossed, from an index. A value tier's threshold is
// the smallest value of the smallest set of top customers whose values make the share of the
// positive total (a customer belongs while the values above it sum to less than the share);
// usage edges are the 1/3 and 2/3 quantiles of purchase occasions, interpolated linearly as
// percentile_cont and pandas do. It returns the number of scored live customers.
func computeThresholds(tx *gorm.DB, st *builtinSettings, now time.Time, count bool) (scored int64, err error) {
	if count {
		if err := tx.Exec("DELETE FROM segment_value_buckets").Error; err != nil {
			return 0, fmt.Errorf("value distribution: %w", err)
		}
		if err := tx.Exec(countBucketsSQL).Error; err != nil {
			return 0, fmt.Errorf("value distribution: %w", err)
		}
	}
	rows, err := tx.Raw(`SELECT family, bucket, customers, total::text FROM segment_value_buckets WHERE customers > 0`).Rows()
	if err != nil {
		return 0, fmt.Errorf("value distribution: %w", err)
	}
	defer rows.Close()
	net, clv := map[float64]*valueBucket{}, map[float64]*valueBucket{}
	occasions := map[int]int64{}
	for rows.Next() {
		var family, total string
		var bucket int
		var n int64
		if err := rows.Scan(&family, &bucket, &n, &total); err != nil {
			return 0, fmt.Errorf("value distribution: %w", err)
		}
		switch family {
		case "net_value":
			err = putBucket(net, float64(bucket), total)
		case "clv":
			err = putBucket(clv, float64(bucket), total)
		case "purchases":
			occasions[bucket] += n
			scored += n
		}
		if err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("value distribution: %w", err)
	}
	rows.Close()
	st.ValueAMin, st.ValueBMin, st.CLVAMin, st.CLVBMin = nil, nil, nil, nil
	for _, v := range []struct {
		kind    string
		buckets map[float64]*valueBucket
		a, b    **string
	}{{"net_value", net, &st.ValueAMin, &st.ValueBMin}, {"clv", clv, &st.CLVAMin, &st.CLVBMin}} {
		if err := tierThresholds(tx, v.kind, v.buckets, v.a, v.b); err != nil {
			return 0, err
		}
	}
	st.UsageLightMax, st.UsageMediumMax = nil, nil
	switch {
	case st.UsageMediumFrom != nil && st.UsageHeavyFrom != nil:
		light, medium := float64(*st.UsageMediumFrom-1), float64(*st.UsageHeavyFrom-1)
		st.UsageLightMax, st.UsageMediumMax = &light, &medium
	case len(occasions) > 0:
		light, medium := quantile(occasions, 1.0/3), quantile(occasions, 2.0/3)
		st.UsageLightMax, st.UsageMediumMax = &light, &medium
	}
	st.RefreshedAt = &now
	err = tx.Model(&builtinSettings{}).Where("singleton").Select("value_a_min", "value_b_min", "clv_a_min", "clv_b_min",
		"usage_light_max", "usage_medium_max", "refreshed_at").Updates(st).Error
	if err != nil {
		return 0, fmt.Errorf("store segment thresholds: %w", err)
	}
	return scored, nil
}

// tierThresholds finds the thresholds of tiers A (80% of the positive total) and B (95%) of
// one value kind from its buckets.
func tierThresholds(tx *gorm.DB, kind string, buckets map[float64]*valueBucket, a, b **string) error {
	ordered := make([]*valueBucket, 0, len(buckets))
	total := new(big.Rat)
	for _, bucket := range buckets {
		ordered = append(ordered, bucket)
		total.Add(total, bucket.sum)
	}
	if total.Sign() == 0 {
		return nil
	}
	sort.Slice(ordered, func(i, j int) bool { return ordered[i].bucket > ordered[j].bucket })
	for _, share := range []struct {
		share *big.Rat
		min   **string
	}{{shareA, a}, {shareB, b}} {
		target := new(big.Rat).Mul(total, share.share)
		before := new(big.Rat)
		for _, bucket := range ordered {
			after := new(big.Rat).Add(before, bucket.sum)
			if after.Cmp(target) < 0 {
				before = after
				continue
			}
			from, to := bucketRange(bucket.bucket)
			col := tierValueColumns[kind]
			var found []string
			err := tx.Raw(fmt.Sprintf(thresholdSQL, col.column, col.bucket), from, to, bucket.bucket, before.FloatString(30), target.FloatString(30)).
				Scan(&found).Error
			if err != nil {
				return fmt.Errorf("%s tier threshold: %w", kind, err)
			}
			if len(found) == 0 {
				return fmt.Errorf("%s tier threshold: bucket %v has no value inside the share", kind, bucket.bucket)
			}
			*share.min = &found[0]
			break
		}
	}
	return nil
}

// quantile returns the q-quantile of a distribution of counts by value, interpolated linearly
// between the two nearest ranks (percentile_cont).
func quantile(counts map[int]int64, q float64) float64 {
	values := make([]int, 0, len(counts))
	var n int64
	for v, c := range counts {
		values = append(values, v)
		n += c
	}
	sort.Ints(values)
	pos := q * float64(n-1)
	lo, hi := int64(math.Floor(pos)), int64(math.Ceil(pos))
	at := func(rank int64) float64 {
		var seen int64
		for _, v := range values {
			seen += counts[v]
			if rank < seen {
				return float64(v)
			}
		}
		return float64(values[len(values)-1])
	}
	return at(lo) + (pos-float64(lo))*(at(hi)-at(lo))
}
