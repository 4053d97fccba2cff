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

// netBucket and clvBucket are the logarithmic buckets of positive values: 8 per factor e.
// They only partition the values, so float rounding does not matter; a threshold is then found
// exactly in the one bucket where the cumulative value crosses it.
const (
	netBucket = `CASE WHEN s.net_value > 0 THEN floor(ln(s.net_value::float8) * 8) END`
	clvBucket = `CASE WHEN s.clv > 0 THEN floor(ln(s.clv::float8) * 8) END`
)

// thresholdDataSQL reads the live scores once into a narrow materialised set and returns,
// as 'stat' rows, the count and sum of the positive net values and CLVs per bucket and the
// count of customers per number of purchase occasions, and, as 'value' rows, every value in a
// bucket where the cumulative value from the top crosses 80% or 95% of the positive total.
var thresholdDataSQL = `WITH v AS MATERIALIZED (
	SELECT ` + netBucket + ` AS nb, ` + clvBucket + ` AS cb, s.purchases, s.net_value, s.clv
	FROM customer_scores s WHERE ` + liveScoresSQL + `
), stats AS (
	SELECT CASE GROUPING(nb, cb, purchases) WHEN 3 THEN 'net_value' WHEN 5 THEN 'clv' ELSE 'purchases' END AS kind,
		coalesce(nb, cb, purchases::float8) AS bucket, count(*) AS n,
		CASE GROUPING(nb, cb, purchases) WHEN 3 THEN sum(net_value) WHEN 5 THEN sum(clv) ELSE sum(purchases) END AS total
	FROM v
	GROUP BY GROUPING SETS ((nb), (cb), (purchases))
	HAVING coalesce(nb, cb, purchases::float8) IS NOT NULL
), crossing AS (
	SELECT DISTINCT kind, bucket FROM (
		SELECT kind, bucket, total,
			coalesce(sum(total) OVER (PARTITION BY kind ORDER BY bucket DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before,
			sum(total) OVER (PARTITION BY kind) AS grand
		FROM stats WHERE kind <> 'purchases'
	) x CROSS JOIN (VALUES (0.8), (0.95)) share (p)
	WHERE before < grand * share.p AND before + total >= grand * share.p
)
SELECT 'stat' AS row, kind, bucket, n, total::text AS total, NULL AS v FROM stats
UNION ALL
SELECT 'value', 'net_value', nb, NULL, NULL, net_value::text FROM v WHERE nb IN (SELECT bucket FROM crossing WHERE kind = 'net_value')
UNION ALL
SELECT 'value', 'clv', cb, NULL, NULL, clv::text FROM v WHERE cb IN (SELECT bucket FROM crossing WHERE kind = 'clv')`

// thresholdRow is one row of thresholdDataSQL.
type thresholdRow struct {
	Row    string
	Kind   string
	Bucket float64
	N      *int64
	Total  *string
	V      *string
}

type bucketStat struct {
	Kind   string
	Bucket float64
	N      int64
	Total  string
}

// crossing is where a share of the positive total is reached: the bucket, and the value of
// the buckets above it.
type crossing struct {
	kind   string
	bucket float64
	before *big.Rat
	target *big.Rat
	min    **string
}

// The value-tier shares: tier A makes 80% of the positive value, tiers A and B 95%.
var (
	shareA = big.NewRat(80, 100)
	shareB = big.NewRat(95, 100)
)

