package postgres

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/pkg/rfm"
)

// Placing customers in the built-in families is a read and a write. The read computes
// customers' tiers from their scores with the stored thresholds and keeps only the customers
// whose tiers differ from customer_tiers: the moved set. The write applies the moved set in
// one statement: tiers, member counts and the change log. A refresh materialises the moved set
// with CREATE TABLE AS, which PostgreSQL runs in parallel over a million scores when it
// places everyone (a statement that writes to an existing table never runs in parallel); a
// live rescore reads its customers' moved set inside the write, in the transaction that
// stores their scores (placeRescored).

// placedTiersSQL computes a scored customer's tiers. Its arguments are those of
// placementArgs.
const placedTiersSQL = `SELECT
	CASE WHEN s.net_value >= ?::numeric THEN 'A' WHEN s.net_value >= ?::numeric THEN 'B' ELSE 'C' END AS value_tier,
	CASE WHEN s.clv >= ?::numeric THEN 'A' WHEN s.clv >= ?::numeric THEN 'B' ELSE 'C' END AS clv_tier,
	CASE WHEN s.purchases <= ?::float8 THEN 'light' WHEN s.purchases <= ?::float8 THEN 'medium' ELSE 'heavy' END AS usage_tier,
	coalesce((?::text[])[s.rfm_recency * 100 + s.rfm_frequency * 10 + s.rfm_monetary], ?) AS rfm,
	s.churn_band`

// movedColumnsSQL are the columns of a moved set: the customer, its new tiers n (null when it
// has no live scores any more) and its stored tiers o (null when it had none), in the order of
// crm.BuiltinFamilies. The value class follows from the value and CLV tiers.
const movedColumnsSQL = `coalesce(n.customer_id, o.customer_id) AS customer_id,
	n.value_tier, n.clv_tier,
	CASE WHEN n.value_tier = 'A' THEN 'vip' WHEN n.clv_tier = 'A' THEN 'potential' WHEN n.value_tier IS NOT NULL THEN 'mass' END AS value_class,
	n.usage_tier, n.rfm, n.churn_band,
	o.value_tier AS old_value_tier, o.clv_tier AS old_clv_tier, o.value_class AS old_value_class,
	o.usage_tier AS old_usage_tier, o.rfm AS old_rfm, o.churn_band AS old_churn_band`

// movedSQL is true when the new tiers n differ from the stored tiers o (the value class
// follows from the others).
const movedSQL = `(o.value_tier, o.clv_tier, o.usage_tier, o.rfm, o.churn_band)
	IS DISTINCT FROM (n.value_tier, n.clv_tier, n.usage_tier, n.rfm, n.churn_band)`

// movedTableSQL materialises the moved set of every scored live customer.
const movedTableSQL = `CREATE UNLOGGED TABLE segment_placement_moves AS ` + scoredMovedSQL

// scoredMovedSQL is the moved set of the scored live customers.
const scoredMovedSQL = `SELECT ` + movedColumnsSQL + `
FROM customer_scores s
CROSS JOIN LATERAL (SELECT s.customer_id, p.* FROM (` + placedTiersSQL + `) p) n
LEFT JOIN customer_tiers o ON o.customer_id = s.customer_id
WHERE ` + liveScoresSQL + ` AND ` + movedSQL

// unscoredMovedSQL adds the customers without live scores to the moved set: they leave every
// family (their new tiers stay null).
const unscoredMovedSQL = `INSERT INTO segment_placement_moves
	(customer_id, old_value_tier, old_clv_tier, old_value_class, old_usage_tier, old_rfm, old_churn_band)
SELECT o.customer_id, o.value_tier, o.clv_tier, o.value_class, o.usage_tier, o.rfm, o.churn_band
FROM customer_tiers o
WHERE NOT EXISTS (SELECT 1 FROM customer_scores s WHERE s.customer_id = o.customer_id AND ` + liveScoresSQL + `)`

