package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/centric-crm/centric/internal/crm"
)

// changeRow is one row of the change log with the name of the key that made it.
type changeRow struct {
	XID           string `gorm:"column:xid"`
	Seq           int64
	EntityType    string
	Operation     string
	EntityID      uuid.UUID
	CustomerID    uuid.UUID
	State         []byte
	ChangedFields textArray
	Actor         *uuid.UUID
	ActorName     *string
	ChangedAt     time.Time
}

// inFeedOf is the condition that a change log row l is in scope's feed: within the subtree,
// and a tombstone a customer left behind when it was moved only in the subtrees it left.
func inFeedOf(scope crm.Scope) clause.Expr {
	if scope.Root == nil {
		return gorm.Expr("l.moved_to IS NULL")
	}
	return gorm.Expr("l.path @> ARRAY[?]::uuid[] AND (l.moved_to IS NULL OR NOT l.moved_to @> ARRAY[?]::uuid[])", *scope.Root, *scope.Root)
}

// changeColumns selects a changeRow.
const changeColumns = `l.xid::text AS xid, l.seq, l.entity_type, l.operation, l.entity_id, l.customer_id,
	l.state, l.changed_fields, l.actor, k.name AS actor_name, l.changed_at`

// customerState is a customers row as to_jsonb writes it into the change log.
type customerState struct {
	ID                  uuid.UUID         `json:"id"`
	Kind                string            `json:"kind"`
	Role                *string           `json:"role"`
	ParentID            *uuid.UUID        `json:"parent_id"`
	Ancestors           []uuid.UUID       `json:"ancestors"`
	Name                *string           `json:"name"`
	Email               *string           `json:"email"`
	Phone               *string           `json:"phone"`
	Country             *string           `json:"country"`
	Industry            *string           `json:"industry"`
	Tags                []string          `json:"tags"`
	Attributes          map[string]any    `json:"attributes"`
	Owner               *string           `json:"owner"`
	AcquiredAt          *time.Time        `json:"acquired_at"`
	AcquisitionChannel  *string           `json:"acquisition_channel"`
	AcquisitionCost     *json.Number      `json:"acquisition_cost"`
	AcquisitionCurrency *string           `json:"acquisition_currency"`
	ReferredBy          *uuid.UUID        `json:"referred_by"`
	ExternalRefs        []crm.ExternalRef `json:"external_refs"`
	Version             int64             `json:"version"`
	CreatedAt           time.Time         `json:"created_at"`
	UpdatedAt           time.Time         `json:"updated_at"`
}

func (s *customerState) customer() crm.Customer {
	row := customerRow{
		ID: s.ID, Kind: s.Kind, Role: s.Role, ParentID: s.ParentID, Ancestors: s.Ancestors,
		Name: s.Name, Email: s.Email, Phone: s.Phone, Country: s.Country, Industry: s.Industry,
		Tags: s.Tags, Attributes: jsonColumn[map[string]any]{s.Attributes}, Owner: s.Owner,
		AcquiredAt: s.AcquiredAt, AcquisitionChannel: s.AcquisitionChannel,
		AcquisitionCurrency: s.AcquisitionCurrency, ReferredBy: s.ReferredBy,
		ExternalRefs: jsonColumn[[]crm.ExternalRef]{s.ExternalRefs}, Version: s.Version,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
	if s.AcquisitionCost != nil {
		cost := s.AcquisitionCost.String()
		row.AcquisitionCost = &cost
	}
	return row.customer()
}

// transactionState is a transactions row as to_jsonb writes it into the change log.
type transactionState struct {
	ID         uuid.UUID `json:"id"`
	CustomerID uuid.UUID `json:"customer_id"`
	Source     *string   `json:"source"`
	ExternalID *string   `json:"external_id"`
}

// membershipState is a membership change as logMembershipsSQL writes it into the change log.
type membershipState struct {
	CustomerID uuid.UUID          `json:"customer_id"`
	Cause      string             `json:"cause"`
	ChangedAt  time.Time          `json:"changed_at"`
	Entered    membershipSegments `json:"entered"`
	Left       membershipSegments `json:"left"`
}

// membershipSegments are the segments of a membership change.
type membershipSegments []struct {
	ID     uuid.UUID `json:"id"`
	Name   string    `json:"name"`
	Family string    `json:"family"`
}

func (m membershipSegments) refs() []crm.SegmentRef {
	out := make([]crm.SegmentRef, len(m))
	for i, s := range m {
		out[i] = crm.SegmentRef{ID: s.ID, Name: s.Name, Family: crm.SegmentFamily(s.Family)}
	}
	return out
}

// ChangeStore implements crm.ChangeStore.
type ChangeStore struct {
	db *DB
}

// NewChangeStore returns a ChangeStore on db.
func NewChangeStore(db *DB) *ChangeStore { return &ChangeStore{db: db} }

var _ crm.ChangeStore = (*ChangeStore)(nil)

// changePosition is a place in the change log, as the text of a cursor: "xid:seq".
type changePosition struct {
	xid string
	seq int64
}

func (p changePosition) String() string { return p.xid + ":" + strconv.FormatInt(p.seq, 10) }

func parsePosition(s string) (changePosition, bool) {
	x, q, ok := strings.Cut(s, ":")
	if !ok {
		return changePosition{}, false
	}
	if _, err := strconv.ParseUint(x, 10, 64); err != nil {
		return changePosition{}, false
	}
	seq, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		return changePosition{}, false
	}
	return changePosition{xid: x, seq: seq}, true
}

