package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/pkg/rfm"
)

// segmentRow is the segments table.
type segmentRow struct {
	ID          uuid.UUID
	Family      string
	Tier        *string
	Name        string
	Description string
	Strategy    string
	Definition  *jsonColumn[any]
	ScopeRoot   *uuid.UUID
	MemberCount int64
	RefreshedAt *time.Time
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

func (segmentRow) TableName() string { return "segments" }

func rowFromSegment(s *crm.Segment) segmentRow {
	r := segmentRow{
		ID: s.ID, Family: string(s.Family), Name: s.Name, Description: s.Description, Strategy: s.Strategy,
		ScopeRoot: s.ScopeRoot, MemberCount: s.MemberCount, RefreshedAt: s.RefreshedAt, Version: s.Version,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
	if s.Tier != "" {
		r.Tier = &s.Tier
	}
	if s.Definition != nil {
		r.Definition = &jsonColumn[any]{s.Definition}
	}
	return r
}

func (r *segmentRow) segment() (crm.Segment, error) {
	s := crm.Segment{
		ID: r.ID, Family: crm.SegmentFamily(r.Family), Name: r.Name, Description: r.Description, Strategy: r.Strategy,
		ScopeRoot: r.ScopeRoot, MemberCount: r.MemberCount, RefreshedAt: utcPtr(r.RefreshedAt), Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.Tier != nil {
		s.Tier = *r.Tier
	}
	if r.Definition != nil {
		s.Definition = r.Definition.V
		rule, err := crm.ParseRule(s.Definition, "/definition")
		if err != nil {
			return s, fmt.Errorf("stored rule of segment %s: %w", r.ID, err)
		}
		s.Rule = rule
	}
	return s, nil
}

// tierColumns names each built-in family's column in customer_tiers; a family selects an
// entry, so no request text reaches SQL.
var tierColumns = map[crm.SegmentFamily]string{
	crm.FamilyValueTier:  "value_tier",
	crm.FamilyCLVTier:    "clv_tier",
	crm.FamilyValueClass: "value_class",
	crm.FamilyUsageTier:  "usage_tier",
	crm.FamilyRFM:        "rfm",
	crm.FamilyChurnBand:  "churn_band",
}

// membershipLockSQL serialises the writers of memberships, so two refreshes never diff
// against the same old state.
const membershipLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('centric segment memberships', 0))`

// SegmentStore implements crm.SegmentStore.
type SegmentStore struct {
	db *DB
}

// NewSegmentStore returns a SegmentStore on db.
func NewSegmentStore(db *DB) *SegmentStore { return &SegmentStore{db: db} }

var _ crm.SegmentStore = (*SegmentStore)(nil)

// visibleSegments selects the segments the scope may see: every built-in one, and custom ones
// created under the same root (all of them for an unconfined scope).
func visibleSegments(tx *gorm.DB, scope crm.Scope) *gorm.DB {
	if scope.Root != nil {
		tx = tx.Where("(family <> 'custom' OR scope_root = ?)", *scope.Root)
	}
	return tx
}

// customerScopeSQL is the condition on customers c of a scope.
func customerScopeSQL(scope crm.Scope) (string, []any) {
	if scope.Root == nil {
		return "c.deleted_at IS NULL", nil
	}
	return "c.deleted_at IS NULL AND (c.ancestors @> ARRAY[?]::uuid[] OR c.id = ?)", []any{*scope.Root, *scope.Root}
}

func segmentNotFound(id uuid.UUID) error {
	return crm.Errorf(crm.CodeNotFound, "No segment has id %s.", id)
}

// rfmMap returns the configured RFM segment map, or the default one.
func rfmMap(tx *gorm.DB) ([]rfm.SegmentRule, error) {
	var raw *string
	if err := tx.Raw(`SELECT rfm_map::text FROM segment_settings`).Row().Scan(&raw); err != nil {
		return nil, fmt.Errorf("read segment settings: %w", err)
	}
	return decodeRFMMap(raw)
}

// decodeRFMMap decodes a stored RFM segment map; NULL is the default map.
func decodeRFMMap(raw *string) ([]rfm.SegmentRule, error) {
	if raw == nil {
		return rfm.DefaultSegmentRules(), nil
	}
	var rules []rfm.SegmentRule
	if err := json.Unmarshal([]byte(*raw), &rules); err != nil {
		return nil, fmt.Errorf("decode rfm map: %w", err)
	}
	return rules, nil
}

// EnsureBuiltinSegments creates the built-in segments that do not exist yet.
func (s *SegmentStore) EnsureBuiltinSegments(ctx context.Context, now time.Time) error {
	return s.db.transact(ctx, func(tx *gorm.DB) error {
		return ensureBuiltins(tx, now)
	})
}

func ensureBuiltins(tx *gorm.DB, now time.Time) error {
	rules, err := rfmMap(tx)
	if err != nil {
		return err
	}
	builtins := crm.BuiltinSegments(rules)
	rows := make([]segmentRow, len(builtins))
	for i, b := range builtins {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		tier := b.Tier
		rows[i] = segmentRow{ID: id, Family: string(b.Family), Tier: &tier, Name: b.Name, Description: b.Description,
			Strategy: b.Strategy, Version: 1, CreatedAt: now, UpdatedAt: now}
	}
	err = tx.Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "family"}, {Name: "tier"}}, TargetWhere: clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: "family <> 'custom'"}}}, DoNothing: true}).
		Create(&rows).Error
	if err != nil {
		return fmt.Errorf("create built-in segments: %w", err)
	}
	return nil
}

// CreateSegment stores a custom segment and materialises its members.
func (s *SegmentStore) CreateSegment(ctx context.Context, scope crm.Scope, seg *crm.Segment) error {
	return s.db.transact(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&segmentRow{}).Where("family = 'custom'").Count(&n).Error; err != nil {
			return fmt.Errorf("count custom segments: %w", err)
		}
		if n >= crm.MaxCustomSegments {
			return crm.Errorf(crm.CodeConflict, "There are already %d custom segments, the most there can be; delete one first.", n)
		}
		row := rowFromSegment(seg)
		if err := tx.Create(&row).Error; err != nil {
			return fmt.Errorf("insert segment: %w", err)
		}
		if err := refreshCustom(tx, seg, crm.CauseDefinition, *seg.RefreshedAt); err != nil {
			return err
		}
		return readSegmentInto(tx, scope, seg)
	})
}

// readSegmentInto reloads seg within scope, with the scope's member count.
func readSegmentInto(tx *gorm.DB, scope crm.Scope, seg *crm.Segment) error {
	got, err := readSegment(tx, scope, seg.ID, false)
	if err != nil {
		return err
	}
	*seg = *got
	return nil
}

// readSegment returns a visible segment, optionally locked, with the member count the scope
// sees: the stored count for an unconfined scope, counted otherwise.
func readSegment(tx *gorm.DB, scope crm.Scope, id uuid.UUID, lock bool) (*crm.Segment, error) {
	q := visibleSegments(tx, scope).Where("id = ?", id)
	if lock {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	var row segmentRow
	err := q.Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, segmentNotFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read segment %s: %w", id, err)
	}
	seg, err := row.segment()
	if err != nil {
		return nil, err
	}
	if scope.Root != nil {
		if seg.MemberCount, err = countMembers(tx, scope, &seg); err != nil {
			return nil, err
		}
	}
	return &seg, nil
}

// membersSQL returns a query of the members of seg within scope as (customer_id, entered_at).
func membersSQL(scope crm.Scope, seg *crm.Segment) (string, []any) {
	cond, args := customerScopeSQL(scope)
	if seg.Builtin() {
		col := tierColumns[seg.Family]
		return fmt.Sprintf(`SELECT t.customer_id, t.%s_since AS entered_at FROM customer_tiers t JOIN customers c ON c.id = t.customer_id
			WHERE t.%s = ? AND %s`, col, col, cond), append([]any{seg.Tier}, args...)
	}
	return fmt.Sprintf(`SELECT m.customer_id, m.entered_at FROM segment_members m JOIN customers c ON c.id = m.customer_id
		WHERE m.segment_id = ? AND %s`, cond), append([]any{seg.ID}, args...)
}

func countMembers(tx *gorm.DB, scope crm.Scope, seg *crm.Segment) (int64, error) {
	q, args := membersSQL(scope, seg)
	var n int64
	if err := tx.Raw("SELECT count(*) FROM ("+q+") m", args...).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("count members of %s: %w", seg.ID, err)
	}
	return n, nil
}

// Segment returns a visible segment.
func (s *SegmentStore) Segment(ctx context.Context, scope crm.Scope, id uuid.UUID) (*crm.Segment, error) {
	return readSegment(s.db.session(ctx), scope, id, false)
}

// ListSegments returns one page of visible segments, built-in ones first, keyset-paginated on
// (custom, created_at, id).
func (s *SegmentStore) ListSegments(ctx context.Context, scope crm.Scope, f crm.SegmentFilter) (crm.SegmentPage, error) {
	page := f.Page
	f.Page = crm.PageRequest{}
	list := fingerprint(struct {
		F crm.SegmentFilter
		S crm.Scope
		L string
	}{f, scope, "segments"})
	after, err := decodeCursor(page.Cursor, list)
	if err != nil {
		return crm.SegmentPage{}, err
	}
	const order = "(family = 'custom'), created_at, id"
	q := visibleSegments(s.db.session(ctx), scope)
	if f.Family != "" {
		q = q.Where("family = ?", string(f.Family))
	}
	if after != nil {
		if after.Text == nil || after.Time == nil {
			return crm.SegmentPage{}, crm.Invalid(crm.FieldError{Pointer: "query:cursor", Message: "does not match the list"})
		}
		q = q.Where("((family = 'custom'), created_at, id) > (?::boolean, ?, ?)", *after.Text, *after.Time, after.ID)
	}
	limit := page.LimitOrDefault()
	var rows []segmentRow
	if err := q.Order(order).Limit(limit + 1).Find(&rows).Error; err != nil {
		return crm.SegmentPage{}, fmt.Errorf("list segments: %w", err)
	}
	out := crm.SegmentPage{Segments: make([]crm.Segment, 0, min(len(rows), limit))}
	for i := range rows[:min(len(rows), limit)] {
		seg, err := rows[i].segment()
		if err != nil {
			return crm.SegmentPage{}, err
		}
		if scope.Root != nil {
			if seg.MemberCount, err = countMembers(s.db.session(ctx), scope, &seg); err != nil {
				return crm.SegmentPage{}, err
			}
		}
		out.Segments = append(out.Segments, seg)
	}
	if len(rows) > limit {
		last := rows[limit-1]
		custom := strconv.FormatBool(last.Family == string(crm.FamilyCustom))
		t := last.CreatedAt.UTC()
		out.NextCursor = encodeCursor(cursor{List: list, Text: &custom, Time: &t, ID: last.ID})
	}
	return out, nil
}

// UpdateSegment locks the segment, applies update, stores it, and rematerialises a custom
// segment whose rule changed.
func (s *SegmentStore) UpdateSegment(ctx context.Context, scope crm.Scope, id uuid.UUID, update func(*crm.Segment) error) (*crm.Segment, error) {
	var out *crm.Segment
	err := s.db.transact(ctx, func(tx *gorm.DB) error {
		seg, err := readSegment(tx, scope, id, true)
		if err != nil {
			return err
		}
		oldDefinition, _ := json.Marshal(seg.Definition)
		if err := update(seg); err != nil {
			return err
		}
		row := rowFromSegment(seg)
		err = tx.Model(&row).Select("name", "description", "strategy", "definition", "version", "updated_at").Updates(&row).Error
		if err != nil {
			return fmt.Errorf("update segment: %w", err)
		}
		if newDefinition, _ := json.Marshal(seg.Definition); !seg.Builtin() && string(newDefinition) != string(oldDefinition) {
			if err := refreshCustom(tx, seg, crm.CauseDefinition, seg.UpdatedAt); err != nil {
				return err
			}
		}
		out, err = readSegment(tx, scope, id, false)
		return err
	})
	return out, err
}

// DeleteSegment deletes a custom segment and its members; the members are recorded as having
// left it.
func (s *SegmentStore) DeleteSegment(ctx context.Context, scope crm.Scope, id uuid.UUID, check func(*crm.Segment) error) error {
	return s.db.transact(ctx, func(tx *gorm.DB) error {
		seg, err := readSegment(tx, scope, id, true)
		if err != nil {
			return err
		}
		if err := check(seg); err != nil {
			return err
		}
		if err := tx.Exec(membershipLockSQL).Error; err != nil {
			return fmt.Errorf("lock memberships: %w", err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		err = tx.Exec(`WITH gone AS (DELETE FROM segment_members WHERE segment_id = ? RETURNING customer_id),
			moves AS (SELECT customer_id, ?::uuid AS segment_id, 'left' AS change FROM gone)
			`+logMembershipsSQL, id, id, crm.CauseDefinition, changedAtText(now)).Error
		if err != nil {
			return fmt.Errorf("remove members of %s: %w", id, err)
		}
		if err := tx.Where("id = ?", id).Delete(&segmentRow{}).Error; err != nil {
			return fmt.Errorf("delete segment %s: %w", id, err)
		}
		return nil
	})
}

// refreshCustom recomputes a custom segment's members in one statement: the rule's current
// selection is diffed against the stored members, every difference is recorded as a change,
// and the members and count are updated.
func refreshCustom(tx *gorm.DB, seg *crm.Segment, cause string, now time.Time) error {
	if err := tx.Exec(membershipLockSQL).Error; err != nil {
		return fmt.Errorf("lock memberships: %w", err)
	}
	if err := withoutJIT(tx); err != nil {
		return err
	}
	pred, err := compileRule(seg.Rule)
	if err != nil {
		return err
	}
	cond, scopeArgs := customerScopeSQL(crm.Scope{Root: seg.ScopeRoot})
	args := append(append(scopeArgs, pred.args...), seg.ID, now, seg.ID, seg.ID, seg.ID, now, seg.ID, cause, changedAtText(now))
	err = tx.Exec(fmt.Sprintf(`WITH selected AS (
			SELECT c.id FROM %s WHERE %s AND %s
		), d AS MATERIALIZED (
			SELECT coalesce(n.id, o.customer_id) AS customer_id, n.id IS NOT NULL AS entered
			FROM selected n FULL JOIN (SELECT customer_id FROM segment_members WHERE segment_id = ?) o ON o.customer_id = n.id
			WHERE n.id IS NULL OR o.customer_id IS NULL
		), counted AS (
			UPDATE segments SET member_count = member_count + (SELECT count(*) FILTER (WHERE entered) - count(*) FILTER (WHERE NOT entered) FROM d),
				refreshed_at = ? WHERE id = ?
		), removed AS (
			DELETE FROM segment_members m USING d WHERE m.segment_id = ? AND m.customer_id = d.customer_id AND NOT d.entered
		), added AS (
			INSERT INTO segment_members (customer_id, segment_id, entered_at) SELECT customer_id, ?, ? FROM d WHERE entered
		), moves AS (
			SELECT customer_id, ?::uuid AS segment_id, CASE WHEN entered THEN 'entered' ELSE 'left' END AS change FROM d
		)
		`+logMembershipsSQL, pred.from(), cond, pred.sql), args...).Error
	if err != nil {
		return fmt.Errorf("refresh segment %s: %w", seg.ID, err)
	}
	return nil
}

// withoutJIT turns off JIT compilation for the rest of the transaction: compiling the wide
// membership statements costs more than it saves (1.9 s of an 8 s refresh of 1,000,000
// customers, with LLVM optimisation triggered by their cost).
func withoutJIT(tx *gorm.DB) error {
	if err := tx.Exec("SET LOCAL jit = off").Error; err != nil {
		return fmt.Errorf("turn off jit: %w", err)
	}
	return nil
}

// builtinSettings are the settings and thresholds of the built-in families.
type builtinSettings struct {
	UsageMediumFrom *int
	UsageHeavyFrom  *int
	RFMMap          *string `gorm:"column:rfm_map"`
	ValueAMin       *string `gorm:"column:value_a_min"`
	ValueBMin       *string `gorm:"column:value_b_min"`
	CLVAMin         *string `gorm:"column:clv_a_min"`
	CLVBMin         *string `gorm:"column:clv_b_min"`
	UsageLightMax   *float64
	UsageMediumMax  *float64
	RefreshedAt     *time.Time
}

func (builtinSettings) TableName() string { return "segment_settings" }

func readBuiltinSettings(tx *gorm.DB) (*builtinSettings, error) {
	var st builtinSettings
	if err := tx.Take(&st).Error; err != nil {
		return nil, fmt.Errorf("read segment settings: %w", err)
	}
	return &st, nil
}

// RefreshSegment recomputes a custom segment, or every built-in family for a built-in one.
func (s *SegmentStore) RefreshSegment(ctx context.Context, scope crm.Scope, id uuid.UUID, now time.Time) (*crm.Segment, error) {
	var out *crm.Segment
	err := s.db.transact(ctx, func(tx *gorm.DB) error {
		seg, err := readSegment(tx, scope, id, false)
		if err != nil {
			return err
		}
		if seg.Builtin() {
			err = refreshBuiltins(tx, crm.CauseRefresh, now, false)
		} else {
			err = refreshCustom(tx, seg, crm.CauseRefresh, now)
		}
		if err != nil {
			return err
		}
		out, err = readSegment(tx, scope, id, false)
		return err
	})
	return out, err
}

// RefreshAllSegments recomputes every built-in family, placing every customer again, and
// every custom segment, in one transaction.
func (s *SegmentStore) RefreshAllSegments(ctx context.Context, cause string, now time.Time) error {
	return s.db.transact(ctx, func(tx *gorm.DB) error {
		if err := refreshBuiltins(tx, cause, now, true); err != nil {
			return err
		}
		customs, err := customSegments(tx)
		if err != nil {
			return err
		}
		for i := range customs {
			if err := refreshCustom(tx, &customs[i], cause, now); err != nil {
				return err
			}
		}
		return nil
	})
}

func customSegments(tx *gorm.DB) ([]crm.Segment, error) {
	var rows []segmentRow
	if err := tx.Where("family = 'custom'").Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read custom segments: %w", err)
	}
	out := make([]crm.Segment, len(rows))
	for i := range rows {
		seg, err := rows[i].segment()
		if err != nil {
			return nil, err
		}
		out[i] = seg
	}
	return out, nil
}

// UpdateMemberships re-evaluates the given customers against every custom rule in one
// statement. Their built-in families were placed with their scores (placeRescored).
func (s *SegmentStore) UpdateMemberships(ctx context.Context, customerIDs []uuid.UUID, now time.Time) error {
	return s.db.transact(ctx, func(tx *gorm.DB) error {
		customs, err := customSegments(tx)
		if err != nil || len(customs) == 0 {
			return err
		}
		if err := tx.Exec(membershipLockSQL).Error; err != nil {
			return fmt.Errorf("lock memberships: %w", err)
		}
		return reevaluateCustom(tx, customs, customerIDs, crm.CauseRescore, now)
	})
}

// UpdateSubtreeMemberships re-evaluates a customer and everyone below it against every custom
// segment, in one statement.
func (s *SegmentStore) UpdateSubtreeMemberships(ctx context.Context, customerID uuid.UUID, now time.Time) error {
	return s.db.transact(ctx, func(tx *gorm.DB) error {
		customs, err := customSegments(tx)
		if err != nil || len(customs) == 0 {
			return err
		}
		var ids []uuid.UUID
		err = tx.Raw(`SELECT id FROM customers WHERE id = ? OR ancestors @> ARRAY[?]::uuid[]`, customerID, customerID).Scan(&ids).Error
		if err != nil {
			return fmt.Errorf("read subtree of %s: %w", customerID, err)
		}
		if err := tx.Exec(membershipLockSQL).Error; err != nil {
			return fmt.Errorf("lock memberships: %w", err)
		}
		return reevaluateCustom(tx, customs, ids, crm.CauseProfile, now)
	})
}

// reevaluateCustom evaluates every custom rule for the given customers in one statement and
// applies the differences to their memberships.
func reevaluateCustom(tx *gorm.DB, customs []crm.Segment, ids []uuid.UUID, cause string, now time.Time) error {
	var branches []string
	var args []any
	segmentIDs := make(uuidArray, len(customs))
	for i := range customs {
		seg := &customs[i]
		segmentIDs[i] = seg.ID
		pred, err := compileRule(seg.Rule)
		if err != nil {
			return err
		}
		cond, scopeArgs := customerScopeSQL(crm.Scope{Root: seg.ScopeRoot})
		branches = append(branches, fmt.Sprintf("SELECT ?::uuid AS segment_id, c.id FROM %s WHERE c.id = ANY(?::uuid[]) AND %s AND %s", pred.from(), cond, pred.sql))
		args = append(args, seg.ID, uuidArray(ids))
		args = append(args, scopeArgs...)
		args = append(args, pred.args...)
	}
	args = append(args, segmentIDs, uuidArray(ids), now, cause, changedAtText(now))
	err := tx.Exec(fmt.Sprintf(`WITH selected AS (%s
		), d AS MATERIALIZED (
			SELECT coalesce(n.segment_id, o.segment_id) AS segment_id, coalesce(n.id, o.customer_id) AS customer_id, n.id IS NOT NULL AS entered
			FROM selected n
			FULL JOIN (SELECT segment_id, customer_id FROM segment_members WHERE segment_id = ANY(?::uuid[]) AND customer_id = ANY(?::uuid[])) o
				ON o.segment_id = n.segment_id AND o.customer_id = n.id
			WHERE n.id IS NULL OR o.customer_id IS NULL
		), counted AS (
			UPDATE segments g SET member_count = g.member_count + delta.n
			FROM (SELECT segment_id, sum(CASE WHEN entered THEN 1 ELSE -1 END) AS n FROM d GROUP BY segment_id) delta
			WHERE g.id = delta.segment_id
		), removed AS (
			DELETE FROM segment_members m USING d WHERE m.segment_id = d.segment_id AND m.customer_id = d.customer_id AND NOT d.entered
		), added AS (
			INSERT INTO segment_members (customer_id, segment_id, entered_at) SELECT customer_id, segment_id, ? FROM d WHERE entered
		), moves AS (
			SELECT customer_id, segment_id, CASE WHEN entered THEN 'entered' ELSE 'left' END AS change FROM d
		)
		`+logMembershipsSQL, strings.Join(branches, "\n\t\tUNION ALL ")), args...).Error
	if err != nil {
		return fmt.Errorf("re-evaluate custom segments: %w", err)
	}
	return nil
}

// PreviewRule counts the customers in scope a rule selects and returns the first of them by
// id.
func (s *SegmentStore) PreviewRule(ctx context.Context, scope crm.Scope, r *crm.Rule, limit int) (*crm.Preview, error) {
	pred, err := compileRule(r)
	if err != nil {
		return nil, err
	}
	cond, scopeArgs := customerScopeSQL(scope)
	args := append(scopeArgs, pred.args...)
	out := &crm.Preview{}
	err = s.db.transact(ctx, func(tx *gorm.DB) error {
		if err := withoutJIT(tx); err != nil {
			return err
		}
		if err := tx.Raw(fmt.Sprintf("SELECT count(*) FROM %s WHERE %s AND %s", pred.from(), cond, pred.sql), args...).Scan(&out.Count).Error; err != nil {
			return fmt.Errorf("count rule selection: %w", err)
		}
		var rows []customerRow
		err := tx.Raw(fmt.Sprintf("SELECT c.* FROM %s WHERE %s AND %s ORDER BY c.id LIMIT ?", pred.from(), cond, pred.sql), append(args, limit)...).Scan(&rows).Error
		if err != nil {
			return fmt.Errorf("read rule selection: %w", err)
		}
		out.Customers, err = decorateCustomers(tx, scope, rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decorateCustomers turns rows into customers with their scores and segments.
func decorateCustomers(tx *gorm.DB, scope crm.Scope, rows []customerRow) ([]crm.Customer, error) {
	ids := make([]uuid.UUID, len(rows))
	for i := range rows {
		ids[i] = rows[i].ID
	}
	scores, err := scoreSummaries(tx, ids)
	if err != nil {
		return nil, err
	}
	refs, err := segmentRefs(tx, scope, ids)
	if err != nil {
		return nil, err
	}
	out := make([]crm.Customer, len(rows))
	confined := make([]*crm.Customer, len(rows))
	for i := range rows {
		out[i] = rows[i].customer()
		out[i].Scores = scores[rows[i].ID]
		out[i].Segments = refs[rows[i].ID]
		confined[i] = &out[i]
	}
	if err := confineCustomers(tx, scope, confined...); err != nil {
		return nil, err
	}
	return out, nil
}

// segmentRefs returns the visible segments each of the given customers belongs to.
func segmentRefs(tx *gorm.DB, scope crm.Scope, ids []uuid.UUID) (map[uuid.UUID][]crm.SegmentRef, error) {
	out := make(map[uuid.UUID][]crm.SegmentRef, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	visible, args := "true", []any{uuidArray(ids), uuidArray(ids)}
	if scope.Root != nil {
		visible = "g.scope_root = ?"
		args = append(args, *scope.Root)
	}
	var rows []struct {
		CustomerID uuid.UUID
		ID         uuid.UUID
		Name       string
		Family     string
	}
	err := tx.Raw(fmt.Sprintf(`SELECT t.customer_id, g.id, g.name, g.family, 0 AS custom, g.created_at FROM customer_tiers t
		CROSS JOIN LATERAL (VALUES ('value_tier', t.value_tier), ('clv_tier', t.clv_tier), ('value_class', t.value_class),
			('usage_tier', t.usage_tier), ('rfm', t.rfm), ('churn_band', t.churn_band)) f (family, tier)
		JOIN segments g ON g.family = f.family AND g.tier = f.tier
		WHERE t.customer_id = ANY(?::uuid[])
		UNION ALL
		SELECT m.customer_id, g.id, g.name, g.family, 1, g.created_at FROM segment_members m JOIN segments g ON g.id = m.segment_id
		WHERE m.customer_id = ANY(?::uuid[]) AND %s
		ORDER BY 5, 6, 2`, visible), args...).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read segments of customers: %w", err)
	}
	for _, r := range rows {
		out[r.CustomerID] = append(out[r.CustomerID], crm.SegmentRef{ID: r.ID, Name: r.Name, Family: crm.SegmentFamily(r.Family)})
	}
	return out, nil
}

// memberSort describes how a member list is ordered.
type memberSort struct {
	expr string
	cast string
	desc bool
}

func memberSortOf(sort crm.MemberSort) memberSort {
	desc := strings.HasPrefix(string(sort), "-") || sort == ""
	switch strings.TrimPrefix(string(sort), "-") {
	case "churn_risk":
		return memberSort{expr: "coalesce(s.churn_risk, 0)", cast: "float8", desc: desc}
	case "net_value":
		return memberSort{expr: "coalesce(s.net_value, 0)", cast: "numeric", desc: desc}
	default:
		return memberSort{expr: "coalesce(s.clv, 0)", cast: "numeric", desc: desc}
	}
}

// ListMembers returns one page of a segment's members within scope, keyset-paginated on
// (sort key, customer id).
func (s *SegmentStore) ListMembers(ctx context.Context, scope crm.Scope, id uuid.UUID, f crm.MemberFilter) (crm.MemberPage, error) {
	tx := s.db.session(ctx)
	seg, err := readSegment(tx, scope, id, false)
	if err != nil {
		return crm.MemberPage{}, err
	}
	page := f.Page
	f.Page = crm.PageRequest{}
	list := fingerprint(struct {
		F  crm.MemberFilter
		S  crm.Scope
		ID uuid.UUID
	}{f, scope, id})
	after, err := decodeCursor(page.Cursor, list)
	if err != nil {
		return crm.MemberPage{}, err
	}
	members, args := membersSQL(scope, seg)
	order := memberSortOf(f.Sort)
	cmp, dir := ">", "ASC"
	if order.desc {
		cmp, dir = "<", "DESC"
	}
	where := "true"
	if after != nil {
		if after.Text == nil {
			return crm.MemberPage{}, crm.Invalid(crm.FieldError{Pointer: "query:cursor", Message: "does not match the sort"})
		}
		where = fmt.Sprintf("(%s, c.id) %s (?::%s, ?)", order.expr, cmp, order.cast)
		args = append(args, *after.Text, after.ID)
	}
	limit := page.LimitOrDefault()
	var rows []customerRow
	err = tx.Raw(fmt.Sprintf(`SELECT c.*, m.entered_at, (%s)::text AS sort_key
		FROM (%s) m JOIN customers c ON c.id = m.customer_id LEFT JOIN customer_scores s ON s.customer_id = c.id
		WHERE %s ORDER BY %s %s, c.id %s LIMIT ?`, order.expr, members, where, order.expr, dir, dir), append(args, limit+1)...).Scan(&rows).Error
	if err != nil {
		return crm.MemberPage{}, fmt.Errorf("list members of %s: %w", id, err)
	}
	pageRows := rows[:min(len(rows), limit)]
	decorated, err := decorateCustomers(tx, scope, pageRows)
	if err != nil {
		return crm.MemberPage{}, err
	}
	out := crm.MemberPage{Members: make([]crm.Member, len(pageRows))}
	for i := range pageRows {
		out.Members[i] = crm.Member{Customer: decorated[i]}
		if pageRows[i].EnteredAt != nil {
			out.Members[i].EnteredAt = pageRows[i].EnteredAt.UTC()
		}
	}
	if len(rows) > limit {
		last := rows[limit-1]
		out.NextCursor = encodeCursor(cursor{List: list, Text: last.SortKey, ID: last.ID})
	}
	return out, nil
}

// memberFilterSQL returns the condition on customers.id that keeps the members of a segment,
// for the customer list's segment filter.
func memberFilterSQL(tx *gorm.DB, scope crm.Scope, id uuid.UUID) (string, []any, error) {
	seg, err := readSegment(tx, scope, id, false)
	if crm.ErrorCodeOf(err) == crm.CodeNotFound {
		return "", nil, crm.Invalid(crm.FieldError{Pointer: "query:segment_id", Message: "names no segment this API key can see"})
	}
	if err != nil {
		return "", nil, err
	}
	if seg.Builtin() {
		col := tierColumns[seg.Family]
		return fmt.Sprintf("customers.id IN (SELECT customer_id FROM customer_tiers WHERE %s = ?)", col), []any{seg.Tier}, nil
	}
	return "customers.id IN (SELECT customer_id FROM segment_members WHERE segment_id = ?)", []any{seg.ID}, nil
}

// summaryRow is the aggregate of one set of customers.
type summaryRow struct {
	Members     int64
	Scored      int64
	Revenue     string
	NetValue    string
	TotalCLV    string `gorm:"column:total_clv"`
	AverageCLV  *string
	AverageRisk *float64
	Established int64
	Retained    int64
	Purchases   int64
	Currency    *string
	// AverageOrderValue is revenue per purchase occasion.
	AverageOrderValue *string
}

// summarySelect aggregates the customers c with their scores s; ? is the instant one year
// before now, twice.
const summarySelect = `SELECT count(*) AS members, count(s.customer_id) AS scored,
	round(coalesce(sum(s.revenue), 0), 2)::text AS revenue, round(coalesce(sum(s.net_value), 0), 2)::text AS net_value,
	round(sum(s.revenue) / nullif(sum(s.purchases), 0), 2)::text AS average_order_value,
	round(coalesce(sum(s.clv), 0), 2)::text AS total_clv, round(avg(s.clv), 2)::text AS average_clv,
	avg(s.churn_risk) AS average_risk,
	count(*) FILTER (WHERE s.first_purchase_at < ?) AS established,
	count(*) FILTER (WHERE s.first_purchase_at < ? AND s.last_purchase_at >= ?) AS retained,
	coalesce(sum(s.purchases), 0) AS purchases, min(s.currency) AS currency`

// SegmentSummaries describes the given segments within scope, each against the totals of
// every live customer in scope.
func (s *SegmentStore) SegmentSummaries(ctx context.Context, scope crm.Scope, ids []uuid.UUID, now time.Time) ([]crm.SegmentSummary, error) {
	tx := s.db.session(ctx)
	yearAgo := now.AddDate(-1, 0, 0)
	cond, scopeArgs := customerScopeSQL(scope)
	var total summaryRow
	err := tx.Raw(summarySelect+" FROM customers c LEFT JOIN customer_scores s ON s.customer_id = c.id WHERE "+cond,
		append([]any{yearAgo, yearAgo, yearAgo}, scopeArgs...)...).Scan(&total).Error
	if err != nil {
		return nil, fmt.Errorf("summarise customers: %w", err)
	}
	out := make([]crm.SegmentSummary, 0, len(ids))
	for _, id := range ids {
		seg, err := readSegment(tx, scope, id, false)
		if err != nil {
			return nil, err
		}
		members, args := membersSQL(scope, seg)
		var r summaryRow
		err = tx.Raw(summarySelect+" FROM ("+members+") m JOIN customers c ON c.id = m.customer_id LEFT JOIN customer_scores s ON s.customer_id = c.id",
			append([]any{yearAgo, yearAgo, yearAgo}, args...)...).Scan(&r).Error
		if err != nil {
			return nil, fmt.Errorf("summarise segment %s: %w", id, err)
		}
		out = append(out, summaryOf(seg, r, total, now))
	}
	return out, nil
}

func summaryOf(seg *crm.Segment, r, total summaryRow, now time.Time) crm.SegmentSummary {
	out := crm.SegmentSummary{
		SegmentID: seg.ID, Name: seg.Name, Family: seg.Family, Members: r.Members, ScoredMembers: r.Scored,
		Revenue: r.Revenue, NetValue: r.NetValue, AverageOrderValue: r.AverageOrderValue, TotalCLV: r.TotalCLV, AverageCLV: r.AverageCLV,
		AverageChurnRisk: r.AverageRisk, AsOf: now,
	}
	if r.Currency != nil {
		out.Currency = *r.Currency
	} else if total.Currency != nil {
		out.Currency = *total.Currency
	}
	out.ShareOfCustomers = ratio(float64(r.Members), float64(total.Members))
	out.RevenueShare = ratio(parseFloat(r.Revenue), parseFloat(total.Revenue))
	out.NetValueShare = ratio(parseFloat(r.NetValue), parseFloat(total.NetValue))
	if r.Established > 0 {
		rate := float64(r.Retained) / float64(r.Established)
		out.RetentionRate = &rate
	}
	if r.Scored > 0 {
		freq := float64(r.Purchases) / float64(r.Scored)
		out.AverageFrequency = &freq
	}
	return out
}

func ratio(part, whole float64) float64 {
	if whole == 0 {
		return 0
	}
	return part / whole
}

func parseFloat(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

var _ crm.SegmentSettingsStore = (*SegmentStore)(nil)

// SegmentSettings returns the settings of the built-in families.
func (s *SegmentStore) SegmentSettings(ctx context.Context) (*crm.SegmentSettings, error) {
	st, err := readBuiltinSettings(s.db.session(ctx))
	if err != nil {
		return nil, err
	}
	return settingsOf(st)
}

func settingsOf(st *builtinSettings) (*crm.SegmentSettings, error) {
	rules, err := decodeRFMMap(st.RFMMap)
	if err != nil {
		return nil, err
	}
	out := &crm.SegmentSettings{
		RFMMap: rules,
		Thresholds: crm.TierThresholds{
			ValueAMin: st.ValueAMin, ValueBMin: st.ValueBMin, CLVAMin: st.CLVAMin, CLVBMin: st.CLVBMin,
			UsageLightMax: st.UsageLightMax, UsageMediumMax: st.UsageMediumMax,
		},
		RefreshedAt: utcPtr(st.RefreshedAt),
	}
	if st.UsageMediumFrom != nil && st.UsageHeavyFrom != nil {
		out.Usage = &crm.UsageThresholds{MediumFrom: *st.UsageMediumFrom, HeavyFrom: *st.UsageHeavyFrom}
	}
	return out, nil
}

// UpdateSegmentSettings stores the settings, refreshes every built-in family with them, and
// removes the RFM segments the new map no longer names once their members have left them.
func (s *SegmentStore) UpdateSegmentSettings(ctx context.Context, in *crm.SegmentSettings, now time.Time) (*crm.SegmentSettings, error) {
	var out *crm.SegmentSettings
	err := s.db.transact(ctx, func(tx *gorm.DB) error {
		if err := tx.Exec(membershipLockSQL).Error; err != nil {
			return fmt.Errorf("lock memberships: %w", err)
		}
		rfmJSON, err := json.Marshal(in.RFMMap)
		if err != nil {
			return fmt.Errorf("encode rfm map: %w", err)
		}
		var mediumFrom, heavyFrom *int
		if in.Usage != nil {
			mediumFrom, heavyFrom = &in.Usage.MediumFrom, &in.Usage.HeavyFrom
		}
		err = tx.Exec(`UPDATE segment_settings SET usage_medium_from = ?, usage_heavy_from = ?, rfm_map = ?::jsonb, version = version + 1`,
			mediumFrom, heavyFrom, string(rfmJSON)).Error
		if err != nil {
			return fmt.Errorf("store segment settings: %w", err)
		}
		if err := refreshBuiltins(tx, crm.CauseDefinition, now, true); err != nil {
			return err
		}
		names := textArray{rfm.OtherSegment}
		for _, r := range in.RFMMap {
			names = append(names, r.Name)
		}
		if err := tx.Exec(`DELETE FROM segments WHERE family = 'rfm' AND NOT (tier = ANY(?::text[]))`, names).Error; err != nil {
			return fmt.Errorf("remove rfm segments: %w", err)
		}
		st, err := readBuiltinSettings(tx)
		if err != nil {
			return err
		}
		out, err = settingsOf(st)
		return err
	})
	return out, err
}

// leaveAllSegments takes a deleted customer out of every segment, recording that it left each
// one and lowering the member counts, and out of the value distribution of the tier
// thresholds, in the deleting transaction.
func leaveAllSegments(tx *gorm.DB, customerID uuid.UUID, now time.Time) error {
	if err := tx.Exec(membershipLockSQL).Error; err != nil {
		return fmt.Errorf("lock memberships: %w", err)
	}
	err := tx.Exec(`WITH moved_values AS (
			SELECT customer_id, -1 AS sign, net_value, clv, purchases FROM customer_scores WHERE customer_id = ?
		) `+moveBucketsSQL, customerID).Error
	if err != nil {
		return fmt.Errorf("take %s out of the value distribution: %w", customerID, err)
	}
	err = tx.Exec(`WITH tiers AS (
			DELETE FROM customer_tiers WHERE customer_id = ? RETURNING *
		), custom AS (
			DELETE FROM segment_members WHERE customer_id = ? RETURNING segment_id
		), moves AS MATERIALIZED (
			SELECT ?::uuid AS customer_id, g.id AS segment_id, 'left' AS change FROM tiers t
			CROSS JOIN LATERAL (VALUES ('value_tier', t.value_tier), ('clv_tier', t.clv_tier), ('value_class', t.value_class),
				('usage_tier', t.usage_tier), ('rfm', t.rfm), ('churn_band', t.churn_band)) f (family, tier)
			JOIN segments g ON g.family = f.family AND g.tier = f.tier
			UNION ALL
			SELECT ?::uuid, m.segment_id, 'left' FROM custom m
		), counted AS (
			UPDATE segments SET member_count = member_count - 1 WHERE id IN (SELECT segment_id FROM moves)
		)
		`+logMembershipsSQL, customerID, customerID, customerID, customerID, crm.CauseDeleted, changedAtText(now)).Error
	if err != nil {
		return fmt.Errorf("remove %s from its segments: %w", customerID, err)
	}
	return nil
}
