package crm

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// MaxCustomerBatchSize is the most customers one batch may carry.
const MaxCustomerBatchSize = 1000

// CustomerUpsert is one item of a customer batch: a customer matched on ID or on Ref, and a
// merge patch to apply to it, or to an empty customer when Ref names none yet.
type CustomerUpsert struct {
	ID  *uuid.UUID
	Ref *ExternalRef
	// IfMatch, when set, is the entity tag the stored customer must still have.
	IfMatch string
	// ParentRef names the parent by external reference, instead of Patch.ParentID.
	ParentRef *ExternalRef
	Patch     CustomerPatch
	// NewID is the id the customer gets if the item creates it.
	NewID uuid.UUID
}

// UpsertStatus is what one item of a customer batch did.
type UpsertStatus string

// The outcomes of a customer batch item.
const (
	UpsertCreated   UpsertStatus = "created"
	UpsertUpdated   UpsertStatus = "updated"
	UpsertUnchanged UpsertStatus = "unchanged"
	UpsertFailed    UpsertStatus = "error"
)

// UpsertResult is the outcome of one item. ID and Version are the customer's after the batch
// (zero for a failed item, and for a created one in a dry run); Err is set when Status is
// UpsertFailed, with pointers relative to the request.
type UpsertResult struct {
	Status  UpsertStatus
	ID      uuid.UUID
	Version int64
	Err     *Error
}

// UpsertOptions tune a customer batch.
type UpsertOptions struct {
	// AllOrNone writes nothing unless every item succeeds.
	AllOrNone bool
	// DryRun reports what every item would do and writes nothing.
	DryRun bool
}

// UpsertMerge builds the new state of item i from the stored customer (nil when the item
// creates one), whose parent the store has resolved into the item's patch. It reports whether
// the state differs from the stored one, or fails the item.
type UpsertMerge func(i int, existing *Customer) (c *Customer, changed bool, err *Error)

// CustomerBatchStore writes customer batches.
type CustomerBatchStore interface {
	// UpsertCustomers matches, merges (through merge), places and writes items in one
	// transaction, set-based, and returns one result per item; items already failed in results
	// are skipped. It writes nothing under opts.DryRun, or under opts.AllOrNone when an item
	// fails.
	UpsertCustomers(ctx context.Context, scope Scope, items []CustomerUpsert, results []UpsertResult, opts UpsertOptions, merge UpsertMerge) error
}

// CustomerBatchService creates and updates customers in bulk.
type CustomerBatchService struct {
	store    CustomerBatchStore
	validate *Validator
	now      func() time.Time
}

// NewCustomerBatchService returns a CustomerBatchService over store.
func NewCustomerBatchService(store CustomerBatchStore, v *Validator, now func() time.Time) *CustomerBatchService {
	return &CustomerBatchService{store: store, validate: v, now: now}
}

