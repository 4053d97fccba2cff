package crm

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// TransactionType says whether a transaction moved revenue or recorded a cost.
type TransactionType string

// The types of transaction.
const (
	TypePurchase TransactionType = "purchase"
	TypeRefund   TransactionType = "refund"
	TypeCost     TransactionType = "cost"
)

// maxFutureSkew is how far in the future a transaction may be dated, to allow for clock skew
// between systems; anything later is a data error.
const maxFutureSkew = 24 * time.Hour

// MaxBatchSize is the most transactions one batch may carry.
const MaxBatchSize = 10000

// Transaction is a purchase, a refund, or a cost of winning or serving a customer. Amounts are
// decimal strings; the type gives the sign.
type Transaction struct {
	ID          uuid.UUID       `json:"id"`
	CustomerID  uuid.UUID       `json:"customer_id"`
	CustomerRef *ExternalRef    `json:"customer_ref"`
	Type        TransactionType `json:"type" validate:"oneof=purchase refund cost"`
	OccurredAt  time.Time       `json:"occurred_at" validate:"required"`
	Amount      string          `json:"amount" validate:"decimal"`
	Currency    string          `json:"currency" validate:"iso4217"`
	Product     *string         `json:"product" validate:"omitempty,max=200"`
	Category    *string         `json:"category" validate:"omitempty,max=100"`
	Quantity    *int            `json:"quantity" validate:"omitempty,gte=1,lte=1000000000"`
	Margin      *string         `json:"margin" validate:"omitempty,signed_decimal"`
	Channel     *string         `json:"channel" validate:"omitempty,max=100"`
	DealerID    *uuid.UUID      `json:"dealer_id"`
	Source      *string         `json:"source" validate:"required_with=ExternalID,omitempty,max=64,printascii,excludesall= /"`
	ExternalID  *string         `json:"external_id" validate:"required_with=Source,omitempty,max=255"`
	Metadata    map[string]any  `json:"metadata" validate:"json_size"`
	CreatedAt   time.Time       `json:"created_at"`
}

// RecordStatus is what recording one transaction did.
type RecordStatus string

// The outcomes of recording a transaction.
const (
	RecordCreated  RecordStatus = "created"
	RecordExisting RecordStatus = "existing"
	RecordFailed   RecordStatus = "error"
)

// RecordResult is the outcome for one transaction of a batch. Err is set when Status is
// RecordFailed; its field pointers are relative to the item.
type RecordResult struct {
	Status     RecordStatus
	ID         uuid.UUID
	CustomerID uuid.UUID
	Err        *Error
}

// RecordOptions tune how a batch is recorded.
type RecordOptions struct {
	// AllOrNone writes nothing unless every item can be recorded.
	AllOrNone bool
	// CreateCustomers creates a consumer for each customer reference that names no customer.
	CreateCustomers bool
}

// TransactionSort orders transaction lists. Every order breaks ties by id.
type TransactionSort string

// The supported transaction orders; a leading minus sorts descending.
const (
	SortOccurredAsc        TransactionSort = "occurred_at"
	SortOccurredDesc       TransactionSort = "-occurred_at"
	SortRecordedAsc        TransactionSort = "created_at"
	SortRecordedDesc       TransactionSort = "-created_at"
	DefaultTransactionSort                 = SortOccurredDesc
)

// TransactionFilter selects and orders a page of transactions. Zero fields do not filter.
type TransactionFilter struct {
	CustomerID   *uuid.UUID
	Type         TransactionType
	OccurredFrom *time.Time
	OccurredTo   *time.Time
	Source       string
	Sort         TransactionSort
	Page         PageRequest
}

// TransactionPage is one page of transactions.
type TransactionPage struct {
	Transactions []Transaction
	NextCursor   string
}

