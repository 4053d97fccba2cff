package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"gorm.io/gorm"

	"github.com/centric-crm/centric/internal/crm"
)

// transactionRow is the transactions table.
type transactionRow struct {
	CustomerID uuid.UUID
	ID         uuid.UUID
	Type       string
	OccurredAt time.Time
	Amount     string
	Currency   string
	Product    *string
	Category   *string
	Quantity   *int
	Margin     *string
	Channel    *string
	DealerID   *uuid.UUID
	Source     *string
	ExternalID *string
	Metadata   jsonColumn[map[string]any]
	CreatedAt  time.Time
}

func (transactionRow) TableName() string { return "transactions" }

func (r *transactionRow) transaction() crm.Transaction {
	t := crm.Transaction{
		ID: r.ID, CustomerID: r.CustomerID, Type: crm.TransactionType(r.Type),
		OccurredAt: r.OccurredAt.UTC(), Amount: r.Amount, Currency: r.Currency,
		Product: r.Product, Category: r.Category, Quantity: r.Quantity, Margin: r.Margin,
		Channel: r.Channel, DealerID: r.DealerID, Source: r.Source, ExternalID: r.ExternalID,
		Metadata: r.Metadata.V, CreatedAt: r.CreatedAt.UTC(),
	}
	if t.Metadata == nil {
		t.Metadata = map[string]any{}
	}
	return t
}

// TransactionStore implements crm.TransactionStore.
type TransactionStore struct {
	db *DB
}

// NewTransactionStore returns a TransactionStore on db.
func NewTransactionStore(db *DB) *TransactionStore { return &TransactionStore{db: db} }

var _ crm.TransactionStore = (*TransactionStore)(nil)

// Transaction returns one transaction of a customer within scope.
func (s *TransactionStore) Transaction(ctx context.Context, scope crm.Scope, id uuid.UUID) (*crm.Transaction, error) {
	var row transactionRow
	q := s.db.session(ctx).Where("id = ?", id)
	if scope.Root != nil {
		q = q.Where("customer_id IN (?)", live(s.db.session(ctx).Model(&customerRow{}).Select("id"), scope))
	}
	err := q.Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, crm.Errorf(crm.CodeNotFound, "No transaction has id %s.", id)
	}
	if err != nil {
		return nil, fmt.Errorf("read transaction %s: %w", id, err)
	}
	t := row.transaction()
	if err := hideForeign(s.db.session(ctx), scope, []**uuid.UUID{&t.DealerID}); err != nil {
		return nil, err
	}
	return &t, nil
}

// ListTransactions returns one page of transactions, keyset-paginated on (sort key, id).
func (s *TransactionStore) ListTransactions(ctx context.Context, scope crm.Scope, f crm.TransactionFilter) (crm.TransactionPage, error) {
	if f.Sort == "" {
		f.Sort = crm.DefaultTransactionSort
	}
	page := f.Page
	f.Page = crm.PageRequest{}
	list := fingerprint(struct {
		F crm.TransactionFilter
		S crm.Scope
	}{f, scope})
	after, err := decodeCursor(page.Cursor, list)
	if err != nil {
		return crm.TransactionPage{}, err
	}
	q := s.db.session(ctx)
	if scope.Root != nil {
		q = q.Where("customer_id IN (?)", live(s.db.session(ctx).Model(&customerRow{}).Select("id"), scope))
	}
	if f.CustomerID != nil {
		q = q.Where("customer_id = ?", *f.CustomerID)
	}
	if f.Type != "" {
		q = q.Where("type = ?", string(f.Type))
	}
	if f.OccurredFrom != nil {
		q = q.Where("occurred_at >= ?", *f.OccurredFrom)
	}
	if f.OccurredTo != nil {
		q = q.Where("occurred_at < ?", *f.OccurredTo)
	}
	if f.Source != "" {
		q = q.Where("source = ?", f.Source)
	}
	column := "occurred_at"
	if strings.TrimPrefix(string(f.Sort), "-") == "created_at" {
		column = "created_at"
	}
	cmp, dir := ">", "ASC"
	if strings.HasPrefix(string(f.Sort), "-") {
		cmp, dir = "<", "DESC"
	}
	if after != nil {
		if after.Time == nil {
			return crm.TransactionPage{}, crm.Invalid(crm.FieldError{Pointer: "query:cursor", Message: "does not match the sort"})
		}
		q = q.Where(fmt.Sprintf("(%s, id) %s (?, ?)", column, cmp), *after.Time, after.ID)
	}
	limit := page.LimitOrDefault()
	var rows []transactionRow
	if err := q.Order(fmt.Sprintf("%s %s, id %s", column, dir, dir)).Limit(limit + 1).Find(&rows).Error; err != nil {
		return crm.TransactionPage{}, fmt.Errorf("list transactions: %w", err)
	}
	result := crm.TransactionPage{Transactions: make([]crm.Transaction, 0, min(len(rows), limit))}
	dealers := make([]**uuid.UUID, 0, cap(result.Transactions))
	for i := range rows[:min(len(rows), limit)] {
		result.Transactions = append(result.Transactions, rows[i].transaction())
	}
	for i := range result.Transactions {
		dealers = append(dealers, &result.Transactions[i].DealerID)
	}
	if err := hideForeign(s.db.session(ctx), scope, dealers); err != nil {
		return crm.TransactionPage{}, err
	}
	if len(rows) > limit {
		last := rows[limit-1]
		t := last.OccurredAt.UTC()
		if column == "created_at" {
			t = last.CreatedAt.UTC()
		}
		result.NextCursor = encodeCursor(cursor{List: list, Time: &t, ID: last.ID})
	}
	return result, nil
}

