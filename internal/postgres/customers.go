package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/centric-crm/centric/internal/crm"
)

// maxDepth bounds the hierarchy so materialised paths stay short.
const maxDepth = 32

// customerRow is the customers table. It is kept apart from crm.Customer so storage details
// stay here.
type customerRow struct {
	ID                  uuid.UUID
	Kind                string
	Role                *string
	ParentID            *uuid.UUID
	Ancestors           uuidArray
	Name                *string
	Email               *string
	Phone               *string
	Country             *string
	Industry            *string
	Tags                textArray
	Attributes          jsonColumn[map[string]any]
	Owner               *string
	AcquiredAt          *time.Time
	AcquisitionChannel  *string
	AcquisitionCost     *string
	AcquisitionCurrency *string
	ReferredBy          *uuid.UUID
	ExternalRefs        jsonColumn[[]crm.ExternalRef]
	Version             int64
	CreatedAt           time.Time
	UpdatedAt           time.Time
	DeletedAt           *time.Time
	// SortKey is the text a name-sorted list orders by, as PostgreSQL computes it.
	SortKey *string `gorm:"->"`
	// EnteredAt is when the customer entered a segment, read by segment member lists only.
	EnteredAt *time.Time `gorm:"->"`
}

func (customerRow) TableName() string { return "customers" }

func rowFromCustomer(c *crm.Customer) customerRow {
	r := customerRow{
		ID: c.ID, Kind: string(c.Kind), ParentID: c.ParentID, Ancestors: c.Ancestors,
		Name: c.Name, Email: c.Email, Phone: c.Phone, Country: c.Country, Industry: c.Industry,
		Tags: c.Tags, Attributes: jsonColumn[map[string]any]{c.Attributes}, Owner: c.Owner,
		AcquiredAt: c.AcquiredAt, AcquisitionChannel: c.AcquisitionChannel, ReferredBy: c.ReferredBy,
		ExternalRefs: jsonColumn[[]crm.ExternalRef]{c.ExternalRefs},
		Version:      c.Version, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
	}
	if c.Role != nil {
		role := string(*c.Role)
		r.Role = &role
	}
	if c.AcquisitionCost != nil {
		r.AcquisitionCost, r.AcquisitionCurrency = &c.AcquisitionCost.Amount, &c.AcquisitionCost.Currency
	}
	return r
}