// ListChanges returns the changes after the cursor in (xid, seq) order. Only changes of
// transactions older than every transaction still running are served: any transaction that
// commits later has a larger xid, so it lands after the cursor and is never skipped.
func (s *ChangeStore) ListChanges(ctx context.Context, scope crm.Scope, f crm.ChangeFilter) (crm.ChangePage, error) {
	types := slices.Sorted(slices.Values(f.Types))
	types = slices.Compact(types)
	list := fingerprint(struct {
		Feed  string
		Types []crm.ChangeType
		S     crm.Scope
	}{"changes", types, scope})
	after, err := decodeCursor(f.Page.Cursor, list)
	if err != nil {
		return crm.ChangePage{}, err
	}
	from := changePosition{xid: "0", seq: 0}
	if after != nil {
		var ok bool
		if after.Text == nil {
			return crm.ChangePage{}, crm.Invalid(crm.FieldError{Pointer: "query:cursor", Message: "is not a cursor of the change feed"})
		}
		if from, ok = parsePosition(*after.Text); !ok {
			return crm.ChangePage{}, crm.Invalid(crm.FieldError{Pointer: "query:cursor", Message: "is not a cursor of the change feed"})
		}
		var expired int64
		err := s.db.session(ctx).Raw(`SELECT count(*) FROM change_log_horizon WHERE (?::xid8, ?::bigint) < (xid, seq)`, from.xid, from.seq).Scan(&expired).Error
		if err != nil {
			return crm.ChangePage{}, fmt.Errorf("read change log horizon: %w", err)
		}
		if expired > 0 {
			return crm.ChangePage{}, crm.Errorf(crm.CodeCursorExpired, "The cursor is older than the changes still kept (%s); changes after it may be gone. Read the current state through the list endpoints, then follow the feed again without a cursor.", crm.ChangeRetention)
		}
	}
	q := s.db.session(ctx).Table("change_log l").Select(changeColumns).
		Joins("LEFT JOIN api_keys k ON k.id = l.actor").
		Where("l.xid < pg_snapshot_xmin(pg_current_snapshot())").
		Where("(l.xid, l.seq) > (?::xid8, ?)", from.xid, from.seq)
	if len(types) > 0 {
		names := make([]string, len(types))
		for i, t := range types {
			names[i] = string(t)
		}
		q = q.Where("l.entity_type = ANY(?::text[])", textArray(names))
	}
	q = q.Where(inFeedOf(scope))
	limit := f.Page.LimitOrDefault()
	var rows []changeRow
	if err := q.Order("l.xid, l.seq").Limit(limit + 1).Find(&rows).Error; err != nil {
		return crm.ChangePage{}, fmt.Errorf("list changes: %w", err)
	}
	page := crm.ChangePage{HasMore: len(rows) > limit}
	rows = rows[:min(len(rows), limit)]
	if page.Changes, err = s.changes(ctx, rows, true); err != nil {
		return crm.ChangePage{}, err
	}
	if err := confineChanges(s.db.session(ctx), scope, page.Changes); err != nil {
		return crm.ChangePage{}, err
	}
	next, id := from, uuid.Nil
	if len(rows) > 0 {
		last := rows[len(rows)-1]
		next, id = changePosition{xid: last.XID, seq: last.Seq}, last.EntityID
	}
	text := next.String()
	page.NextCursor = encodeCursor(cursor{List: list, Text: &text, ID: id})
	return page, nil
}