// someMovedSQL is the moved set of the given customers.
const someMovedSQL = `SELECT ` + movedColumnsSQL + `
FROM (
	SELECT s.customer_id, p.* FROM customer_scores s CROSS JOIN LATERAL (` + placedTiersSQL + `) p
	WHERE s.customer_id = ANY(?::uuid[]) AND ` + liveScoresSQL + `
) n
FULL JOIN (SELECT * FROM customer_tiers WHERE customer_id = ANY(?::uuid[])) o ON o.customer_id = n.customer_id
WHERE ` + movedSQL

// placementArgs are the arguments of placedTiersSQL: the thresholds, and the RFM map as an
// array of segment names indexed by score code (recency × 100 + frequency × 10 + monetary).
func placementArgs(st *builtinSettings) ([]any, error) {
	rules, err := decodeRFMMap(st.RFMMap)
	if err != nil {
		return nil, err
	}
	names := make(textArray, 999)
	for i := range names {
		names[i] = rfm.OtherSegment
	}
	for _, r := range rules {
		for _, code := range r.Scores {
			n, err := strconv.Atoi(code)
			if err != nil || n < 1 || n > len(names) {
				return nil, fmt.Errorf("rfm map: score %q of %q is not a three-digit code", code, r.Name)
			}
			names[n-1] = r.Name
		}
	}
	return []any{st.ValueAMin, st.ValueBMin, st.CLVAMin, st.CLVBMin, st.UsageLightMax, st.UsageMediumMax, names, rfm.OtherSegment}, nil
}

// placeEveryone places every scored live customer and takes customers without live scores
// out of every family. Those are looked for only when the stored tiers outnumber the
// customers that kept theirs, which spares a second pass over a million rows in the usual
// case.
func placeEveryone(tx *gorm.DB, st *builtinSettings, scored int64, cause string, now time.Time) error {
	args, err := placementArgs(st)
	if err != nil {
		return err
	}
	if err := tx.Exec(movedTableSQL, args...).Error; err != nil {
		return fmt.Errorf("place customers in built-in segments: %w", err)
	}
	var stored, added int64
	err = tx.Raw(`SELECT (SELECT count(*) FROM customer_tiers), (SELECT count(*) FROM segment_placement_moves WHERE old_value_tier IS NULL)`).
		Row().Scan(&stored, &added)
	if err != nil {
		return fmt.Errorf("count placed customers: %w", err)
	}
	if stored > scored-added {
		if err := tx.Exec(unscoredMovedSQL).Error; err != nil {
			return fmt.Errorf("find customers without scores: %w", err)
		}
	}
	return applyMovedTable(tx, cause, now)
}

// placeBetween places the scored live customers that the query between (with its arguments)
// selects, in one statement. No customer without live scores keeps tiers (a deletion takes
// them away at once), so none is looked for.
func placeBetween(tx *gorm.DB, st *builtinSettings, between string, betweenArgs []any, cause string, now time.Time) error {
	args, err := placementArgs(st)
	if err != nil {
		return err
	}
	// An array of the customers' ids makes the planner read their scores by the primary key.
	source := scoredMovedSQL + " AND s.customer_id = ANY(ARRAY(" + between + "))"
	return applyPlacements(tx, applyPlacementsFrom(source), withApplyArgs(append(args, betweenArgs...), cause, now))
}

// applyMovedTable applies the moved set in segment_placement_moves and drops it.
func applyMovedTable(tx *gorm.DB, cause string, now time.Time) error {
	if err := applyPlacements(tx, applyMovedTableSQL, withApplyArgs(nil, cause, now)); err != nil {
		return err
	}
	if err := tx.Exec("DROP TABLE segment_placement_moves").Error; err != nil {
		return fmt.Errorf("drop the moved set: %w", err)
	}
	return nil
}

// applyPlacements runs an apply statement of a refresh. Usually a few percent of the customers
// move: their stored tiers and customer rows are found through the primary keys, where a hash
// join would read all of them.
func applyPlacements(tx *gorm.DB, apply string, args []any) error {
	if err := tx.Exec("SET LOCAL enable_hashjoin = off").Error; err != nil {
		return fmt.Errorf("plan the placement: %w", err)
	}
	if err := tx.Exec(apply, args...).Error; err != nil {
		return fmt.Errorf("store built-in segment placements: %w", err)
	}
	if err := tx.Exec("RESET enable_hashjoin").Error; err != nil {
		return fmt.Errorf("plan the placement: %w", err)
	}
	return nil
}