func (r *customerRow) customer() crm.Customer {
	c := crm.Customer{
		ID: r.ID, Kind: crm.Kind(r.Kind), ParentID: r.ParentID, Ancestors: r.Ancestors,
		Name: r.Name, Email: r.Email, Phone: r.Phone, Country: r.Country, Industry: r.Industry,
		Tags: r.Tags, Attributes: r.Attributes.V, Owner: r.Owner,
		AcquiredAt: utcPtr(r.AcquiredAt), AcquisitionChannel: r.AcquisitionChannel, ReferredBy: r.ReferredBy,
		ExternalRefs: r.ExternalRefs.V, Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.Role != nil {
		role := crm.Role(*r.Role)
		c.Role = &role
	}
	if r.AcquisitionCost != nil && r.AcquisitionCurrency != nil {
		c.AcquisitionCost = &crm.Money{Amount: *r.AcquisitionCost, Currency: *r.AcquisitionCurrency}
	}
	if c.Ancestors == nil {
		c.Ancestors = []uuid.UUID{}
	}
	if c.Tags == nil {
		c.Tags = []string{}
	}
	if c.Attributes == nil {
		c.Attributes = map[string]any{}
	}
	if c.ExternalRefs == nil {
		c.ExternalRefs = []crm.ExternalRef{}
	}
	return c
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// customerRefRow is the customer_external_refs table.
type customerRefRow struct {
	ExternalID string
	Source     string
	CustomerID uuid.UUID
}

func (customerRefRow) TableName() string { return "customer_external_refs" }

// CustomerStore implements crm.CustomerStore.
type CustomerStore struct {
	db *DB
}

// NewCustomerStore returns a CustomerStore on db.
func NewCustomerStore(db *DB) *CustomerStore { return &CustomerStore{db: db} }

var _ crm.CustomerStore = (*CustomerStore)(nil)

// live selects the live customers within scope.
func live(tx *gorm.DB, scope crm.Scope) *gorm.DB {
	tx = tx.Where("deleted_at IS NULL")
	if scope.Root != nil {
		tx = tx.Where("(ancestors @> ARRAY[?]::uuid[] OR id = ?)", *scope.Root, *scope.Root)
	}
	return tx
}

func notFound(id uuid.UUID) error {
	return crm.Errorf(crm.CodeNotFound, "No customer has id %s.", id)
}

// CreateCustomer inserts c and claims its external references.
func (s *CustomerStore) CreateCustomer(ctx context.Context, scope crm.Scope, c *crm.Customer) error {
	return s.db.transact(ctx, func(tx *gorm.DB) error {
		if err := placeUnder(tx, scope, c, nil); err != nil {
			return err
		}
		if err := checkReferrer(tx, scope, c); err != nil {
			return err
		}
		if err := claimCustomerRefs(tx, c.ID, c.ExternalRefs); err != nil {
			return err
		}
		row := rowFromCustomer(c)
		if err := tx.Create(&row).Error; err != nil {
			return fmt.Errorf("insert customer: %w", err)
		}
		return confineCustomers(tx, scope, c)
	})
}

// placeUnder checks c's parent and sets c's ancestors from it. For a customer being moved,
// subtreeOf is its own id: the new parent must not lie in its subtree.
func placeUnder(tx *gorm.DB, scope crm.Scope, c *crm.Customer, subtreeOf *uuid.UUID) error {
	if c.ParentID == nil {
		if scope.Root != nil {
			return crm.Invalid(crm.FieldError{Pointer: "/parent_id", Message: "is required: this API key may only place customers inside its own subtree"})
		}
		c.Ancestors = []uuid.UUID{}
		return nil
	}
	var parent customerRow
	err := live(tx, scope).Clauses(clause.Locking{Strength: "SHARE"}).
		Select("id", "kind", "ancestors").Where("id = ?", *c.ParentID).Take(&parent).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return crm.Invalid(crm.FieldError{Pointer: "/parent_id", Message: "names no live customer"})
	}
	if err != nil {
		return fmt.Errorf("read parent: %w", err)
	}
	if parent.Kind != string(crm.KindBusiness) {
		return crm.Invalid(crm.FieldError{Pointer: "/parent_id", Message: "must be a business account: consumers cannot have customers below them"})
	}
	if subtreeOf != nil && (parent.ID == *subtreeOf || slices.Contains(parent.Ancestors, *subtreeOf)) {
		return crm.Invalid(crm.FieldError{Pointer: "/parent_id", Message: "would create a cycle: the new parent is the customer itself or below it"})
	}
	if len(parent.Ancestors)+1 >= maxDepth {
		return crm.Invalid(crm.FieldError{Pointer: "/parent_id", Message: fmt.Sprintf("would make the hierarchy deeper than %d levels", maxDepth)})
	}
	c.Ancestors = append(slices.Clone([]uuid.UUID(parent.Ancestors)), parent.ID)
	return nil
}

func checkReferrer(tx *gorm.DB, scope crm.Scope, c *crm.Customer) error {
	if c.ReferredBy == nil {
		return nil
	}
	var n int64
	if err := live(tx.Model(&customerRow{}), scope).Where("id = ?", *c.ReferredBy).Count(&n).Error; err != nil {
		return fmt.Errorf("read referrer: %w", err)
	}
	if n == 0 {
		return crm.Invalid(crm.FieldError{Pointer: "/referred_by", Message: "names no live customer"})
	}
	return nil
}

// claimCustomerRefs records refs as belonging to customer id, failing with a Conflict error
// naming the first reference another live customer holds.
func claimCustomerRefs(tx *gorm.DB, id uuid.UUID, refs []crm.ExternalRef) error {
	if len(refs) == 0 {
		return nil
	}
	rows := make([]customerRefRow, len(refs))
	for i, r := range refs {
		rows[i] = customerRefRow{ExternalID: r.ExternalID, Source: r.Source, CustomerID: id}
	}
	res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows)
	if res.Error != nil {
		return fmt.Errorf("claim external references: %w", res.Error)
	}
	if int(res.RowsAffected) == len(rows) {
		return nil
	}
	var taken []customerRefRow
	if err := tx.Where("customer_id <> ?", id).Where("(external_id, source) IN ?", refPairs(refs)).Find(&taken).Error; err != nil {
		return fmt.Errorf("find taken external references: %w", err)
	}
	e := crm.Errorf(crm.CodeConflict, "An external reference is already used by another live customer.")
	for _, t := range taken {
		i := slices.IndexFunc(refs, func(r crm.ExternalRef) bool { return r.Source == t.Source && r.ExternalID == t.ExternalID })
		e.Fields = append(e.Fields, crm.FieldError{
			Pointer: fmt.Sprintf("/external_refs/%d", i),
			Message: fmt.Sprintf("source %q external_id %q is already used by another live customer", t.Source, t.ExternalID),
		})
	}
	if len(e.Fields) == 1 {
		e.Message = "The external reference " + e.Fields[0].Message + "."
	}
	return e
}

