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

// netBucket and clvBucket are logarithmic buckets of positive values, 8 per factor e, on the
// values rounded to integers: converting a numeric to an integer is cheap where converting it
// to a float is not. The buckets only partition the values in order, so rounding does not
// matter; a threshold is then found exactly among the values of the one bucket where the
// cumulative value crosses it.
const (
	netBucket = `CASE WHEN s.net_value > 0 THEN floor(ln((least(s.net_value, 1e15)::int8 + 1)::float8) * 8) END`
	clvBucket = `CASE WHEN s.clv > 0 THEN floor(ln((least(s.clv, 1e15)::int8 + 1)::float8) * 8) END`
)

// thresholdStatsSQL reads every live score once, in parallel, into counts and sums per
// combination of net value bucket, CLV bucket and number of purchase occasions, and returns
// them per net value bucket (kind 3), per CLV bucket (kind 5) and per number of occasions
// (kind 6): the count of customers and the sums of the positive net values and CLVs.
var thresholdStatsSQL = `WITH g AS (
	SELECT ` + netBucket + ` AS net_bucket, ` + clvBucket + ` AS clv_bucket, s.purchases, count(*) AS n,
		sum(s.net_value) FILTER (WHERE s.net_value > 0) AS net_sum, sum(s.clv) FILTER (WHERE s.clv > 0) AS clv_sum
	FROM customer_scores s WHERE ` + liveScoresSQL + `
	GROUP BY 1, 2, 3
)
SELECT GROUPING(net_bucket, clv_bucket, purchases) AS kind, net_bucket, clv_bucket, purchases, sum(n)::int8 AS n,
	sum(net_sum)::text AS net_sum, sum(clv_sum)::text AS clv_sum
FROM g GROUP BY GROUPING SETS ((net_bucket), (clv_bucket), (purchases))`

// thresholdSQL finds a tier's threshold among the values of the bucket where the cumulative
// value crosses the tier's share: the least value whose greater values in the bucket, added
// to the sum of the buckets above (the third argument), stay below the share (the fourth).
// The values are read from the index on the value column, in a range that holds the bucket
// with room to spare (the first two arguments, computed in Go, whose logarithm may differ from
// PostgreSQL's in the last digit), narrowed to the bucket by PostgreSQL's own bucket
// expression (the fifth). %[1]s is the column and %[2]s its bucket expression, from
// tierValueColumns.
const thresholdSQL = `SELECT v::text FROM (
	SELECT s.%[1]s AS v, coalesce(sum(s.%[1]s) OVER (ORDER BY s.%[1]s DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS above
	FROM customer_scores s
	WHERE s.%[1]s >= ?::numeric AND s.%[1]s < ?::numeric AND %[2]s = ? AND ` + liveScoresSQL + `
) x
WHERE ?::numeric + above < ?::numeric
ORDER BY v LIMIT 1`

// valueBucket sums the positive values of one bucket.
type valueBucket struct {
	bucket float64
	sum    *big.Rat
}

// addTo adds a row's sum to its bucket.
func addTo(buckets map[float64]*valueBucket, bucket *float64, sum *string) error {
	if bucket == nil || sum == nil {
		return nil
	}
	v, ok := new(big.Rat).SetString(*sum)
	if !ok {
		return fmt.Errorf("value distribution: bad sum %q", *sum)
	}
	if b := buckets[*bucket]; b != nil {
		b.sum.Add(b.sum, v)
	} else {
		buckets[*bucket] = &valueBucket{bucket: *bucket, sum: v}
	}
	return nil
}

// bucketRange is a range of values that holds every value of a bucket. Bucket b holds the
// values v whose rounding k has e^(b/8) <= k + 1 < e^((b+1)/8), so e^(b/8) - 1.5 <= v <
// e^((b+1)/8) - 0.5; a unit more on each side and a relative 1e-9 cover any difference
// between Go's exponential and PostgreSQL's logarithm, and the bucket expression then keeps
// the bucket's values alone.
func bucketRange(bucket float64) (from, to string) {
	lo := math.Max(0, math.Floor(math.Exp(bucket/8)*(1-1e-9)-2.5))
	hi := math.Ceil(math.Exp((bucket+1)/8)*(1+1e-9) + 0.5)
	if hi > 1e15 {
		// The top bucket also holds every value above 10^15.
		return strconv.FormatFloat(lo, 'f', 0, 64), "1e300"
	}
	return strconv.FormatFloat(lo, 'f', 0, 64), strconv.FormatFloat(hi, 'f', 0, 64)
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
// scored live customer and stores them. It reads the scores once, in parallel, into bucket
// statistics, and then only the values of the buckets where a share is crossed, from an
// index. A value tier's threshold is the smallest value of the smallest set of top customers
// whose values make the share of the positive total (a customer belongs while the values above
// it sum to less than the share); usage edges are the 1/3 and 2/3 quantiles of purchase
// occasions, interpolated linearly as percentile_cont and pandas do. It returns the number of
// scored live customers.
func computeThresholds(tx *gorm.DB, st *builtinSettings, now time.Time) (scored int64, err error) {
	rows, err := tx.Raw(thresholdStatsSQL).Rows()
	if err != nil {
		return 0, fmt.Errorf("value distribution: %w", err)
	}
	defer rows.Close()
	net, clv := map[float64]*valueBucket{}, map[float64]*valueBucket{}
	occasions := map[int]int64{}
	for rows.Next() {
		var kind int
		var netBucket, clvBucket *float64
		var purchases *int
		var n int64
		var netSum, clvSum *string
		if err := rows.Scan(&kind, &netBucket, &clvBucket, &purchases, &n, &netSum, &clvSum); err != nil {
			return 0, fmt.Errorf("value distribution: %w", err)
		}
		switch {
		case kind == 3:
			err = addTo(net, netBucket, netSum)
		case kind == 5:
			err = addTo(clv, clvBucket, clvSum)
		case kind == 6 && purchases != nil:
			occasions[*purchases] += n
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