// placeRescored places customers in the built-in families in the transaction that stored their
// new scores (holding the membership lock since before it wrote them), so that every stored
// placement follows from the stored scores and thresholds. Before the first refresh there are
// no thresholds, and nothing to place. Customers without live scores leave every family.
func placeRescored(ctx context.Context, tx pgx.Tx, ids []uuid.UUID, now time.Time) error {
	var st builtinSettings
	err := tx.QueryRow(ctx, `SELECT rfm_map::text, value_a_min::text, value_b_min::text, clv_a_min::text, clv_b_min::text,
		usage_light_max, usage_medium_max, refreshed_at FROM segment_settings`).
		Scan(&st.RFMMap, &st.ValueAMin, &st.ValueBMin, &st.CLVAMin, &st.CLVBMin, &st.UsageLightMax, &st.UsageMediumMax, &st.RefreshedAt)
	if err != nil {
		return fmt.Errorf("read segment settings: %w", err)
	}
	if st.RefreshedAt == nil {
		return nil
	}
	args, err := placementArgs(&st)
	if err != nil {
		return err
	}
	args = append(args, uuidArray(ids), uuidArray(ids))
	// Most rescores leave a customer's tiers as they are: a plain read finds out for less
	// than planning the write.
	var moved bool
	if err := tx.QueryRow(ctx, someMovedExistsSQL, args...).Scan(&moved); err != nil {
		return fmt.Errorf("place customers in built-in segments: %w", err)
	}
	if !moved {
		return nil
	}
	if _, err := tx.Exec(ctx, applySomeMovedSQL, withApplyArgs(args, crm.CauseRescore, now)...); err != nil {
		return fmt.Errorf("store built-in segment placements: %w", err)
	}
	return nil
}

// numberedPlaceholders turns the ? placeholders of a placement statement into pgx's $1, $2,
// …; the statements have no other question marks.
func numberedPlaceholders(sql string) string {
	var b strings.Builder
	n := 0
	for _, part := range strings.SplitAfter(sql, "?") {
		if p, ok := strings.CutSuffix(part, "?"); ok {
			n++
			b.WriteString(p + "$" + strconv.Itoa(n))
		} else {
			b.WriteString(part)
		}
	}
	return b.String()
}

// someMovedExistsSQL tells whether any of the given customers moves, for pgx.
var someMovedExistsSQL = numberedPlaceholders("SELECT EXISTS (" + someMovedSQL + ")")

// applyPlacementsSQL applies a moved set d (%[1]s): every family whose tier changes is a
// segment left and one entered (%[2]s unpivots them for the member counts). It deletes the
// tiers of customers without scores, updates the others' (%[3]s, keeping the time a customer
// entered a tier it stays in), adds the newly scored and logs one membership change per
// customer with the segments entered (%[4]s) and left (%[5]s).
const applyPlacementsSQL = `WITH d AS MATERIALIZED (%[1]s
), counted AS (
	UPDATE segments g SET member_count = g.member_count + m.n
	FROM (SELECT family, tier, sum(n) AS n FROM (%[2]s) u GROUP BY family, tier) m
	WHERE g.family = m.family AND g.tier = m.tier
), removed AS (
	DELETE FROM customer_tiers t USING d WHERE t.customer_id = d.customer_id AND d.value_tier IS NULL
), updated AS (
	UPDATE customer_tiers t SET %[3]s
	FROM d WHERE t.customer_id = d.customer_id AND d.value_tier IS NOT NULL AND d.old_value_tier IS NOT NULL
), added AS (
	INSERT INTO customer_tiers (customer_id, value_tier, value_tier_since, clv_tier, clv_tier_since, value_class, value_class_since,
		usage_tier, usage_tier_since, rfm, rfm_since, churn_band, churn_band_since)
	SELECT customer_id, value_tier, ?, clv_tier, ?, value_class, ?, usage_tier, ?, rfm, ?, churn_band, ?
	FROM d WHERE value_tier IS NOT NULL AND old_value_tier IS NULL
), refs AS MATERIALIZED (
	SELECT jsonb_object_agg(family || '/' || tier, jsonb_build_object('id', id, 'name', name, 'family', family)) AS ref
	FROM segments WHERE family <> 'custom'
)
INSERT INTO change_log (entity_type, operation, entity_id, customer_id, path, state, actor)
SELECT 'segment_membership', 'updated', d.customer_id, d.customer_id, c.ancestors || c.id,
	jsonb_build_object('customer_id', d.customer_id, 'cause', ?::text, 'changed_at', ?::text,
		'entered', to_jsonb(array_remove(ARRAY[%[4]s]::jsonb[], NULL)), 'left', to_jsonb(array_remove(ARRAY[%[5]s]::jsonb[], NULL))),
	change_actor()
FROM d CROSS JOIN refs JOIN customers c ON c.id = d.customer_id
WHERE changes_captured()
ORDER BY d.customer_id`