// errRollback aborts an all-or-none batch after its per-item results are known.
var errRollback = errors.New("roll back batch")

// stagingColumns are the columns of the staging table, in COPY order.
var stagingColumns = []string{
	"idx", "id", "customer_id", "type", "occurred_at", "amount", "currency", "product", "category",
	"quantity", "margin", "channel", "dealer_id", "source", "external_id", "metadata", "created_at",
}

// RecordTransactions resolves the items' customers, copies the items into a session-local
// staging table with COPY, and merges them set-based: an item whose (source, external id) is
// new is inserted, one already recorded with the same content is reported as existing, and one
// recorded with other content is a conflict.
func (s *TransactionStore) RecordTransactions(ctx context.Context, scope crm.Scope, items []crm.Transaction, opts crm.RecordOptions) ([]crm.RecordResult, error) {
	results := make([]crm.RecordResult, len(items))
	if len(items) == 0 {
		return results, nil
	}
	err := s.db.withPgx(ctx, func(tx pgx.Tx) error {
		if err := resolveCustomers(ctx, tx, scope, items, results, opts.CreateCustomers); err != nil {
			return err
		}
		if err := checkDealers(ctx, tx, scope, items, results); err != nil {
			return err
		}
		markDuplicateRefs(items, results)
		if err := stage(ctx, tx, items, results); err != nil {
			return err
		}
		if err := mergeStaged(ctx, tx, scope, items, results); err != nil {
			return err
		}
		if opts.AllOrNone && countFailed(results) > 0 {
			return errRollback
		}
		return nil
	})
	if err != nil && !errors.Is(err, errRollback) {
		return nil, err
	}
	for i := range results {
		if results[i].Status == "" {
			results[i].Status = crm.RecordCreated
			results[i].ID, results[i].CustomerID = items[i].ID, items[i].CustomerID
		}
	}
	return results, nil
}

func countFailed(results []crm.RecordResult) int {
	n := 0
	for _, r := range results {
		if r.Status == crm.RecordFailed {
			n++
		}
	}
	return n
}

func fail(results []crm.RecordResult, i int, code crm.ErrorCode, pointer, message string) {
	results[i] = crm.RecordResult{Status: crm.RecordFailed, Err: &crm.Error{
		Code: code, Message: message, Fields: []crm.FieldError{{Pointer: pointer, Message: message}},
	}}
}