// confineChanges shows the states and tombstones of changes as a caller confined to scope
// sees them: the hierarchy from the scope's root down, and no reference to a customer outside.
func confineChanges(tx *gorm.DB, scope crm.Scope, changes []crm.Change) error {
	if scope.Root == nil {
		return nil
	}
	var customers []*crm.Customer
	var refs []**uuid.UUID
	for i := range changes {
		c := &changes[i]
		if c.Customer != nil {
			customers = append(customers, c.Customer)
		}
		if c.Transaction != nil {
			refs = append(refs, &c.Transaction.DealerID)
		}
		if t := c.Tombstone; t != nil {
			if t.ID == *scope.Root {
				t.ParentID = nil
			}
			refs = append(refs, &t.ParentID)
		}
	}
	if err := confineCustomers(tx, scope, customers...); err != nil {
		return err
	}
	return hideForeign(tx, scope, refs)
}

// changes turns rows into changes, with the state of upserts when withState is set.
func (s *ChangeStore) changes(ctx context.Context, rows []changeRow, withState bool) ([]crm.Change, error) {
	out := make([]crm.Change, len(rows))
	var transactionIDs []uuid.UUID
	for i, r := range rows {
		c := crm.Change{
			ID:            r.XID + "-" + strconv.FormatInt(r.Seq, 10),
			Type:          crm.ChangeType(r.EntityType),
			Operation:     crm.ChangeOperation(r.Operation),
			EntityID:      r.EntityID,
			CustomerID:    r.CustomerID,
			ChangedFields: r.ChangedFields,
			ChangedAt:     r.ChangedAt.UTC(),
		}
		if c.ChangedFields == nil {
			c.ChangedFields = []string{}
		}
		if r.Actor != nil {
			c.Actor = &crm.Actor{KeyID: *r.Actor}
			if r.ActorName != nil {
				c.Actor.Name = *r.ActorName
			}
		}
		if withState {
			if err := s.decodeState(&c, r.State); err != nil {
				return nil, fmt.Errorf("decode change %s: %w", c.ID, err)
			}
			if c.Type == crm.ChangeTransaction && c.Operation != crm.OperationDeleted {
				transactionIDs = append(transactionIDs, c.EntityID)
			}
		}
		out[i] = c
	}
	if len(transactionIDs) == 0 {
		return out, nil
	}
	var txRows []transactionRow
	if err := s.db.session(ctx).Where("id IN ?", transactionIDs).Find(&txRows).Error; err != nil {
		return nil, fmt.Errorf("read changed transactions: %w", err)
	}
	byID := make(map[uuid.UUID]*crm.Transaction, len(txRows))
	for i := range txRows {
		t := txRows[i].transaction()
		byID[t.ID] = &t
	}
	for i := range out {
		if out[i].Type == crm.ChangeTransaction && out[i].Operation != crm.OperationDeleted {
			out[i].Transaction = byID[out[i].EntityID]
			if out[i].Transaction == nil {
				return nil, fmt.Errorf("change %s names transaction %s, which is missing", out[i].ID, out[i].EntityID)
			}
		}
	}
	return out, nil
}

// decodeState sets the new state of an upsert, or the tombstone of a deletion.
func (s *ChangeStore) decodeState(c *crm.Change, state []byte) error {
	switch c.Type {
	case crm.ChangeCustomer:
		var st customerState
		if err := json.Unmarshal(state, &st); err != nil {
			return err
		}
		if c.Operation == crm.OperationDeleted {
			refs := st.ExternalRefs
			if refs == nil {
				refs = []crm.ExternalRef{}
			}
			c.Tombstone = &crm.Tombstone{ID: st.ID, CustomerID: st.ID, ParentID: st.ParentID, ExternalRefs: refs}
			return nil
		}
		customer := st.customer()
		c.Customer = &customer
	case crm.ChangeTransaction:
		if c.Operation != crm.OperationDeleted {
			return nil
		}
		var st transactionState
		if err := json.Unmarshal(state, &st); err != nil {
			return err
		}
		refs := []crm.ExternalRef{}
		if st.Source != nil && st.ExternalID != nil {
			refs = append(refs, crm.ExternalRef{Source: *st.Source, ExternalID: *st.ExternalID})
		}
		c.Tombstone = &crm.Tombstone{ID: st.ID, CustomerID: st.CustomerID, ParentID: &st.CustomerID, ExternalRefs: refs}
	case crm.ChangeSegmentMembership:
		var st membershipState
		if err := json.Unmarshal(state, &st); err != nil {
			return err
		}
		c.Membership = &crm.MembershipChange{CustomerID: st.CustomerID, Cause: st.Cause, ChangedAt: st.ChangedAt.UTC(),
			Entered: st.Entered.refs(), Left: st.Left.refs()}
	}
	return nil
}

