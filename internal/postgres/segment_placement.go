package postgres

import (
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/pkg/rfm"
)

// Placing customers in the built-in families is split in a read and a write. The read
// computes every customer's tiers from its scores with the stored thresholds and returns only
// the customers whose tiers differ from customer_tiers; it is a plain query, which PostgreSQL
// runs in parallel over a million scores. The write applies those differences in one
// statement: tiers, member counts and the change log. (A statement that writes never runs in
// parallel, which is why the read is not part of it.)

// placedTiersSQL computes a scored customer's tiers in every family but value_class, which
// follows from the value and CLV tiers. Its arguments are those of placementArgs.
const placedTiersSQL = `SELECT
	CASE WHEN s.net_value >= ?::numeric THEN 'A' WHEN s.net_value >= ?::numeric THEN 'B' ELSE 'C' END AS value_tier,
	CASE WHEN s.clv >= ?::numeric THEN 'A' WHEN s.clv >= ?::numeric THEN 'B' ELSE 'C' END AS clv_tier,
	CASE WHEN s.purchases <= ?::float8 THEN 'light' WHEN s.purchases <= ?::float8 THEN 'medium' ELSE 'heavy' END AS usage_tier,
	coalesce((?::text[])[s.rfm_recency * 100 + s.rfm_frequency * 10 + s.rfm_monetary], ?) AS rfm,
	s.churn_band`

// placedDiffersSQL is true when the placement p differs from the stored tiers o.
const placedDiffersSQL = `(o.value_tier, o.clv_tier, o.usage_tier, o.rfm, o.churn_band)
	IS DISTINCT FROM (p.value_tier, p.clv_tier, p.usage_tier, p.rfm, p.churn_band)`

// storedTiersSQL lists the stored tiers of o in the order of crm.BuiltinFamilies.
const storedTiersSQL = `o.value_tier, o.clv_tier, o.value_class, o.usage_tier, o.rfm, o.churn_band`

// everyoneMovedSQL returns every scored live customer whose placement differs from its stored
// tiers (which it may not have yet).
const everyoneMovedSQL = `SELECT s.customer_id, p.value_tier, p.clv_tier, p.usage_tier, p.rfm, p.churn_band, ` + storedTiersSQL + `
FROM customer_scores s
CROSS JOIN LATERAL (` + placedTiersSQL + `) p
LEFT JOIN customer_tiers o ON o.customer_id = s.customer_id
WHERE ` + liveScoresSQL + ` AND ` + placedDiffersSQL

// unscoredTiersSQL returns the stored tiers of customers without live scores, which leave
// every family.
const unscoredTiersSQL = `SELECT o.customer_id, NULL, NULL, NULL, NULL, NULL, ` + storedTiersSQL + `
FROM customer_tiers o
WHERE NOT EXISTS (SELECT 1 FROM customer_scores s WHERE s.customer_id = o.customer_id AND ` + liveScoresSQL + `)`

// someMovedSQL is everyoneMovedSQL and unscoredTiersSQL for the given customers alone.
const someMovedSQL = `SELECT coalesce(n.customer_id, o.customer_id), n.value_tier, n.clv_tier, n.usage_tier, n.rfm, n.churn_band, ` + storedTiersSQL + `
FROM (
	SELECT s.customer_id, p.* FROM customer_scores s CROSS JOIN LATERAL (` + placedTiersSQL + `) p
	WHERE s.customer_id = ANY(?::uuid[]) AND ` + liveScoresSQL + `
) n
FULL JOIN (SELECT * FROM customer_tiers WHERE customer_id = ANY(?::uuid[])) o ON o.customer_id = n.customer_id
WHERE (o.value_tier, o.clv_tier, o.usage_tier, o.rfm, o.churn_band)
	IS DISTINCT FROM (n.value_tier, n.clv_tier, n.usage_tier, n.rfm, n.churn_band)`

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

// placement is a customer whose tiers change: the new tiers (none when it has no live scores
// any more) and the stored ones (none when it had none), in the order of crm.BuiltinFamilies.
type placement struct {
	customerID uuid.UUID
	placed     [6]*string
	stored     [6]*string
}