// resolveCustomers sets CustomerID on every item that names its customer by reference, creating
// consumers for unknown references when create is set, and fails items whose customer is not a
// live customer within scope. A reference held by a customer outside the scope is reported as
// unknown, and one that cannot be created because it is in use as a conflict; neither says who
// holds it.
func resolveCustomers(ctx context.Context, tx pgx.Tx, scope crm.Scope, items []crm.Transaction, results []crm.RecordResult, create bool) error {
	refIndex := map[crm.ExternalRef][]int{}
	for i, it := range items {
		if it.CustomerRef != nil {
			refIndex[*it.CustomerRef] = append(refIndex[*it.CustomerRef], i)
		}
	}
	if len(refIndex) > 0 {
		found, err := lookUpCustomerRefs(ctx, tx, scope, refIndex)
		if err != nil {
			return err
		}
		if create && len(found) < len(refIndex) {
			if err := createCustomersForRefs(ctx, tx, scope, refIndex, found); err != nil {
				return err
			}
			if found, err = lookUpCustomerRefs(ctx, tx, scope, refIndex); err != nil {
				return err
			}
		}
		for ref, idxs := range refIndex {
			id, ok := found[ref]
			for _, i := range idxs {
				switch {
				case ok:
					items[i].CustomerID = id
				case create:
					fail(results, i, crm.CodeConflict, "/customer_ref", fmt.Sprintf("names no customer this API key can see, and no customer can be created for it: source %q external_id %q is already in use", ref.Source, ref.ExternalID))
				default:
					fail(results, i, crm.CodeInvalid, "/customer_ref", fmt.Sprintf("no live customer has source %q external_id %q", ref.Source, ref.ExternalID))
				}
			}
		}
	}
	ids := make([]uuid.UUID, 0, len(items))
	seen := map[uuid.UUID]bool{}
	for i, it := range items {
		if results[i].Status == "" && !seen[it.CustomerID] {
			seen[it.CustomerID] = true
			ids = append(ids, it.CustomerID)
		}
	}
	query := `SELECT id FROM customers WHERE id = ANY($1) AND deleted_at IS NULL`
	args := []any{ids}
	if scope.Root != nil {
		query += ` AND (ancestors @> ARRAY[$2]::uuid[] OR id = $2)`
		args = append(args, *scope.Root)
	}
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("check customers: %w", err)
	}
	liveIDs, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("check customers: %w", err)
	}
	alive := make(map[uuid.UUID]bool, len(liveIDs))
	for _, id := range liveIDs {
		alive[id] = true
	}
	for i, it := range items {
		if results[i].Status == "" && !alive[it.CustomerID] {
			fail(results, i, crm.CodeInvalid, "/customer_id", fmt.Sprintf("no live customer has id %s", it.CustomerID))
		}
	}
	return nil
}

// lookUpCustomerRefs returns the live customers within scope that hold the references.
func lookUpCustomerRefs(ctx context.Context, tx pgx.Tx, scope crm.Scope, refIndex map[crm.ExternalRef][]int) (map[crm.ExternalRef]uuid.UUID, error) {
	sources := make([]string, 0, len(refIndex))
	externalIDs := make([]string, 0, len(refIndex))
	for ref := range refIndex {
		sources = append(sources, ref.Source)
		externalIDs = append(externalIDs, ref.ExternalID)
	}
	rows, err := tx.Query(ctx, `SELECT r.source, r.external_id, r.customer_id
		FROM customer_external_refs r
		JOIN unnest($1::text[], $2::text[]) AS wanted(source, external_id)
		  ON r.source = wanted.source AND r.external_id = wanted.external_id
		JOIN customers c ON c.id = r.customer_id AND c.deleted_at IS NULL
		WHERE $3::uuid IS NULL OR c.id = $3 OR c.ancestors @> ARRAY[$3::uuid]`, sources, externalIDs, scope.Root)
	if err != nil {
		return nil, fmt.Errorf("look up customer references: %w", err)
	}
	found := make(map[crm.ExternalRef]uuid.UUID, len(refIndex))
	var ref crm.ExternalRef
	var id uuid.UUID
	_, err = pgx.ForEachRow(rows, []any{&ref.Source, &ref.ExternalID, &id}, func() error {
		found[ref] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("look up customer references: %w", err)
	}
	return found, nil
}

// createCustomersForRefs creates a consumer for each reference not in found; under a confined
// scope the consumers are placed directly below the scope's root, which must be a live business
// account. A reference that is in use, or that a concurrent request claims first, is left
// alone; the caller looks the references up again.
func createCustomersForRefs(ctx context.Context, tx pgx.Tx, scope crm.Scope, refIndex map[crm.ExternalRef][]int, found map[crm.ExternalRef]uuid.UUID) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	var parent *uuid.UUID
	ancestors := []uuid.UUID{}
	if scope.Root != nil {
		var rootAncestors []uuid.UUID
		err := tx.QueryRow(ctx, `SELECT ancestors FROM customers WHERE id = $1 AND deleted_at IS NULL AND kind = 'business' FOR SHARE`, *scope.Root).Scan(&rootAncestors)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read scope root: %w", err)
		}
		parent, ancestors = scope.Root, append(rootAncestors, *scope.Root)
	}
	var ids []uuid.UUID
	var sources, externalIDs []string
	for ref := range refIndex {
		if _, ok := found[ref]; ok {
			continue
		}
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		ids = append(ids, id)
		sources = append(sources, ref.Source)
		externalIDs = append(externalIDs, ref.ExternalID)
	}
	_, err := tx.Exec(ctx, `WITH wanted AS (
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) AS w(id, source, external_id)
		), claimed AS (
			INSERT INTO customer_external_refs (external_id, source, customer_id)
			SELECT external_id, source, id FROM wanted
			ON CONFLICT DO NOTHING
			RETURNING customer_id, source, external_id
		)
		INSERT INTO customers (id, kind, parent_id, ancestors, external_refs, version, created_at, updated_at)
		SELECT customer_id, 'consumer', $5, $6, jsonb_build_array(jsonb_build_object('source', source, 'external_id', external_id)), 1, $4, $4
		FROM claimed`, ids, sources, externalIDs, now, parent, ancestors)
	if err != nil {
		return fmt.Errorf("create customers for references: %w", err)
	}
	return nil
}