// computeThresholds recomputes the thresholds of the value, CLV and usage tiers over every
// scored live customer, in one scan of the scores and no sort of them, and stores them.
// A value tier's threshold is the smallest value of the smallest set of top customers whose
// values make the share of the positive total (a customer belongs while the values above it
// sum to less than the share); usage edges are the 1/3 and 2/3 quantiles of purchase
// occasions, interpolated linearly as percentile_cont and pandas do.
func computeThresholds(tx *gorm.DB, st *builtinSettings, now time.Time) error {
	var rows []thresholdRow
	if err := tx.Raw(thresholdDataSQL).Scan(&rows).Error; err != nil {
		return fmt.Errorf("value distribution: %w", err)
	}
	byKind := map[string][]bucketStat{}
	edgeValues := map[string][]string{}
	for _, r := range rows {
		switch {
		case r.Row == "stat" && r.N != nil && r.Total != nil:
			byKind[r.Kind] = append(byKind[r.Kind], bucketStat{Kind: r.Kind, Bucket: r.Bucket, N: *r.N, Total: *r.Total})
		case r.Row == "value" && r.V != nil:
			key := bucketKey(r.Kind, r.Bucket)
			edgeValues[key] = append(edgeValues[key], *r.V)
		}
	}
	st.ValueAMin, st.ValueBMin, st.CLVAMin, st.CLVBMin = nil, nil, nil, nil
	var crossings []crossing
	for _, v := range []struct {
		kind string
		a, b **string
	}{{"net_value", &st.ValueAMin, &st.ValueBMin}, {"clv", &st.CLVAMin, &st.CLVBMin}} {
		buckets := byKind[v.kind]
		sort.Slice(buckets, func(i, j int) bool { return buckets[i].Bucket > buckets[j].Bucket })
		total := new(big.Rat)
		sums := make([]*big.Rat, len(buckets))
		for i, b := range buckets {
			sum, ok := new(big.Rat).SetString(b.Total)
			if !ok {
				return fmt.Errorf("value distribution: bad sum %q", b.Total)
			}
			sums[i] = sum
			total.Add(total, sum)
		}
		if total.Sign() == 0 {
			continue
		}
		for _, share := range []struct {
			share *big.Rat
			min   **string
		}{{shareA, v.a}, {shareB, v.b}} {
			target := new(big.Rat).Mul(total, share.share)
			before := new(big.Rat)
			for i, b := range buckets {
				after := new(big.Rat).Add(before, sums[i])
				if after.Cmp(target) >= 0 {
					crossings = append(crossings, crossing{kind: v.kind, bucket: b.Bucket, before: before, target: target, min: share.min})
					break
				}
				before = after
			}
		}
	}
	if err := resolveCrossings(crossings, edgeValues); err != nil {
		return err
	}
	st.UsageLightMax, st.UsageMediumMax = nil, nil
	switch {
	case st.UsageMediumFrom != nil && st.UsageHeavyFrom != nil:
		light, medium := float64(*st.UsageMediumFrom-1), float64(*st.UsageHeavyFrom-1)
		st.UsageLightMax, st.UsageMediumMax = &light, &medium
	case len(byKind["purchases"]) > 0:
		light, medium := quantiles(byKind["purchases"], 1.0/3), quantiles(byKind["purchases"], 2.0/3)
		st.UsageLightMax, st.UsageMediumMax = &light, &medium
	}
	st.RefreshedAt = &now
	err := tx.Model(&builtinSettings{}).Where("singleton").Select("value_a_min", "value_b_min", "clv_a_min", "clv_b_min",
		"usage_light_max", "usage_medium_max", "refreshed_at").Updates(st).Error
	if err != nil {
		return fmt.Errorf("store segment thresholds: %w", err)
	}
	return nil
}

func bucketKey(kind string, bucket float64) string {
	return kind + "/" + strconv.FormatFloat(bucket, 'f', -1, 64)
}

// resolveCrossings walks the values of each crossing bucket from the top to the last customer
// still inside the share.
func resolveCrossings(crossings []crossing, edgeValues map[string][]string) error {
	type value struct {
		text string
		rat  *big.Rat
	}
	keys := make([]string, len(crossings))
	values := map[string][]value{}
	for i, c := range crossings {
		keys[i] = bucketKey(c.kind, c.bucket)
		if _, done := values[keys[i]]; done {
			continue
		}
		list := make([]value, 0, len(edgeValues[keys[i]]))
		for _, text := range edgeValues[keys[i]] {
			rat, ok := new(big.Rat).SetString(text)
			if !ok {
				return fmt.Errorf("values at the tier edges: bad value %q", text)
			}
			list = append(list, value{text, rat})
		}
		values[keys[i]] = list
	}
	for i, c := range crossings {
		list := values[keys[i]]
		sort.Slice(list, func(a, b int) bool { return list[a].rat.Cmp(list[b].rat) > 0 })
		before := new(big.Rat).Set(c.before)
		for _, v := range list {
			if before.Cmp(c.target) >= 0 {
				break
			}
			text := v.text
			*c.min = &text
			before.Add(before, v.rat)
		}
		if *c.min == nil {
			return fmt.Errorf("values at the tier edges: bucket %s has no value inside the share", keys[i])
		}
	}
	return nil
}

// quantiles returns the q-quantile of a distribution of counts by value, interpolated
// linearly between the two nearest ranks (percentile_cont).
func quantiles(counts []bucketStat, q float64) float64 {
	sort.Slice(counts, func(i, j int) bool { return counts[i].Bucket < counts[j].Bucket })
	var n int64
	for _, c := range counts {
		n += c.N
	}
	pos := q * float64(n-1)
	lo, hi := int64(math.Floor(pos)), int64(math.Ceil(pos))
	at := func(rank int64) float64 {
		var seen int64
		for _, c := range counts {
			seen += c.N
			if rank < seen {
				return c.Bucket
			}
		}
		return counts[len(counts)-1].Bucket
	}
	return at(lo) + (pos-float64(lo))*(at(hi)-at(lo))
}
