package crm

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// ChangeType is the kind of record a change is about.
type ChangeType string

// The kinds of record the change feed carries.
const (
	ChangeCustomer          ChangeType = "customer"
	ChangeTransaction       ChangeType = "transaction"
	ChangeSegmentMembership ChangeType = "segment_membership"
)

// ChangeOperation says what happened to the record.
type ChangeOperation string

// The operations of the change feed.
const (
	OperationCreated ChangeOperation = "created"
	OperationUpdated ChangeOperation = "updated"
	OperationDeleted ChangeOperation = "deleted"
)

// ChangeRetention is how long the change log keeps a change; the feed promises at least 30 days.
const ChangeRetention = 35 * 24 * time.Hour

// Actor is the API key that made a change.
type Actor struct {
	KeyID uuid.UUID
	// Name is the key's name; empty once the key is gone.
	Name string
}

// Tombstone is what remains of a deleted record: its id, its external references and where it
// hung in the hierarchy.
type Tombstone struct {
	ID           uuid.UUID
	CustomerID   uuid.UUID
	ParentID     *uuid.UUID
	ExternalRefs []ExternalRef
}

// MembershipChange is the segments one customer entered and left in one write.
type MembershipChange struct {
	CustomerID uuid.UUID
	Cause      string
	ChangedAt  time.Time
	Entered    []SegmentRef
	Left       []SegmentRef
}

// Change is one entry of the change log. Exactly one of Customer, Transaction, Membership and
// Tombstone is set: the new state of an upsert, the segments a customer entered and left, or
// what remains after a deletion.
type Change struct {
	// ID identifies the change and orders the feed.
	ID            string
	Type          ChangeType
	Operation     ChangeOperation
	EntityID      uuid.UUID
	CustomerID    uuid.UUID
	ChangedFields []string
	Actor         *Actor
	ChangedAt     time.Time
	Customer      *Customer
	Transaction   *Transaction
	Membership    *MembershipChange
	Tombstone     *Tombstone
}

// ChangeFilter selects a page of the change feed. Empty Types means every type.
type ChangeFilter struct {
	Types []ChangeType
	Page  PageRequest
}

// ChangePage is one page of the change feed. NextCursor is always set: it is where the next
// read resumes, also after the last page.
type ChangePage struct {
	Changes    []Change
	NextCursor string
	HasMore    bool
}

// AuditPage is one page of a customer's audit trail, newest first. NextCursor is empty on the
// last page.
type AuditPage struct {
	Changes    []Change
	NextCursor string
}

// ChangeStore reads the change log. Every method honours the scope.
type ChangeStore interface {
	// ListChanges returns the committed changes after the page's cursor, oldest first, without
	// gaps: a change that commits later is always after every change already served.
	ListChanges(ctx context.Context, scope Scope, f ChangeFilter) (ChangePage, error)
	// CustomerAudit returns the changes of a customer (live or deleted) and its transactions,
	// newest first, or NotFound; with types given, only the changes of those kinds of record.
	CustomerAudit(ctx context.Context, scope Scope, customerID uuid.UUID, types []ChangeType, page PageRequest) (AuditPage, error)
	// PruneChanges deletes the changes made before cutoff and returns how many.
	PruneChanges(ctx context.Context, cutoff time.Time) (int64, error)
}

// ChangeService reads the change feed and the audit trail.
type ChangeService struct {
	store ChangeStore
	now   func() time.Time
}

// NewChangeService returns a ChangeService over store.
func NewChangeService(store ChangeStore, now func() time.Time) *ChangeService {
	return &ChangeService{store: store, now: now}
}

// List returns one page of the change feed.
func (s *ChangeService) List(ctx context.Context, scope Scope, f ChangeFilter) (ChangePage, error) {
	return s.store.ListChanges(ctx, scope, f)
}

// Audit returns one page of a customer's audit trail.
func (s *ChangeService) Audit(ctx context.Context, scope Scope, customerID uuid.UUID, types []ChangeType, page PageRequest) (AuditPage, error) {
	return s.store.CustomerAudit(ctx, scope, customerID, types, page)
}

// Prune deletes the changes older than ChangeRetention.
func (s *ChangeService) Prune(ctx context.Context) (int64, error) {
	return s.store.PruneChanges(ctx, s.now().Add(-ChangeRetention))
}

type actorKey struct{}

// WithActor returns a context whose writes are recorded as made by the API key keyID.
func WithActor(ctx context.Context, keyID uuid.UUID) context.Context {
	return context.WithValue(ctx, actorKey{}, keyID)
}

// ActorOf returns the API key that ctx's writes are recorded as made by.
func ActorOf(ctx context.Context) (uuid.UUID, bool) {
	id, ok := ctx.Value(actorKey{}).(uuid.UUID)
	return id, ok
}