// applyFamilies are the parts of applyPlacementsSQL that name every family: the change log's
// rows are built per customer straight from the moved set, in the form logMembershipsSQL
// writes, with the families in the order of their names.
var applyFamilies = func() (parts [4]string) {
	var unpivot, set, entered, left []string
	families := slices.Sorted(slices.Values(crm.BuiltinFamilies))
	for _, family := range families {
		col := tierColumns[family]
		unpivot = append(unpivot,
			fmt.Sprintf("SELECT '%[1]s' AS family, old_%[2]s AS tier, -1 AS n FROM d WHERE old_%[2]s IS DISTINCT FROM %[2]s AND old_%[2]s IS NOT NULL", family, col),
			fmt.Sprintf("SELECT '%[1]s', %[2]s, 1 FROM d WHERE old_%[2]s IS DISTINCT FROM %[2]s AND %[2]s IS NOT NULL", family, col))
		entered = append(entered, fmt.Sprintf("CASE WHEN d.old_%[2]s IS DISTINCT FROM d.%[2]s THEN refs.ref -> ('%[1]s/' || d.%[2]s) END", family, col))
		left = append(left, fmt.Sprintf("CASE WHEN d.old_%[2]s IS DISTINCT FROM d.%[2]s THEN refs.ref -> ('%[1]s/' || d.old_%[2]s) END", family, col))
	}
	for _, family := range crm.BuiltinFamilies {
		col := tierColumns[family]
		set = append(set, fmt.Sprintf("%[1]s = d.%[1]s, %[1]s_since = CASE WHEN t.%[1]s = d.%[1]s THEN t.%[1]s_since ELSE ?::timestamptz END", col))
	}
	return [4]string{strings.Join(unpivot, "\n\t\tUNION ALL "), strings.Join(set, ",\n\t\t"), strings.Join(entered, ",\n\t\t\t"), strings.Join(left, ",\n\t\t\t")}
}()

// applyPlacementsFrom is applyPlacementsSQL for the moved set the query source selects.
func applyPlacementsFrom(source string) string {
	return fmt.Sprintf(applyPlacementsSQL, source, applyFamilies[0], applyFamilies[1], applyFamilies[2], applyFamilies[3])
}

// applyMovedTableSQL and applySomeMovedSQL apply the moved set of a refresh that places
// everyone and, for pgx, of the given customers.
var (
	applyMovedTableSQL = applyPlacementsFrom("SELECT * FROM segment_placement_moves")
	applySomeMovedSQL  = numberedPlaceholders(applyPlacementsFrom(someMovedSQL))
)

// withApplyArgs adds the arguments of the apply statements to those of their moved set.
func withApplyArgs(args []any, cause string, now time.Time) []any {
	return append(args, now, now, now, now, now, now, now, now, now, now, now, now, cause, changedAtText(now))
}