// CustomerAudit returns the changes of a customer and its transactions, newest first.
func (s *ChangeStore) CustomerAudit(ctx context.Context, scope crm.Scope, customerID uuid.UUID, types []crm.ChangeType, page crm.PageRequest) (crm.AuditPage, error) {
	var n int64
	q := s.db.session(ctx).Model(&customerRow{}).Where("id = ?", customerID)
	if scope.Root != nil {
		q = q.Where("(ancestors @> ARRAY[?]::uuid[] OR id = ?)", *scope.Root, *scope.Root)
	}
	if err := q.Count(&n).Error; err != nil {
		return crm.AuditPage{}, fmt.Errorf("find customer: %w", err)
	}
	if n == 0 {
		return crm.AuditPage{}, notFound(customerID)
	}
	types = slices.Compact(slices.Sorted(slices.Values(types)))
	list := fingerprint(struct {
		Audit uuid.UUID
		Types []crm.ChangeType
		S     crm.Scope
	}{customerID, types, scope})
	after, err := decodeCursor(page.Cursor, list)
	if err != nil {
		return crm.AuditPage{}, err
	}
	rq := s.db.session(ctx).Table("change_log l").Select(changeColumns).
		Joins("LEFT JOIN api_keys k ON k.id = l.actor").
		Where("l.customer_id = ? AND l.entity_type <> 'segment_membership'", customerID)
	// Only the changes made while the customer was in the caller's subtree, as in the change
	// feed: those from before it was moved in belong to another subtree and name its keys.
	rq = rq.Where(inFeedOf(scope))
	if len(types) > 0 {
		names := make([]string, len(types))
		for i, t := range types {
			names[i] = string(t)
		}
		rq = rq.Where("l.entity_type = ANY(?::text[])", textArray(names))
	}
	if after != nil {
		pos, ok := changePosition{}, false
		if after.Text != nil {
			pos, ok = parsePosition(*after.Text)
		}
		if !ok {
			return crm.AuditPage{}, crm.Invalid(crm.FieldError{Pointer: "query:cursor", Message: "is not a cursor of this audit trail"})
		}
		rq = rq.Where("(l.xid, l.seq) < (?::xid8, ?)", pos.xid, pos.seq)
	}
	limit := page.LimitOrDefault()
	var rows []changeRow
	if err := rq.Order("l.xid DESC, l.seq DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return crm.AuditPage{}, fmt.Errorf("read audit trail: %w", err)
	}
	more := len(rows) > limit
	rows = rows[:min(len(rows), limit)]
	out := crm.AuditPage{}
	if out.Changes, err = s.changes(ctx, rows, false); err != nil {
		return crm.AuditPage{}, err
	}
	if more {
		last := rows[len(rows)-1]
		text := changePosition{xid: last.XID, seq: last.Seq}.String()
		out.NextCursor = encodeCursor(cursor{List: list, Text: &text, ID: last.EntityID})
	}
	return out, nil
}

// PruneChanges deletes the changes made before cutoff and moves the horizon to the last of
// them, so cursors before it are known to be expired.
func (s *ChangeStore) PruneChanges(ctx context.Context, cutoff time.Time) (int64, error) {
	var deleted int64
	err := s.db.session(ctx).Raw(`WITH gone AS (
			DELETE FROM change_log WHERE changed_at < ? RETURNING xid, seq
		), horizon AS (
			INSERT INTO change_log_horizon (xid, seq)
			SELECT xid, seq FROM gone ORDER BY xid DESC, seq DESC LIMIT 1
			ON CONFLICT (singleton) DO UPDATE SET xid = EXCLUDED.xid, seq = EXCLUDED.seq
			WHERE (change_log_horizon.xid, change_log_horizon.seq) < (EXCLUDED.xid, EXCLUDED.seq)
		)
		SELECT count(*) FROM gone`, cutoff).Scan(&deleted).Error
	if err != nil {
		return 0, fmt.Errorf("prune change log: %w", err)
	}
	return deleted, nil
}