// TransactionStore persists transactions. Every method honours the scope.
type TransactionStore interface {
	// RecordTransactions records valid, id-stamped transactions set-based and returns one
	// result per item, in order. Under opts.AllOrNone it writes nothing if any item fails.
	RecordTransactions(ctx context.Context, scope Scope, items []Transaction, opts RecordOptions) ([]RecordResult, error)
	// Transaction returns one transaction or a NotFound error.
	Transaction(ctx context.Context, scope Scope, id uuid.UUID) (*Transaction, error)
	// ListTransactions returns one page of transactions.
	ListTransactions(ctx context.Context, scope Scope, f TransactionFilter) (TransactionPage, error)
}

// ScoreRefresher recomputes the scores of customers whose transactions changed. It handles its
// own failures: scores are derived data and never fail the write that changed them.
type ScoreRefresher interface {
	RefreshScores(ctx context.Context, customerIDs []uuid.UUID)
}

// customerReader reads one live customer.
type customerReader interface {
	Customer(ctx context.Context, scope Scope, id uuid.UUID) (*Customer, error)
}

// TransactionService records and reads transactions.
type TransactionService struct {
	store     TransactionStore
	customers customerReader
	scores    ScoreRefresher
	validate  *Validator
	now       func() time.Time
}

// NewTransactionService returns a TransactionService that has scores refreshes the scores of
// the customers whose transactions it records.
func NewTransactionService(store TransactionStore, customers CustomerStore, scores ScoreRefresher, v *Validator, now func() time.Time) *TransactionService {
	return &TransactionService{store: store, customers: customers, scores: scores, validate: v, now: now}
}

// Create records one transaction. It reports whether it was created, or had already been
// recorded with the same (source, external id) and content; the same reference with other
// content is a Conflict error.
func (s *TransactionService) Create(ctx context.Context, scope Scope, t Transaction) (*Transaction, bool, error) {
	results, err := s.record(ctx, scope, []Transaction{t}, RecordOptions{AllOrNone: true}, "")
	if err != nil {
		return nil, false, err
	}
	r := results[0]
	if r.Status == RecordFailed {
		return nil, false, r.Err
	}
	stored, err := s.store.Transaction(ctx, scope, r.ID)
	if err != nil {
		return nil, false, fmt.Errorf("read recorded transaction: %w", err)
	}
	return stored, r.Status == RecordCreated, nil
}

// Record records a batch of transactions and returns one result per item, whose error
// pointers are relative to the request (/items/{i}/…). Under opts.AllOrNone, any failure fails
// the whole batch with an Invalid error listing every failed field, and nothing is written.
func (s *TransactionService) Record(ctx context.Context, scope Scope, items []Transaction, opts RecordOptions) ([]RecordResult, error) {
	if len(items) > MaxBatchSize {
		return nil, Invalid(FieldError{Pointer: "/items", Message: fmt.Sprintf("must have at most %d items", MaxBatchSize)})
	}
	results, err := s.record(ctx, scope, items, opts, "/items/%d")
	if err != nil {
		return nil, err
	}
	if opts.AllOrNone {
		var fields []FieldError
		for _, r := range results {
			if r.Status == RecordFailed {
				fields = append(fields, r.Err.Fields...)
			}
		}
		if fields != nil {
			e := Invalid(fields...)
			e.Message = fmt.Sprintf("Nothing was recorded: %d of %d items failed (all_or_none). %s", countFailed(results), len(items), e.Message)
			return nil, e
		}
	}
	return results, nil
}

