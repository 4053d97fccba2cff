package crm

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/oapi-codegen/nullable"
)

// Kind says whether a customer is a person or a business account.
type Kind string

// The kinds of customer.
const (
	KindConsumer Kind = "consumer"
	KindBusiness Kind = "business"
)

// Role is the role of a business account in the market.
type Role string

// The roles of business accounts.
const (
	RoleEnterprise  Role = "enterprise"
	RoleInstitution Role = "institution"
	RoleDistributor Role = "distributor"
	RoleDealer      Role = "dealer"
	RoleReseller    Role = "reseller"
	RoleOther       Role = "other"
)

// ExternalRef is a record's id in an external system, such as a partner's ERP.
type ExternalRef struct {
	Source     string `json:"source" validate:"required,max=64,printascii,excludesall= /"`
	ExternalID string `json:"external_id" validate:"required,max=255"`
}

// Money is an amount as a decimal string with an ISO 4217 currency code.
type Money struct {
	Amount   string `json:"amount" validate:"decimal"`
	Currency string `json:"currency" validate:"iso4217"`
}

// Customer is a consumer or business account. Optional fields are nil when unset.
type Customer struct {
	ID                 uuid.UUID      `json:"id"`
	Kind               Kind           `json:"kind" validate:"oneof=consumer business"`
	Role               *Role          `json:"role" validate:"excluded_unless=Kind business,omitempty,oneof=enterprise institution distributor dealer reseller other"`
	ParentID           *uuid.UUID     `json:"parent_id"`
	Ancestors          []uuid.UUID    `json:"ancestors"`
	Name               *string        `json:"name" validate:"omitempty,min=1,max=200"`
	Email              *string        `json:"email" validate:"omitempty,max=254,email"`
	Phone              *string        `json:"phone" validate:"omitempty,max=40"`
	Country            *string        `json:"country" validate:"omitempty,iso3166_1_alpha2"`
	Industry           *string        `json:"industry" validate:"omitempty,max=100"`
	Tags               []string       `json:"tags" validate:"max=50,dive,tag"`
	Attributes         map[string]any `json:"attributes" validate:"json_size"`
	Owner              *string        `json:"owner" validate:"omitempty,max=200"`
	AcquiredAt         *time.Time     `json:"acquired_at"`
	AcquisitionChannel *string        `json:"acquisition_channel" validate:"omitempty,max=100"`
	AcquisitionCost    *Money         `json:"acquisition_cost"`
	ReferredBy         *uuid.UUID     `json:"referred_by"`
	ExternalRefs       []ExternalRef  `json:"external_refs" validate:"max=20,unique=Source,dive"`
	Version            int64          `json:"version"`
	CreatedAt          time.Time      `json:"created_at"`
	UpdatedAt          time.Time      `json:"updated_at"`
	// Scores are the live headline scores, read-only; nil before the customer is scored.
	Scores *ScoreSummary `json:"-"`
	// Segments are the segments the customer belongs to that the caller may see, read-only.
	Segments []SegmentRef `json:"-"`
}

// ScoreSummary is a customer's headline scores from the latest scoring.
type ScoreSummary struct {
	ModelRunID           uuid.UUID
	PAlive               float64
	ChurnRisk            float64
	ChurnBand            string
	ExpectedPurchases90d float64
	CLV                  string
	Currency             string
	ComputedAt           time.Time
}

// ETag returns the customer's version as a strong entity tag.
func (c *Customer) ETag() string { return ETagOf(c.Version) }

// CustomerPatch is a JSON merge patch of a customer: an unspecified field is left alone, a null
// one is cleared, a set one replaces the stored value. Attributes are merged key by key, and a
// nil value in Attributes removes that key.
type CustomerPatch struct {
	Kind               *Kind
	Role               nullable.Nullable[Role]
	ParentID           nullable.Nullable[uuid.UUID]
	Name               nullable.Nullable[string]
	Email              nullable.Nullable[string]
	Phone              nullable.Nullable[string]
	Country            nullable.Nullable[string]
	Industry           nullable.Nullable[string]
	Tags               nullable.Nullable[[]string]
	Attributes         nullable.Nullable[map[string]any]
	Owner              nullable.Nullable[string]
	AcquiredAt         nullable.Nullable[time.Time]
	AcquisitionChannel nullable.Nullable[string]
	AcquisitionCost    nullable.Nullable[Money]
	ReferredBy         nullable.Nullable[uuid.UUID]
	ExternalRefs       nullable.Nullable[[]ExternalRef]
}