// Upsert creates or updates the items and returns one result per item, whose error pointers
// are relative to the request (/items/{i}/…). Under opts.AllOrNone any failure fails the whole
// batch with an Invalid error listing every failed field, and nothing is written.
func (s *CustomerBatchService) Upsert(ctx context.Context, scope Scope, items []CustomerUpsert, opts UpsertOptions) ([]UpsertResult, error) {
	if len(items) > MaxCustomerBatchSize {
		return nil, Invalid(FieldError{Pointer: "/items", Message: fmt.Sprintf("must have at most %d items", MaxCustomerBatchSize)})
	}
	results := make([]UpsertResult, len(items))
	byID := map[uuid.UUID]int{}
	byRef := map[ExternalRef]int{}
	for i := range items {
		it := &items[i]
		if err := checkUpsertItem(it); err != nil {
			results[i] = UpsertResult{Status: UpsertFailed, Err: err}
			continue
		}
		if it.ID != nil {
			if j, ok := byID[*it.ID]; ok {
				results[i] = failedItem(CodeInvalid, "/id", fmt.Sprintf("repeats the id of item %d of this batch", j))
				continue
			}
			byID[*it.ID] = i
		} else {
			if j, ok := byRef[*it.Ref]; ok {
				results[i] = failedItem(CodeInvalid, "/external_ref", fmt.Sprintf("repeats the external_ref of item %d of this batch", j))
				continue
			}
			byRef[*it.Ref] = i
		}
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		it.NewID = id
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	merge := func(i int, existing *Customer) (*Customer, bool, *Error) {
		return s.merge(scope, &items[i], existing, now)
	}
	if err := s.store.UpsertCustomers(ctx, scope, items, results, opts, merge); err != nil {
		return nil, err
	}
	var fields []FieldError
	failed := 0
	for i := range results {
		if results[i].Err == nil {
			continue
		}
		failed++
		prefix := fmt.Sprintf("/items/%d", i)
		for j := range results[i].Err.Fields {
			results[i].Err.Fields[j].Pointer = prefix + results[i].Err.Fields[j].Pointer
		}
		fields = append(fields, results[i].Err.Fields...)
	}
	if opts.AllOrNone && failed > 0 {
		e := Invalid(fields...)
		e.Message = fmt.Sprintf("Nothing was written: %d of %d items failed (all_or_none). %s", failed, len(items), e.Message)
		return nil, e
	}
	return results, nil
}

// checkUpsertItem checks what can be checked of an item on its own.
func checkUpsertItem(it *CustomerUpsert) *Error {
	switch {
	case it.ID == nil && it.Ref == nil:
		return &Error{Code: CodeInvalid, Message: "An item needs id or external_ref.", Fields: []FieldError{{Pointer: "", Message: "must have id or external_ref to match the customer on"}}}
	case it.ID != nil && it.Ref != nil:
		return &Error{Code: CodeInvalid, Message: "An item is matched on id or on external_ref, not both.", Fields: []FieldError{{Pointer: "/external_ref", Message: "must not be given together with id"}}}
	case it.ParentRef != nil && it.Patch.ParentID.IsSpecified():
		return &Error{Code: CodeInvalid, Message: "An item names its parent by parent_id or by parent_ref, not both.", Fields: []FieldError{{Pointer: "/parent_ref", Message: "must not be given together with parent_id"}}}
	case it.IfMatch != "" && !validETagList(it.IfMatch):
		return &Error{Code: CodeInvalid, Message: `if_match must be an entity tag such as "\"4\"".`, Fields: []FieldError{{Pointer: "/if_match", Message: `must be an entity tag such as "4" in double quotes, or *`}}}
	}
	return nil
}

func validETagList(s string) bool {
	if strings.TrimSpace(s) == "*" {
		return true
	}
	for _, tag := range strings.Split(s, ",") {
		tag = strings.TrimSpace(tag)
		if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
			return false
		}
	}
	return true
}

func failedItem(code ErrorCode, pointer, message string) UpsertResult {
	return UpsertResult{Status: UpsertFailed, Err: &Error{Code: code, Message: message, Fields: []FieldError{{Pointer: pointer, Message: message}}}}
}