// checkDealers fails items whose dealer is not a live business account within scope.
func checkDealers(ctx context.Context, tx pgx.Tx, scope crm.Scope, items []crm.Transaction, results []crm.RecordResult) error {
	var ids []uuid.UUID
	for i, it := range items {
		if results[i].Status == "" && it.DealerID != nil {
			ids = append(ids, *it.DealerID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT id FROM customers WHERE id = ANY($1) AND deleted_at IS NULL AND kind = 'business'
		AND ($2::uuid IS NULL OR id = $2 OR ancestors @> ARRAY[$2::uuid])`, ids, scope.Root)
	if err != nil {
		return fmt.Errorf("check dealers: %w", err)
	}
	dealers, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return fmt.Errorf("check dealers: %w", err)
	}
	known := make(map[uuid.UUID]bool, len(dealers))
	for _, id := range dealers {
		known[id] = true
	}
	for i, it := range items {
		if results[i].Status == "" && it.DealerID != nil && !known[*it.DealerID] {
			fail(results, i, crm.CodeInvalid, "/dealer_id", fmt.Sprintf("no live business account has id %s", *it.DealerID))
		}
	}
	return nil
}

// markDuplicateRefs fails every item that repeats the (source, external id) of an earlier item.
func markDuplicateRefs(items []crm.Transaction, results []crm.RecordResult) {
	first := map[crm.ExternalRef]int{}
	for i, it := range items {
		if results[i].Status != "" || it.Source == nil {
			continue
		}
		ref := crm.ExternalRef{Source: *it.Source, ExternalID: *it.ExternalID}
		if j, ok := first[ref]; ok {
			fail(results, i, crm.CodeInvalid, "/external_id", fmt.Sprintf("repeats item %d of this batch (same source and external_id)", j))
			continue
		}
		first[ref] = i
	}
}

// stage copies the items still pending into the session's staging table.
func stage(ctx context.Context, tx pgx.Tx, items []crm.Transaction, results []crm.RecordResult) error {
	_, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS staged_transactions (
			idx int, id uuid, customer_id uuid, type text, occurred_at timestamptz, amount numeric,
			currency text, product text, category text, quantity int, margin numeric, channel text,
			dealer_id uuid, source text, external_id text, metadata jsonb, created_at timestamptz
		) ON COMMIT DELETE ROWS`)
	if err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	i := -1
	row := make([]any, len(stagingColumns))
	source := pgx.CopyFromFunc(func() ([]any, error) {
		for i++; i < len(items) && results[i].Status != ""; i++ {
		}
		if i >= len(items) {
			return nil, nil
		}
		t := &items[i]
		var amount, margin pgtype.Numeric
		if err := amount.ScanScientific(t.Amount); err != nil {
			return nil, fmt.Errorf("item %d amount: %w", i, err)
		}
		if t.Margin != nil {
			if err := margin.ScanScientific(*t.Margin); err != nil {
				return nil, fmt.Errorf("item %d margin: %w", i, err)
			}
		}
		metadata := []byte("{}")
		if len(t.Metadata) > 0 {
			var err error
			if metadata, err = json.Marshal(t.Metadata); err != nil {
				return nil, fmt.Errorf("item %d metadata: %w", i, err)
			}
		}
		row[0], row[1], row[2], row[3] = int32(i), pgUUID(&t.ID), pgUUID(&t.CustomerID), pgtype.Text{String: string(t.Type), Valid: true}
		row[4], row[5], row[6] = pgtype.Timestamptz{Time: t.OccurredAt, Valid: true}, amount, pgtype.Text{String: t.Currency, Valid: true}
		row[7], row[8], row[9], row[10], row[11] = pgText(t.Product), pgText(t.Category), pgInt4(t.Quantity), margin, pgText(t.Channel)
		row[12], row[13], row[14], row[15] = pgUUID(t.DealerID), pgText(t.Source), pgText(t.ExternalID), metadata
		row[16] = pgtype.Timestamptz{Time: t.CreatedAt, Valid: true}
		return row, nil
	})
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staged_transactions"}, stagingColumns, source); err != nil {
		return fmt.Errorf("copy transactions: %w", err)
	}
	return nil
}

func pgUUID(id *uuid.UUID) pgtype.UUID {
	if id == nil {
		return pgtype.UUID{}
	}
	return pgtype.UUID{Bytes: *id, Valid: true}
}

func pgText(s *string) pgtype.Text {
	if s == nil {
		return pgtype.Text{}
	}
	return pgtype.Text{String: *s, Valid: true}
}

func pgInt4(n *int) pgtype.Int4 {
	if n == nil {
		return pgtype.Int4{}
	}
	return pgtype.Int4{Int32: int32(*n), Valid: true}
}

// mergeStaged claims the staged items' external references, reports the items already
// recorded (comparing content only for references that were taken before), and inserts the rest.
func mergeStaged(ctx context.Context, tx pgx.Tx, scope crm.Scope, items []crm.Transaction, results []crm.RecordResult) error {
	tag, err := tx.Exec(ctx, `INSERT INTO transaction_external_refs (external_id, source, customer_id, transaction_id)
		SELECT external_id, source, customer_id, id FROM staged_transactions WHERE source IS NOT NULL
		ON CONFLICT DO NOTHING`)
	if err != nil {
		return fmt.Errorf("claim transaction references: %w", err)
	}
	existing := []int32{}
	if withRefs := countPendingRefs(items, results); tag.RowsAffected() < int64(withRefs) {
		if existing, err = compareRecorded(ctx, tx, scope, items, results); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO transactions (customer_id, id, type, occurred_at, amount, currency,
			product, category, quantity, margin, channel, dealer_id, source, external_id, metadata, created_at)
		SELECT customer_id, id, type, occurred_at, amount, currency, product, category, quantity, margin,
			channel, dealer_id, source, external_id, metadata, created_at
		FROM staged_transactions WHERE idx <> ALL($1)`, existing)
	if err != nil {
		return fmt.Errorf("insert transactions: %w", err)
	}
	return nil
}

func countPendingRefs(items []crm.Transaction, results []crm.RecordResult) int {
	n := 0
	for i, it := range items {
		if results[i].Status == "" && it.Source != nil {
			n++
		}
	}
	return n
}

// compareRecorded finds the staged items whose reference belongs to a transaction recorded
// before, marks each existing (same content) or failed (other content), and returns their
// indexes. A conflict names the recorded transaction only when its customer is within scope.
func compareRecorded(ctx context.Context, tx pgx.Tx, scope crm.Scope, items []crm.Transaction, results []crm.RecordResult) ([]int32, error) {
	rows, err := tx.Query(ctx, `SELECT s.idx, t.id, t.customer_id,
			$1::uuid IS NULL OR t.customer_id = $1 OR EXISTS (
				SELECT 1 FROM customers c WHERE c.id = t.customer_id AND c.ancestors @> ARRAY[$1::uuid]) AS visible,
			t.customer_id = s.customer_id AND t.type = s.type AND t.occurred_at = s.occurred_at
			AND t.amount = s.amount AND t.currency = s.currency
			AND t.product IS NOT DISTINCT FROM s.product AND t.category IS NOT DISTINCT FROM s.category
			AND t.quantity IS NOT DISTINCT FROM s.quantity AND t.margin IS NOT DISTINCT FROM s.margin
			AND t.channel IS NOT DISTINCT FROM s.channel AND t.dealer_id IS NOT DISTINCT FROM s.dealer_id
			AND t.metadata = s.metadata AS same
		FROM staged_transactions s
		JOIN transaction_external_refs r ON r.external_id = s.external_id AND r.source = s.source
		JOIN transactions t ON t.customer_id = r.customer_id AND t.id = r.transaction_id
		WHERE r.transaction_id <> s.id`, scope.Root)
	if err != nil {
		return nil, fmt.Errorf("compare recorded transactions: %w", err)
	}
	existing := []int32{}
	var idx int32
	var id, customerID uuid.UUID
	var visible, same bool
	_, err = pgx.ForEachRow(rows, []any{&idx, &id, &customerID, &visible, &same}, func() error {
		existing = append(existing, idx)
		if same {
			results[idx] = crm.RecordResult{Status: crm.RecordExisting, ID: id, CustomerID: customerID}
			return nil
		}
		it := items[idx]
		msg := fmt.Sprintf("source %q external_id %q was already recorded with other content as transaction %s", *it.Source, *it.ExternalID, id)
		if !visible {
			msg = fmt.Sprintf("source %q external_id %q is already in use by another transaction", *it.Source, *it.ExternalID)
		}
		fail(results, int(idx), crm.CodeConflict, "/external_id", msg)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compare recorded transactions: %w", err)
	}
	return existing, nil
}