// Apply merges the patch into c.
func (p CustomerPatch) Apply(c *Customer) {
	if p.Kind != nil {
		c.Kind = *p.Kind
	}
	patchPointer(&c.Role, p.Role)
	patchPointer(&c.ParentID, p.ParentID)
	patchPointer(&c.Name, p.Name)
	patchPointer(&c.Email, p.Email)
	patchPointer(&c.Phone, p.Phone)
	patchPointer(&c.Country, p.Country)
	patchPointer(&c.Industry, p.Industry)
	patchPointer(&c.Owner, p.Owner)
	patchPointer(&c.AcquiredAt, p.AcquiredAt)
	patchPointer(&c.AcquisitionChannel, p.AcquisitionChannel)
	patchPointer(&c.AcquisitionCost, p.AcquisitionCost)
	patchPointer(&c.ReferredBy, p.ReferredBy)
	if p.Tags.IsSpecified() {
		c.Tags = p.Tags.GetOrEmpty()
	}
	if p.ExternalRefs.IsSpecified() {
		c.ExternalRefs = p.ExternalRefs.GetOrEmpty()
	}
	if p.Attributes.IsSpecified() {
		if p.Attributes.IsNull() {
			c.Attributes = map[string]any{}
		} else {
			merged := maps.Clone(c.Attributes)
			if merged == nil {
				merged = map[string]any{}
			}
			for k, v := range p.Attributes.MustGet() {
				if v == nil {
					delete(merged, k)
				} else {
					merged[k] = v
				}
			}
			c.Attributes = merged
		}
	}
}

func patchPointer[T any](dst **T, v nullable.Nullable[T]) {
	switch {
	case !v.IsSpecified():
	case v.IsNull():
		*dst = nil
	default:
		val := v.MustGet()
		*dst = &val
	}
}