// merge applies an item's patch to the stored customer, or to a new one.
func (s *CustomerBatchService) merge(scope Scope, it *CustomerUpsert, existing *Customer, now time.Time) (*Customer, bool, *Error) {
	var c Customer
	if existing == nil {
		if it.IfMatch != "" && strings.TrimSpace(it.IfMatch) != "*" {
			return nil, false, &Error{Code: CodePreconditionFailed, Message: "if_match was given, but no customer holds this external_ref yet.",
				Fields: []FieldError{{Pointer: "/if_match", Message: "names a version, but the item would create the customer"}}}
		}
		if it.Patch.Kind == nil {
			return nil, false, &Error{Code: CodeInvalid, Message: "kind is required to create a customer.", Fields: []FieldError{{Pointer: "/kind", Message: "is required to create a customer"}}}
		}
		c = Customer{ID: it.NewID, Version: 1, CreatedAt: now, UpdatedAt: now}
	} else {
		if err := checkIfMatch(existing, it.IfMatch); err != nil {
			return nil, false, &Error{Code: CodePreconditionFailed, Message: err.Error(),
				Fields: []FieldError{{Pointer: "/if_match", Message: "is not the customer's current ETag " + existing.ETag()}}}
		}
		c = cloneCustomer(existing)
	}
	it.Patch.Apply(&c)
	if existing != nil && scope.Root != nil && c.ID == *scope.Root {
		// As for a single update, any parent given for the root is refused, even the current
		// one, so that the key cannot find out what lies above its subtree.
		if it.Patch.ParentID.IsSpecified() || it.ParentRef != nil {
			pointer := "/parent_id"
			if it.ParentRef != nil {
				pointer = "/parent_ref"
			}
			return nil, false, &Error{Code: CodeForbidden, Message: fmt.Sprintf("This API key is confined to the subtree of customer %s and cannot move that customer itself; an unconfined key can.", c.ID),
				Fields: []FieldError{{Pointer: pointer, Message: "cannot be set on the root of this API key's subtree"}}}
		}
		if c.Kind != existing.Kind {
			return nil, false, &Error{Code: CodeForbidden, Message: fmt.Sprintf("This API key is confined to the subtree of customer %s and cannot change that customer's kind; an unconfined key can.", c.ID),
				Fields: []FieldError{{Pointer: "/kind", Message: "cannot be changed on the root of this API key's subtree"}}}
		}
	}
	if it.Ref != nil && !slices.ContainsFunc(c.ExternalRefs, func(r ExternalRef) bool { return r.Source == it.Ref.Source }) {
		c.ExternalRefs = append(c.ExternalRefs, *it.Ref)
	}
	c.normalize()
	if fields := s.validate.Struct(&c, ""); fields != nil {
		return nil, false, Invalid(fields...)
	}
	if it.Ref != nil && !slices.Contains(c.ExternalRefs, *it.Ref) {
		return nil, false, Invalid(FieldError{Pointer: "/external_refs", Message: fmt.Sprintf("must keep the external_ref the item is matched on (source %q external_id %q)", it.Ref.Source, it.Ref.ExternalID)})
	}
	if c.ParentID != nil && *c.ParentID == c.ID {
		return nil, false, Invalid(FieldError{Pointer: "/parent_id", Message: "must not be the customer itself"})
	}
	if c.ReferredBy != nil && *c.ReferredBy == c.ID {
		return nil, false, Invalid(FieldError{Pointer: "/referred_by", Message: "must not be the customer itself"})
	}
	if existing == nil {
		return &c, true, nil
	}
	if sameContent(existing, &c) {
		return existing, false, nil
	}
	c.Version = existing.Version + 1
	c.UpdatedAt = now
	return &c, true, nil
}

// cloneCustomer copies c deeply enough that patching the copy leaves c alone.
func cloneCustomer(c *Customer) Customer {
	out := *c
	out.Tags = slices.Clone(c.Tags)
	out.ExternalRefs = slices.Clone(c.ExternalRefs)
	out.Ancestors = slices.Clone(c.Ancestors)
	if c.Attributes != nil {
		b, _ := json.Marshal(c.Attributes)
		out.Attributes = map[string]any{}
		_ = json.Unmarshal(b, &out.Attributes)
	}
	return out
}

// sameContent reports whether two states of a customer hold the same client-settable values.
func sameContent(a, b *Customer) bool {
	return string(contentOf(a)) == string(contentOf(b))
}

func contentOf(c *Customer) []byte {
	v := *c
	v.Version, v.UpdatedAt, v.CreatedAt, v.Ancestors, v.Scores = 0, time.Time{}, time.Time{}, nil, nil
	if v.AcquiredAt != nil {
		t := v.AcquiredAt.UTC()
		v.AcquiredAt = &t
	}
	b, _ := json.Marshal(v)
	return b
}