// refreshBuiltins recomputes the thresholds and moves the customers they move. Every live
// rescore places its customers with the stored thresholds as it stores their scores, so only
// customers whose values lie between an old and a new threshold can have moved. Everyone is
// placed again (in full) when told to (new settings, a model run), before the first refresh,
// after a model run swapped in a new scores table without placing from it, and when so many
// customers lie between old and new thresholds that comparing everyone costs less.
func refreshBuiltins(tx *gorm.DB, cause string, now time.Time, full bool) error {
	if err := tx.Exec(membershipLockSQL).Error; err != nil {
		return fmt.Errorf("lock memberships: %w", err)
	}
	if err := tx.Exec("SET LOCAL work_mem = '256MB'").Error; err != nil {
		return fmt.Errorf("raise work_mem: %w", err)
	}
	if err := withoutJIT(tx); err != nil {
		return err
	}
	// The planner cannot tell how few customers change tier, and expects every row out of
	// the comparison; without this it would not run it in parallel.
	if err := tx.Exec("SET LOCAL parallel_tuple_cost = 0").Error; err != nil {
		return fmt.Errorf("plan the placement in parallel: %w", err)
	}
	if err := ensureBuiltins(tx, now); err != nil {
		return err
	}
	st, err := readBuiltinSettings(tx)
	if err != nil {
		return err
	}
	if !full {
		// Everyone is placed again when the scores table is not the one last placed from:
		// before the first refresh, and after a model run whose own refresh failed.
		err := tx.Raw(`SELECT placed_scores_table IS DISTINCT FROM 'customer_scores'::regclass FROM segment_settings`).Row().Scan(&full)
		if err != nil {
			return fmt.Errorf("read segment settings: %w", err)
		}
	}
	old := *st
	scored, err := computeThresholds(tx, st, now, full)
	if err != nil {
		return err
	}
	var between string
	var betweenArgs []any
	if !full {
		if between, betweenArgs, err = betweenThresholds(&old, st); err != nil {
			return err
		}
		if between != "" {
			var n int64
			if err := tx.Raw("SELECT count(*) FROM ("+between+") b", betweenArgs...).Row().Scan(&n); err != nil {
				return fmt.Errorf("count customers between old and new thresholds: %w", err)
			}
			full = n > scored/fullPlacementShare
		}
	}
	switch {
	case full:
		if err := placeEveryone(tx, st, scored, cause, now); err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE segment_settings SET placed_scores_table = 'customer_scores'::regclass`).Error; err != nil {
			return fmt.Errorf("store segment settings: %w", err)
		}
	case between != "":
		if err := placeBetween(tx, st, between, betweenArgs, cause, now); err != nil {
			return err
		}
	}
	if err := tx.Exec(`UPDATE segments SET refreshed_at = ? WHERE family <> 'custom'`, now).Error; err != nil {
		return fmt.Errorf("stamp built-in segments: %w", err)
	}
	return nil
}

// fullPlacementShare: a refresh compares every customer with its stored tiers instead of
// placing the customers between old and new thresholds by their ids when those are more than
// one in fullPlacementShare of the scored customers. At a million customers the comparison
// takes 1.4–1.9 s, about as long as placing 40,000–50,000 customers by their ids.
const fullPlacementShare = 20

// betweenThresholds returns a query of the customers whose tiers a change of thresholds from
// before to after can change, and its arguments: those whose net value or CLV lies between an
// old and a new edge of tier A or B (read from the value indexes), and, when the usage edges
// changed, those whose number of purchase occasions lies between an old and a new edge. The
// query is empty when no edge moved.
func betweenThresholds(before, after *builtinSettings) (string, []any, error) {
	var parts []string
	var args []any
	for _, edge := range []struct {
		column        string
		before, after *string
	}{
		{"net_value", before.ValueAMin, after.ValueAMin}, {"net_value", before.ValueBMin, after.ValueBMin},
		{"clv", before.CLVAMin, after.CLVAMin}, {"clv", before.CLVBMin, after.CLVBMin},
	} {
		// A customer is in a tier when its value is at least the edge; no edge takes no one.
		lo, hi, err := valueBand(edge.before, edge.after)
		if err != nil {
			return "", nil, err
		}
		switch {
		case lo == nil:
		case hi == nil:
			parts = append(parts, fmt.Sprintf("SELECT customer_id FROM customer_scores WHERE %s >= ?::numeric", edge.column))
			args = append(args, *lo)
		default:
			parts = append(parts, fmt.Sprintf("SELECT customer_id FROM customer_scores WHERE %[1]s >= ?::numeric AND %[1]s < ?::numeric", edge.column))
			args = append(args, *lo, *hi)
		}
	}
	for _, edge := range []struct{ before, after *float64 }{{before.UsageLightMax, after.UsageLightMax}, {before.UsageMediumMax, after.UsageMediumMax}} {
		// A customer is at most in a usage tier when its occasions are at most the edge; no
		// edge takes no one.
		switch {
		case edge.before == nil && edge.after == nil, edge.before != nil && edge.after != nil && *edge.before == *edge.after:
		case edge.before == nil || edge.after == nil:
			hi := edge.before
			if hi == nil {
				hi = edge.after
			}
			parts = append(parts, "SELECT customer_id FROM customer_scores WHERE purchases <= ?::float8")
			args = append(args, *hi)
		default:
			parts = append(parts, "SELECT customer_id FROM customer_scores WHERE purchases > ?::float8 AND purchases <= ?::float8")
			args = append(args, min(*edge.before, *edge.after), max(*edge.before, *edge.after))
		}
	}
	return strings.Join(parts, " UNION "), args, nil
}

// valueBand returns the values [lo, hi) between an old and a new edge of a value tier, with a
// nil hi for no upper end and a nil lo when the edges are the same. A missing edge (no
// positive value at all) takes no one, as an infinite one would.
func valueBand(before, after *string) (lo, hi *string, err error) {
	switch {
	case before == nil && after == nil:
		return nil, nil, nil
	case before == nil:
		return after, nil, nil
	case after == nil:
		return before, nil, nil
	}
	a, okA := new(big.Rat).SetString(*before)
	b, okB := new(big.Rat).SetString(*after)
	if !okA || !okB {
		return nil, nil, fmt.Errorf("segment thresholds: %q or %q is not a number", *before, *after)
	}
	switch a.Cmp(b) {
	case 0:
		return nil, nil, nil
	case -1:
		return before, after, nil
	default:
		return after, before, nil
	}
}

// logMembershipsSQL ends every statement that changes memberships but the built-in placement
// (which builds the same rows straight from its moved set): it writes the statement's moves, a
// CTE moves (customer_id, segment_id, change) with change 'entered' or 'left', to the change
// log as one row per customer: the segments it entered and those it left. A custom
// segment made with a partner key is that subtree's own: its moves are logged apart, under
// the subtree's root instead of the customer's path, so a customer moved to another subtree
// takes no trace of it along. Its arguments are the cause and changedAtText.
const logMembershipsSQL = `INSERT INTO change_log (entity_type, operation, entity_id, customer_id, path, state, actor)
SELECT 'segment_membership', 'updated', x.customer_id, x.customer_id,
	CASE WHEN x.scope_root IS NULL THEN c.ancestors || c.id ELSE ARRAY[x.scope_root] END,
	jsonb_build_object('customer_id', x.customer_id, 'cause', ?::text, 'changed_at', ?::text, 'entered', x.entered, 'left', x.exited),
	change_actor()
FROM (
	SELECT customer_id, scope_root,
		coalesce(jsonb_agg(ref) FILTER (WHERE change = 'entered'), '[]') AS entered,
		coalesce(jsonb_agg(ref) FILTER (WHERE change = 'left'), '[]') AS exited
	FROM (
		SELECT m.customer_id, m.change, g.scope_root, g.ref
		FROM moves m
		JOIN (
			SELECT id, scope_root, jsonb_build_object('id', id, 'name', name, 'family', family) AS ref,
				row_number() OVER (ORDER BY family, name, id) AS position
			FROM segments
		) g ON g.id = m.segment_id
		ORDER BY m.customer_id, g.scope_root, g.position
	) r
	GROUP BY customer_id, scope_root
) x
JOIN customers c ON c.id = x.customer_id
WHERE changes_captured()
ORDER BY x.customer_id, x.scope_root NULLS FIRST`

// changedAtText is the time of a membership change as the change log's state holds it.
func changedAtText(now time.Time) string {
	return now.UTC().Format("2006-01-02T15:04:05.000000Z")
}