// normalize puts a customer into canonical form: tags sorted without duplicates, empty
// collections rather than nil ones, and times in UTC.
func (c *Customer) normalize() {
	c.Tags = slices.Compact(slices.Sorted(slices.Values(c.Tags)))
	if c.Tags == nil {
		c.Tags = []string{}
	}
	if c.Attributes == nil {
		c.Attributes = map[string]any{}
	}
	if c.ExternalRefs == nil {
		c.ExternalRefs = []ExternalRef{}
	}
	if c.Ancestors == nil {
		c.Ancestors = []uuid.UUID{}
	}
	c.AcquiredAt = utc(c.AcquiredAt)
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// CustomerSort orders customer lists. Every order breaks ties by id.
type CustomerSort string

// The supported customer orders; a leading minus sorts descending.
const (
	SortCreatedAsc  CustomerSort = "created_at"
	SortCreatedDesc CustomerSort = "-created_at"
	SortUpdatedAsc  CustomerSort = "updated_at"
	SortUpdatedDesc CustomerSort = "-updated_at"
	SortNameAsc     CustomerSort = "name"
	SortNameDesc    CustomerSort = "-name"
	SortChurnAsc    CustomerSort = "churn_risk"
	SortChurnDesc   CustomerSort = "-churn_risk"
	SortCLVAsc      CustomerSort = "clv"
	SortCLVDesc     CustomerSort = "-clv"
)

// CustomerFilter selects and orders a page of live customers. Zero fields do not filter.
type CustomerFilter struct {
	Kind         Kind
	Role         Role
	ParentID     *uuid.UUID
	DescendantOf *uuid.UUID
	Tags         []string
	Query        string
	UpdatedSince *time.Time
	ExternalRef  *ExternalRef
	// The score filters list only scored customers.
	ChurnBand    string
	MinChurnRisk *float64
	MaxChurnRisk *float64
	MinCLV       string
	Sort         CustomerSort
	Page         PageRequest

	// SegmentID lists only the members of this segment.
	SegmentID *uuid.UUID
}

// CustomerPage is one page of customers.
type CustomerPage struct {
	Customers  []Customer
	NextCursor string
}

// Scope confines what a caller may see and change to one subtree of the customer hierarchy.
// The zero Scope is unconfined.
type Scope struct {
	// Root is the customer whose subtree (itself included) is visible, or nil for all.
	Root *uuid.UUID
}

// Confine shows c as a caller confined to the scope sees it: the hierarchy starts at the
// scope's root, so the root has no parent and ancestors lists only customers in the subtree.
// Nothing outside the subtree, not even an id, reaches the caller.
func (s Scope) Confine(c *Customer) {
	if s.Root == nil {
		return
	}
	if c.ID == *s.Root {
		c.ParentID = nil
		c.Ancestors = []uuid.UUID{}
		return
	}
	if i := slices.Index(c.Ancestors, *s.Root); i >= 0 {
		c.Ancestors = c.Ancestors[i:]
	}
}

// CustomerStore persists customers. Every method honours the scope: a customer outside it is
// reported as not found, and the customers returned are shown as the scope sees them (Confine),
// with a referrer outside the scope cleared.
type CustomerStore interface {
	// CreateCustomer inserts c with its external references. It returns a NotFound or Invalid
	// error for a bad parent or referrer and a Conflict error for a taken external reference.
	CreateCustomer(ctx context.Context, scope Scope, c *Customer) error
	// Customer returns a live customer or a NotFound error.
	Customer(ctx context.Context, scope Scope, id uuid.UUID) (*Customer, error)
	// UpdateCustomer locks the live customer, lets update change it, and stores the result,
	// moving its subtree when the parent changed.
	UpdateCustomer(ctx context.Context, scope Scope, id uuid.UUID, update func(*Customer) error) (*Customer, error)
	// DeleteCustomer soft-deletes the customer after check approves it, and releases its
	// external references. It returns a Conflict error while the customer has live children.
	DeleteCustomer(ctx context.Context, scope Scope, id uuid.UUID, check func(*Customer) error) error
	// ListCustomers returns one page of live customers.
	ListCustomers(ctx context.Context, scope Scope, f CustomerFilter) (CustomerPage, error)
}

// CustomerService creates, reads, changes and deletes customers.
type CustomerService struct {
	store    CustomerStore
	validate *Validator
	now      func() time.Time
	// profiles, when set, is told about every created or changed customer.
	profiles ProfileUpdater
}

// ProfileUpdater keeps what is derived from customers' profiles, such as the members of
// rule segments, current. It handles its own failures: derived data never fails the write.
type ProfileUpdater interface {
	// ProfileChanged is called after a customer was created or changed; a move changes the
	// place of its whole subtree.
	ProfileChanged(ctx context.Context, customerID uuid.UUID)
}

// SetProfileUpdater makes the service tell u about every created or changed customer.
func (s *CustomerService) SetProfileUpdater(u ProfileUpdater) { s.profiles = u }

// NewCustomerService returns a CustomerService over store.
func NewCustomerService(store CustomerStore, v *Validator, now func() time.Time) *CustomerService {
	return &CustomerService{store: store, validate: v, now: now}
}

// Create validates and stores a new customer. Server-owned fields of c are ignored.
func (s *CustomerService) Create(ctx context.Context, scope Scope, c Customer) (*Customer, error) {
	c.normalize()
	if fields := s.validate.Struct(&c, ""); fields != nil {
		return nil, Invalid(fields...)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	c.ID, c.Version, c.CreatedAt, c.UpdatedAt = id, 1, now, now
	c.Ancestors = []uuid.UUID{}
	if err := s.store.CreateCustomer(ctx, scope, &c); err != nil {
		return nil, err
	}
	if s.profiles == nil {
		return &c, nil
	}
	s.profiles.ProfileChanged(ctx, c.ID)
	// Re-read so the customer shows the segments it entered.
	return s.store.Customer(ctx, scope, c.ID)
}

// Get returns a live customer.
func (s *CustomerService) Get(ctx context.Context, scope Scope, id uuid.UUID) (*Customer, error) {
	return s.store.Customer(ctx, scope, id)
}

// Update applies a merge patch. With ifMatch set, it fails with PreconditionFailed unless the
// stored customer still has that entity tag.
// A caller confined to a subtree may change its root's profile but not move the root or make it
// a consumer: that is Forbidden, since it would take the subtree away from under the key.
func (s *CustomerService) Update(ctx context.Context, scope Scope, id uuid.UUID, ifMatch string, patch CustomerPatch) (*Customer, error) {
	c, err := s.store.UpdateCustomer(ctx, scope, id, func(c *Customer) error {
		if err := checkIfMatch(c, ifMatch); err != nil {
			return err
		}
		oldKind := c.Kind
		patch.Apply(c)
		if scope.Root != nil && c.ID == *scope.Root {
			// Any parent given for the root is refused, even the current one, so that the key
			// cannot find out what lies above its subtree.
			if patch.ParentID.IsSpecified() {
				return Errorf(CodeForbidden, "This API key is confined to the subtree of customer %s and cannot move that customer itself; an unconfined key can.", c.ID)
			}
			if c.Kind != oldKind {
				return Errorf(CodeForbidden, "This API key is confined to the subtree of customer %s and cannot change that customer's kind; an unconfined key can.", c.ID)
			}
		}
		c.normalize()
		if fields := s.validate.Struct(c, ""); fields != nil {
			return Invalid(fields...)
		}
		if c.ParentID != nil && *c.ParentID == c.ID {
			return Invalid(FieldError{Pointer: "/parent_id", Message: "must not be the customer itself"})
		}
		if c.ReferredBy != nil && *c.ReferredBy == c.ID {
			return Invalid(FieldError{Pointer: "/referred_by", Message: "must not be the customer itself"})
		}
		c.Version++
		c.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
		return nil
	})
	if err != nil || s.profiles == nil {
		return c, err
	}
	s.profiles.ProfileChanged(ctx, id)
	// Re-read so the customer shows the segments it entered or left.
	return s.store.Customer(ctx, scope, id)
}

// Delete soft-deletes a customer. With ifMatch set, it fails with PreconditionFailed unless the
// stored customer still has that entity tag. A caller confined to a subtree cannot delete the
// subtree's root (Forbidden).
func (s *CustomerService) Delete(ctx context.Context, scope Scope, id uuid.UUID, ifMatch string) error {
	return s.store.DeleteCustomer(ctx, scope, id, func(c *Customer) error {
		if scope.Root != nil && c.ID == *scope.Root {
			return Errorf(CodeForbidden, "This API key is confined to the subtree of customer %s and cannot delete that customer itself; an unconfined key can.", c.ID)
		}
		return checkIfMatch(c, ifMatch)
	})
}

// List returns one page of live customers.
func (s *CustomerService) List(ctx context.Context, scope Scope, f CustomerFilter) (CustomerPage, error) {
	return s.store.ListCustomers(ctx, scope, f)
}