func refPairs(refs []crm.ExternalRef) [][]any {
	pairs := make([][]any, len(refs))
	for i, r := range refs {
		pairs[i] = []any{r.ExternalID, r.Source}
	}
	return pairs
}

// Customer returns a live customer within scope.
func (s *CustomerStore) Customer(ctx context.Context, scope crm.Scope, id uuid.UUID) (*crm.Customer, error) {
	var row customerRow
	err := live(s.db.session(ctx), scope).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, fmt.Errorf("read customer %s: %w", id, err)
	}
	c := row.customer()
	if err := confineCustomers(s.db.session(ctx), scope, &c); err != nil {
		return nil, err
	}
	scores, err := scoreSummaries(s.db.session(ctx), []uuid.UUID{id})
	if err != nil {
		return nil, err
	}
	c.Scores = scores[id]
	refs, err := segmentRefs(s.db.session(ctx), scope, []uuid.UUID{id})
	if err != nil {
		return nil, err
	}
	c.Segments = refs[id]
	return &c, nil
}

// lockCustomer reads a live customer within scope and locks it for update.
func lockCustomer(tx *gorm.DB, scope crm.Scope, id uuid.UUID) (customerRow, error) {
	var row customerRow
	err := live(tx, scope).Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return row, notFound(id)
	}
	if err != nil {
		return row, fmt.Errorf("lock customer: %w", err)
	}
	return row, nil
}