// record validates items, stamps ids on the valid ones, and records those. Pointers of
// failures are prefixed with pointerFormat applied to the item's index.
func (s *TransactionService) record(ctx context.Context, scope Scope, items []Transaction, opts RecordOptions, pointerFormat string) ([]RecordResult, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	results := make([]RecordResult, len(items))
	s.validateAll(items, results, now)
	valid := make([]Transaction, 0, len(items))
	validIndex := make([]int, 0, len(items))
	for i := range items {
		if results[i].Status == RecordFailed {
			continue
		}
		t := items[i]
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		t.ID, t.CreatedAt = id, now
		t.OccurredAt = t.OccurredAt.UTC()
		if t.Metadata == nil {
			t.Metadata = map[string]any{}
		}
		valid = append(valid, t)
		validIndex = append(validIndex, i)
	}
	if opts.AllOrNone && len(valid) < len(items) {
		prefixPointers(results, pointerFormat)
		return results, nil
	}
	stored, err := s.store.RecordTransactions(ctx, scope, valid, opts)
	if err != nil {
		return nil, err
	}
	changed := map[uuid.UUID]bool{}
	for j, r := range stored {
		results[validIndex[j]] = r
		if r.Status == RecordCreated {
			changed[r.CustomerID] = true
		}
	}
	if len(changed) > 0 && !(opts.AllOrNone && countFailed(results) > 0) {
		s.scores.RefreshScores(ctx, slices.Collect(maps.Keys(changed)))
	}
	prefixPointers(results, pointerFormat)
	return results, nil
}

// validateAll validates items on every processor and marks the invalid ones failed.
func (s *TransactionService) validateAll(items []Transaction, results []RecordResult, now time.Time) {
	workers := min(runtime.GOMAXPROCS(0), (len(items)+999)/1000)
	if workers <= 1 {
		s.validateRange(items, results, now, 0, len(items))
		return
	}
	var wg sync.WaitGroup
	chunk := (len(items) + workers - 1) / workers
	for start := 0; start < len(items); start += chunk {
		end := min(start+chunk, len(items))
		wg.Go(func() { s.validateRange(items, results, now, start, end) })
	}
	wg.Wait()
}

func (s *TransactionService) validateRange(items []Transaction, results []RecordResult, now time.Time, start, end int) {
	for i := start; i < end; i++ {
		if fields := s.validateTransaction(&items[i], now); fields != nil {
			results[i] = RecordResult{Status: RecordFailed, Err: Invalid(fields...)}
		}
	}
}

func (s *TransactionService) validateTransaction(t *Transaction, now time.Time) []FieldError {
	fields := s.validate.Struct(t, "")
	switch {
	case t.CustomerID == uuid.Nil && t.CustomerRef == nil:
		fields = append(fields, FieldError{Pointer: "/customer_id", Message: "is required unless customer_ref names the customer"})
	case t.CustomerID != uuid.Nil && t.CustomerRef != nil:
		fields = append(fields, FieldError{Pointer: "/customer_ref", Message: "must not be given together with customer_id"})
	}
	if t.OccurredAt.After(now.Add(maxFutureSkew)) {
		fields = append(fields, FieldError{Pointer: "/occurred_at", Message: "must not be more than 24 hours in the future"})
	}
	return fields
}

func prefixPointers(results []RecordResult, pointerFormat string) {
	if pointerFormat == "" {
		return
	}
	for i := range results {
		if results[i].Err == nil {
			continue
		}
		prefix := fmt.Sprintf(pointerFormat, i)
		for j := range results[i].Err.Fields {
			results[i].Err.Fields[j].Pointer = prefix + results[i].Err.Fields[j].Pointer
		}
	}
}

func countFailed(results []RecordResult) int {
	n := 0
	for _, r := range results {
		if r.Status == RecordFailed {
			n++
		}
	}
	return n
}

// Get returns one transaction.
func (s *TransactionService) Get(ctx context.Context, scope Scope, id uuid.UUID) (*Transaction, error) {
	return s.store.Transaction(ctx, scope, id)
}

// List returns one page of transactions.
func (s *TransactionService) List(ctx context.Context, scope Scope, f TransactionFilter) (TransactionPage, error) {
	return s.store.ListTransactions(ctx, scope, f)
}

// ListForCustomer returns one page of a live customer's transactions, or NotFound.
func (s *TransactionService) ListForCustomer(ctx context.Context, scope Scope, customerID uuid.UUID, f TransactionFilter) (TransactionPage, error) {
	if _, err := s.customers.Customer(ctx, scope, customerID); err != nil {
		return TransactionPage{}, err
	}
	f.CustomerID = &customerID
	return s.store.ListTransactions(ctx, scope, f)
}