// readPlacements runs one of the moved queries and completes the value class of each new
// placement.
func readPlacements(tx *gorm.DB, out []placement, query string, args ...any) ([]placement, error) {
	rows, err := tx.Raw(query, args...).Rows()
	if err != nil {
		return nil, fmt.Errorf("place customers in built-in segments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p placement
		n, s := &p.placed, &p.stored
		if err := rows.Scan(&p.customerID, &n[0], &n[1], &n[3], &n[4], &n[5], &s[0], &s[1], &s[2], &s[3], &s[4], &s[5]); err != nil {
			return nil, fmt.Errorf("place customers in built-in segments: %w", err)
		}
		if n[0] != nil {
			class := valueClass(*n[0], *n[1])
			n[2] = &class
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("place customers in built-in segments: %w", err)
	}
	return out, nil
}

// valueClass is VIP for value tier A, potential for CLV tier A without value tier A, and mass
// otherwise.
func valueClass(valueTier, clvTier string) string {
	switch {
	case valueTier == "A":
		return "vip"
	case clvTier == "A":
		return "potential"
	default:
		return "mass"
	}
}

// placeEveryone places every scored live customer and takes customers without live scores
// out of every family. Those are found only when the stored tiers outnumber the customers
// that kept theirs, which spares a second pass over a million rows in the usual case.
func placeEveryone(tx *gorm.DB, st *builtinSettings, scored int64, cause string, now time.Time) error {
	args, err := placementArgs(st)
	if err != nil {
		return err
	}
	moved, err := readPlacements(tx, nil, everyoneMovedSQL, args...)
	if err != nil {
		return err
	}
	var stored, added int64
	for _, p := range moved {
		if p.stored[0] == nil {
			added++
		}
	}
	if err := tx.Raw(`SELECT count(*) FROM customer_tiers`).Row().Scan(&stored); err != nil {
		return fmt.Errorf("count placed customers: %w", err)
	}
	if stored > scored-added {
		if moved, err = readPlacements(tx, moved, unscoredTiersSQL); err != nil {
			return err
		}
	}
	return applyPlacements(tx, moved, cause, now)
}

// placeCustomers places the given customers (taking those without live scores out of every
// family).
func placeCustomers(tx *gorm.DB, st *builtinSettings, ids []uuid.UUID, cause string, now time.Time) error {
	args, err := placementArgs(st)
	if err != nil {
		return err
	}
	moved, err := readPlacements(tx, nil, someMovedSQL, append(args, uuidArray(ids), uuidArray(ids))...)
	if err != nil {
		return err
	}
	return applyPlacements(tx, moved, cause, now)
}

// applyPlacementsSQL stores new tiers (keeping the time a customer entered a tier it stays
// in), deletes the tiers of customers without scores, adjusts the member counts and logs the
// moves.
var applyPlacementsSQL = `WITH moves AS (
	SELECT * FROM unnest(?::uuid[], ?::uuid[], ?::text[]) AS m (customer_id, segment_id, change)
), counted AS (
	UPDATE segments g SET member_count = g.member_count + d.n
	FROM (SELECT segment_id, sum(CASE WHEN change = 'entered' THEN 1 ELSE -1 END) AS n FROM moves GROUP BY segment_id) d
	WHERE g.id = d.segment_id
), removed AS (
	DELETE FROM customer_tiers WHERE customer_id = ANY(?::uuid[])
), placed AS (
	INSERT INTO customer_tiers (customer_id, value_tier, value_tier_since, clv_tier, clv_tier_since, value_class, value_class_since,
		usage_tier, usage_tier_since, rfm, rfm_since, churn_band, churn_band_since)
	SELECT customer_id, value_tier, ?, clv_tier, ?, value_class, ?, usage_tier, ?, rfm, ?, churn_band, ?
	FROM unnest(?::uuid[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])
		AS p (customer_id, value_tier, clv_tier, value_class, usage_tier, rfm, churn_band)
	ON CONFLICT (customer_id) DO UPDATE SET
		value_tier = EXCLUDED.value_tier,
		value_tier_since = CASE WHEN customer_tiers.value_tier = EXCLUDED.value_tier THEN customer_tiers.value_tier_since ELSE EXCLUDED.value_tier_since END,
		clv_tier = EXCLUDED.clv_tier,
		clv_tier_since = CASE WHEN customer_tiers.clv_tier = EXCLUDED.clv_tier THEN customer_tiers.clv_tier_since ELSE EXCLUDED.clv_tier_since END,
		value_class = EXCLUDED.value_class,
		value_class_since = CASE WHEN customer_tiers.value_class = EXCLUDED.value_class THEN customer_tiers.value_class_since ELSE EXCLUDED.value_class_since END,
		usage_tier = EXCLUDED.usage_tier,
		usage_tier_since = CASE WHEN customer_tiers.usage_tier = EXCLUDED.usage_tier THEN customer_tiers.usage_tier_since ELSE EXCLUDED.usage_tier_since END,
		rfm = EXCLUDED.rfm,
		rfm_since = CASE WHEN customer_tiers.rfm = EXCLUDED.rfm THEN customer_tiers.rfm_since ELSE EXCLUDED.rfm_since END,
		churn_band = EXCLUDED.churn_band,
		churn_band_since = CASE WHEN customer_tiers.churn_band = EXCLUDED.churn_band THEN customer_tiers.churn_band_since ELSE EXCLUDED.churn_band_since END
)
` + logMembershipsSQL

// applyPlacements writes the placements read by readPlacements: each family whose tier
// changes is a segment left and one entered.
func applyPlacements(tx *gorm.DB, moved []placement, cause string, now time.Time) error {
	if len(moved) == 0 {
		return nil
	}
	var segments []segmentRow
	if err := tx.Where("family <> 'custom'").Find(&segments).Error; err != nil {
		return fmt.Errorf("read built-in segments: %w", err)
	}
	type familyTier struct{ family, tier string }
	segmentOf := make(map[familyTier]uuid.UUID, len(segments))
	for _, g := range segments {
		if g.Tier != nil {
			segmentOf[familyTier{g.Family, *g.Tier}] = g.ID
		}
	}
	var moveCustomers, moveSegments uuidArray
	var moveChanges textArray
	move := func(customerID uuid.UUID, family crm.SegmentFamily, tier *string, change string) {
		if tier == nil {
			return
		}
		if id, ok := segmentOf[familyTier{string(family), *tier}]; ok {
			moveCustomers, moveSegments, moveChanges = append(moveCustomers, customerID), append(moveSegments, id), append(moveChanges, change)
		}
	}
	var removed, placedIDs uuidArray
	var placedTiers [6]textArray
	for _, p := range moved {
		for i, family := range crm.BuiltinFamilies {
			if !equalTier(p.stored[i], p.placed[i]) {
				move(p.customerID, family, p.stored[i], "left")
				move(p.customerID, family, p.placed[i], "entered")
			}
		}
		if p.placed[0] == nil {
			removed = append(removed, p.customerID)
			continue
		}
		placedIDs = append(placedIDs, p.customerID)
		for i, tier := range p.placed {
			placedTiers[i] = append(placedTiers[i], *tier)
		}
	}
	args := []any{moveCustomers, moveSegments, moveChanges, removed, now, now, now, now, now, now, placedIDs}
	for _, tiers := range placedTiers {
		args = append(args, tiers)
	}
	args = append(args, cause, changedAtText(now))
	if err := tx.Exec(applyPlacementsSQL, args...).Error; err != nil {
		return fmt.Errorf("store built-in segment placements: %w", err)
	}
	return nil
}

func equalTier(a, b *string) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// refreshBuiltins recomputes the thresholds and places every scored customer.
func refreshBuiltins(tx *gorm.DB, cause string, now time.Time) error {
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
	scored, err := computeThresholds(tx, st, now)
	if err != nil {
		return err
	}
	if err := placeEveryone(tx, st, scored, cause, now); err != nil {
		return err
	}
	if err := tx.Exec(`UPDATE segments SET refreshed_at = ? WHERE family <> 'custom'`, now).Error; err != nil {
		return fmt.Errorf("stamp built-in segments: %w", err)
	}
	return nil
}

// logMembershipsSQL ends every statement that changes memberships: it writes the statement's
// moves, a CTE moves (customer_id, segment_id, change) with change 'entered' or 'left', to the
// change log as one row per customer: the segments it entered and those it left. A custom
// segment made with a partner key is that subtree's own: its moves are logged apart, under
// the subtree's root instead of the customer's path, so a customer moved to another subtree
// takes no trace of it along. Its arguments are the cause and changedAtText.
const logMembershipsSQL = `INSERT INTO change_log (entity_type, operation, entity_id, customer_id, path, state, actor)
SELECT 'segment_membership', 'updated', x.customer_id, x.customer_id,
	CASE WHEN x.scope_root IS NULL THEN c.ancestors || c.id ELSE ARRAY[x.scope_root] END,
	jsonb_build_object('customer_id', x.customer_id, 'cause', ?::text, 'changed_at', ?::text, 'entered', x.entered, 'left', x.exited),
	change_actor()
FROM (
	SELECT m.customer_id, g.scope_root,
		coalesce(jsonb_agg(jsonb_build_object('id', g.id, 'name', g.name, 'family', g.family)
			ORDER BY g.family, g.name, g.id) FILTER (WHERE m.change = 'entered'), '[]') AS entered,
		coalesce(jsonb_agg(jsonb_build_object('id', g.id, 'name', g.name, 'family', g.family)
			ORDER BY g.family, g.name, g.id) FILTER (WHERE m.change = 'left'), '[]') AS exited
	FROM moves m JOIN segments g ON g.id = m.segment_id
	GROUP BY m.customer_id, g.scope_root
) x
JOIN customers c ON c.id = x.customer_id
WHERE changes_captured()
ORDER BY x.customer_id, x.scope_root NULLS FIRST`

// changedAtText is the time of a membership change as the change log's state holds it.
func changedAtText(now time.Time) string {
	return now.UTC().Format("2006-01-02T15:04:05.000000Z")
}