// UpdateCustomer locks the customer, applies update, and writes the result with its subtree.
func (s *CustomerStore) UpdateCustomer(ctx context.Context, scope crm.Scope, id uuid.UUID, update func(*crm.Customer) error) (*crm.Customer, error) {
	var updated crm.Customer
	err := s.db.transact(ctx, func(tx *gorm.DB) error {
		row, err := lockCustomer(tx, scope, id)
		if err != nil {
			return err
		}
		old := row.customer()
		c := row.customer()
		if err := update(&c); err != nil {
			return err
		}
		c.ID, c.CreatedAt, c.Ancestors = old.ID, old.CreatedAt, old.Ancestors
		if !equalPtr(c.ParentID, old.ParentID) {
			if err := placeUnder(tx, scope, &c, &c.ID); err != nil {
				return err
			}
		}
		if c.Kind == crm.KindConsumer && old.Kind == crm.KindBusiness {
			if has, err := hasLiveChildren(tx, id); err != nil {
				return err
			} else if has {
				return crm.Invalid(crm.FieldError{Pointer: "/kind", Message: "must stay business while customers are placed below this one"})
			}
		}
		if !equalPtr(c.ReferredBy, old.ReferredBy) {
			if err := checkReferrer(tx, scope, &c); err != nil {
				return err
			}
		}
		if err := replaceCustomerRefs(tx, id, old.ExternalRefs, c.ExternalRefs); err != nil {
			return err
		}
		newRow := rowFromCustomer(&c)
		if err := tx.Model(&newRow).Select("*").Omit("id", "created_at", "deleted_at").Updates(&newRow).Error; err != nil {
			return fmt.Errorf("update customer: %w", err)
		}
		if !slices.Equal(c.Ancestors, old.Ancestors) {
			if err := moveSubtree(tx, id, len(old.Ancestors), c.Ancestors, c.UpdatedAt); err != nil {
				return err
			}
		}
		updated = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := confineCustomers(s.db.session(ctx), scope, &updated); err != nil {
		return nil, err
	}
	scores, err := scoreSummaries(s.db.session(ctx), []uuid.UUID{id})
	if err != nil {
		return nil, err
	}
	updated.Scores = scores[id]
	refs, err := segmentRefs(s.db.session(ctx), scope, []uuid.UUID{id})
	if err != nil {
		return nil, err
	}
	updated.Segments = refs[id]
	return &updated, nil
}

// moveSubtree rewrites the paths of every customer below id after id moved to newPath. Their
// path keeps its tail from id on; oldDepth is the length of id's old path.
func moveSubtree(tx *gorm.DB, id uuid.UUID, oldDepth int, newPath []uuid.UUID, now time.Time) error {
	err := tx.Exec(`UPDATE customers
		SET ancestors = ?::uuid[] || ancestors[?:], version = version + 1, updated_at = ?
		WHERE ancestors @> ARRAY[?]::uuid[]`, uuidArray(newPath), oldDepth+1, now, id).Error
	if err != nil {
		return fmt.Errorf("move subtree of %s: %w", id, err)
	}
	return nil
}

func hasLiveChildren(tx *gorm.DB, id uuid.UUID) (bool, error) {
	var n int64
	if err := tx.Model(&customerRow{}).Where("parent_id = ? AND deleted_at IS NULL", id).Limit(1).Count(&n).Error; err != nil {
		return false, fmt.Errorf("count children of %s: %w", id, err)
	}
	return n > 0, nil
}

// replaceCustomerRefs releases the references no longer held and claims the new ones.
func replaceCustomerRefs(tx *gorm.DB, id uuid.UUID, old, updated []crm.ExternalRef) error {
	added, removed := refChange(old, updated)
	if len(removed) > 0 {
		err := tx.Where("customer_id = ?", id).Where("(external_id, source) IN ?", refPairs(removed)).Delete(&customerRefRow{}).Error
		if err != nil {
			return fmt.Errorf("release external references: %w", err)
		}
	}
	if err := claimCustomerRefs(tx, id, added); err != nil {
		var e *crm.Error
		if errors.As(err, &e) {
			for i := range e.Fields {
				e.Fields[i].Pointer = repointRef(e.Fields[i].Pointer, added, updated)
			}
		}
		return err
	}
	return nil
}

// repointRef turns a pointer into added (/external_refs/i) into one into updated.
func repointRef(pointer string, added, updated []crm.ExternalRef) string {
	var i int
	if _, err := fmt.Sscanf(pointer, "/external_refs/%d", &i); err != nil || i >= len(added) {
		return pointer
	}
	return fmt.Sprintf("/external_refs/%d", slices.Index(updated, added[i]))
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// DeleteCustomer soft-deletes the customer and releases its external references.
func (s *CustomerStore) DeleteCustomer(ctx context.Context, scope crm.Scope, id uuid.UUID, check func(*crm.Customer) error) error {
	return s.db.transact(ctx, func(tx *gorm.DB) error {
		row, err := lockCustomer(tx, scope, id)
		if err != nil {
			return err
		}
		c := row.customer()
		if err := check(&c); err != nil {
			return err
		}
		if has, err := hasLiveChildren(tx, id); err != nil {
			return err
		} else if has {
			return crm.Errorf(crm.CodeConflict, "Customer %s still has customers below it; move or delete them first.", id)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		err = tx.Model(&customerRow{}).Where("id = ?", id).Updates(map[string]any{
			"deleted_at": now, "updated_at": now, "version": gorm.Expr("version + 1"),
		}).Error
		if err != nil {
			return fmt.Errorf("delete customer: %w", err)
		}
		if err := tx.Where("customer_id = ?", id).Delete(&customerRefRow{}).Error; err != nil {
			return fmt.Errorf("release external references: %w", err)
		}
		return leaveAllSegments(tx, id, now)
	})
}

// customerSort describes how a list is ordered: the SQL expression, the type its cursor value
// is cast back to, the direction, and whether it needs the customer's scores.
type customerSort struct {
	expr   string
	cast   string
	desc   bool
	scored bool
}

func customerSortOf(sort crm.CustomerSort) customerSort {
	desc := strings.HasPrefix(string(sort), "-")
	switch strings.TrimPrefix(string(sort), "-") {
	case "updated_at":
		return customerSort{expr: "customers.updated_at", cast: "timestamptz", desc: desc}
	case "name":
		return customerSort{expr: "lower(coalesce(customers.name, ''))", cast: "text", desc: desc}
	case "churn_risk":
		return customerSort{expr: "s.churn_risk", cast: "float8", desc: desc, scored: true}
	case "clv":
		return customerSort{expr: "s.clv", cast: "numeric", desc: desc, scored: true}
	default:
		return customerSort{expr: "customers.created_at", cast: "timestamptz", desc: desc}
	}
}

// ListCustomers returns one page of live customers, keyset-paginated on (sort key, id).
func (s *CustomerStore) ListCustomers(ctx context.Context, scope crm.Scope, f crm.CustomerFilter) (crm.CustomerPage, error) {
	if f.Sort == "" {
		f.Sort = crm.SortCreatedAsc
	}
	page := f.Page
	f.Page = crm.PageRequest{}
	list := fingerprint(struct {
		F crm.CustomerFilter
		S crm.Scope
	}{f, scope})
	after, err := decodeCursor(page.Cursor, list)
	if err != nil {
		return crm.CustomerPage{}, err
	}
	q := live(s.db.session(ctx).Table("customers"), scope)
	if f.Kind != "" {
		q = q.Where("kind = ?", string(f.Kind))
	}
	if f.Role != "" {
		q = q.Where("role = ?", string(f.Role))
	}
	if f.ParentID != nil {
		q = q.Where("parent_id = ?", *f.ParentID)
	}
	if f.DescendantOf != nil {
		q = q.Where("ancestors @> ARRAY[?]::uuid[]", *f.DescendantOf)
	}
	if len(f.Tags) > 0 {
		q = q.Where("tags @> ?::text[]", textArray(f.Tags))
	}
	if f.Query != "" {
		pattern := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(f.Query) + "%"
		q = q.Where("(name ILIKE ? OR email ILIKE ?)", pattern, pattern)
	}
	if f.UpdatedSince != nil {
		q = q.Where("updated_at >= ?", *f.UpdatedSince)
	}
	if f.ExternalRef != nil {
		var ref customerRefRow
		err := s.db.session(ctx).Where("external_id = ? AND source = ?", f.ExternalRef.ExternalID, f.ExternalRef.Source).Take(&ref).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return crm.CustomerPage{Customers: []crm.Customer{}}, nil
		}
		if err != nil {
			return crm.CustomerPage{}, fmt.Errorf("look up external reference: %w", err)
		}
		q = q.Where("id = ?", ref.CustomerID)
	}
	order := customerSortOf(f.Sort)
	if order.scored || f.ChurnBand != "" || f.MinChurnRisk != nil || f.MaxChurnRisk != nil || f.MinCLV != "" {
		q = q.Joins("JOIN customer_scores s ON s.customer_id = customers.id")
	}
	if f.ChurnBand != "" {
		q = q.Where("s.churn_band = ?", f.ChurnBand)
	}
	if f.MinChurnRisk != nil {
		q = q.Where("s.churn_risk >= ?", *f.MinChurnRisk)
	}
	if f.MaxChurnRisk != nil {
		q = q.Where("s.churn_risk <= ?", *f.MaxChurnRisk)
	}
	if f.MinCLV != "" {
		q = q.Where("s.clv >= ?::numeric", f.MinCLV)
	}
	if f.SegmentID != nil {
		members, args, err := memberFilterSQL(s.db.session(ctx), scope, *f.SegmentID)
		if err != nil {
			return crm.CustomerPage{}, err
		}
		q = q.Where(members, args...)
	}
	cmp, dir := ">", "ASC"
	if order.desc {
		cmp, dir = "<", "DESC"
	}
	if after != nil {
		if after.Text == nil {
			return crm.CustomerPage{}, crm.Invalid(crm.FieldError{Pointer: "query:cursor", Message: "does not match the sort"})
		}
		q = q.Where(fmt.Sprintf("(%s, customers.id) %s (?::%s, ?)", order.expr, cmp, order.cast), *after.Text, after.ID)
	}
	limit := page.LimitOrDefault()
	var rows []customerRow
	err = q.Select(fmt.Sprintf("customers.*, (%s)::text AS sort_key", order.expr)).
		Order(fmt.Sprintf("%s %s, customers.id %s", order.expr, dir, dir)).Limit(limit + 1).Find(&rows).Error
	if err != nil {
		return crm.CustomerPage{}, fmt.Errorf("list customers: %w", err)
	}
	rows = rows[:min(len(rows), limit+1)]
	page1 := rows[:min(len(rows), limit)]
	ids := make([]uuid.UUID, len(page1))
	for i := range page1 {
		ids[i] = page1[i].ID
	}
	scores, err := scoreSummaries(s.db.session(ctx), ids)
	if err != nil {
		return crm.CustomerPage{}, err
	}
	refs, err := segmentRefs(s.db.session(ctx), scope, ids)
	if err != nil {
		return crm.CustomerPage{}, err
	}
	result := crm.CustomerPage{Customers: make([]crm.Customer, len(page1))}
	confined := make([]*crm.Customer, len(page1))
	for i := range page1 {
		result.Customers[i] = page1[i].customer()
		result.Customers[i].Scores = scores[page1[i].ID]
		result.Customers[i].Segments = refs[page1[i].ID]
		confined[i] = &result.Customers[i]
	}
	if err := confineCustomers(s.db.session(ctx), scope, confined...); err != nil {
		return crm.CustomerPage{}, err
	}
	if len(rows) > limit {
		last := rows[limit-1]
		result.NextCursor = encodeCursor(cursor{List: list, Text: last.SortKey, ID: last.ID})
	}
	return result, nil
}
