package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/oapi-codegen/nullable"

	"github.com/centric-crm/centric/internal/crm"
)

// CustomerBatchStore implements crm.CustomerBatchStore.
type CustomerBatchStore struct {
	db *DB
}

// NewCustomerBatchStore returns a CustomerBatchStore on db.
func NewCustomerBatchStore(db *DB) *CustomerBatchStore { return &CustomerBatchStore{db: db} }

var _ crm.CustomerBatchStore = (*CustomerBatchStore)(nil)

// upsertBatch is one customer batch on its way through UpsertCustomers.
type upsertBatch struct {
	ctx     context.Context
	tx      pgx.Tx
	scope   crm.Scope
	items   []crm.CustomerUpsert
	results []crm.UpsertResult
	// existing is the stored customer each item matched, nil for a creating item.
	existing []*crm.Customer
	// states is each item's customer after the batch, and changed whether it differs.
	states  []*crm.Customer
	changed []bool
	// parentItem is the item that creates an item's parent, or -1.
	parentItem []int
}

// UpsertCustomers matches the items, merges them, places them in the hierarchy parents first,
// and writes the changed ones: their external references, a COPY into a staging table, one
// INSERT for the new customers and one UPDATE for the changed ones, and, for customers moved to
// another parent, one statement per move rewriting the paths of its subtree. A batch whose
// customers change between its read and its write is redone, up to maxBatchAttempts times.
func (s *CustomerBatchStore) UpsertCustomers(ctx context.Context, scope crm.Scope, items []crm.CustomerUpsert, results []crm.UpsertResult, opts crm.UpsertOptions, merge crm.UpsertMerge) error {
	initial := slices.Clone(results)
	var err error
	for range maxBatchAttempts {
		copy(results, initial)
		err = s.upsertOnce(ctx, scope, items, results, opts, merge)
		if !errors.Is(err, errConcurrentChange) {
			break
		}
	}
	if errors.Is(err, errConcurrentChange) {
		return crm.Errorf(crm.CodeConflict, "Customers of this batch kept changing while it was written; nothing was written. Send the batch again.")
	}
	if err != nil {
		return err
	}
	if opts.DryRun {
		for i := range results {
			if results[i].Status == crm.UpsertCreated {
				results[i].ID, results[i].Version = uuid.Nil, 0
			}
		}
	}
	return nil
}

// maxBatchAttempts bounds how often a batch is redone when customers it read change before it
// writes them.
const maxBatchAttempts = 3

// errConcurrentChange redoes a batch: a customer it read changed before it could lock it.
var errConcurrentChange = errors.New("a customer of the batch changed concurrently")

// upsertOnce runs the batch in one transaction. It reads the matched customers without locking
// them, so unchanged items write nothing at all, and locks only the customers it writes,
// checking that their versions are still the ones it read.
func (s *CustomerBatchStore) upsertOnce(ctx context.Context, scope crm.Scope, items []crm.CustomerUpsert, results []crm.UpsertResult, opts crm.UpsertOptions, merge crm.UpsertMerge) error {
	n := len(items)
	b := &upsertBatch{
		ctx: ctx, scope: scope, items: items, results: results,
		existing: make([]*crm.Customer, n), states: make([]*crm.Customer, n), changed: make([]bool, n), parentItem: make([]int, n),
	}
	for i := range b.parentItem {
		b.parentItem[i] = -1
	}
	err := s.db.withPgx(ctx, func(tx pgx.Tx) error {
		b.tx = tx
		steps := []func() error{b.match, b.resolveParentRefs, func() error { b.merge(merge); return nil }, b.checkRefs, b.place, b.checkReferrers, b.checkKindChanges}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		b.failOrphans()
		failed := b.settle()
		if opts.DryRun || (opts.AllOrNone && failed > 0) {
			return errRollback
		}
		return b.write()
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	return err
}

func (b *upsertBatch) ok(i int) bool { return b.results[i].Status == "" }

func (b *upsertBatch) fail(i int, code crm.ErrorCode, pointer, message string) {
	b.results[i] = crm.UpsertResult{Status: crm.UpsertFailed, Err: &crm.Error{
		Code: code, Message: message, Fields: []crm.FieldError{{Pointer: pointer, Message: message}},
	}}
}

// byIDs reads the live customers c whose ids are in $1 within scope: a join from the ids, so
// every plan, generic ones included, looks the ids up in the primary key. It returns the
// query's FROM and WHERE clauses and its arguments.
func byIDs(ids []uuid.UUID, scope crm.Scope) (string, []any) {
	ids = slices.Compact(slices.SortedFunc(slices.Values(ids), func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }))
	clauses := ` FROM unnest($1::uuid[]) AS wanted(id) JOIN customers c ON c.id = wanted.id WHERE c.deleted_at IS NULL`
	if scope.Root == nil {
		return clauses, []any{ids}
	}
	return clauses + ` AND (c.ancestors @> ARRAY[$2::uuid] OR c.id = $2::uuid)`, []any{ids, *scope.Root}
}

// match finds the stored customer of every item and locks it: by id, or by the owner of the
// item's external reference.
func (b *upsertBatch) match() error {
	refIndex := map[crm.ExternalRef][]int{}
	var ids []uuid.UUID
	for i, it := range b.items {
		switch {
		case !b.ok(i):
		case it.ID != nil:
			ids = append(ids, *it.ID)
		default:
			refIndex[*it.Ref] = append(refIndex[*it.Ref], i)
		}
	}
	owners := map[crm.ExternalRef]uuid.UUID{}
	if len(refIndex) > 0 {
		var err error
		if owners, err = lookUpCustomerRefs(b.ctx, b.tx, crm.Scope{}, refIndex); err != nil {
			return err
		}
		for _, id := range owners {
			ids = append(ids, id)
		}
	}
	stored, err := b.readCustomers(ids)
	if err != nil {
		return err
	}
	matchedBy := map[uuid.UUID]int{}
	for i, it := range b.items {
		if !b.ok(i) {
			continue
		}
		var id uuid.UUID
		if it.ID != nil {
			id = *it.ID
			if stored[id] == nil {
				b.fail(i, crm.CodeNotFound, "/id", fmt.Sprintf("no live customer has id %s", id))
				continue
			}
		} else {
			owner, held := owners[*it.Ref]
			if !held {
				continue // creates a customer
			}
			if stored[owner] == nil {
				b.fail(i, crm.CodeConflict, "/external_ref", fmt.Sprintf("source %q external_id %q is held by a customer outside this API key's subtree", it.Ref.Source, it.Ref.ExternalID))
				continue
			}
			id = owner
		}
		if j, dup := matchedBy[id]; dup {
			b.fail(i, crm.CodeInvalid, "", fmt.Sprintf("matches customer %s, which item %d of this batch matches already", id, j))
			continue
		}
		matchedBy[id] = i
		b.existing[i] = stored[id]
	}
	return nil
}

// readCustomers reads the live customers with the given ids within scope.
func (b *upsertBatch) readCustomers(ids []uuid.UUID) (map[uuid.UUID]*crm.Customer, error) {
	out := map[uuid.UUID]*crm.Customer{}
	if len(ids) == 0 {
		return out, nil
	}
	from, args := byIDs(ids, b.scope)
	rows, err := b.tx.Query(b.ctx, `SELECT to_jsonb(c)`+from, args...)
	if err != nil {
		return nil, fmt.Errorf("read customers: %w", err)
	}
	var state []byte
	_, err = pgx.ForEachRow(rows, []any{&state}, func() error {
		var st customerState
		if err := json.Unmarshal(state, &st); err != nil {
			return err
		}
		c := st.customer()
		out[c.ID] = &c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read customers: %w", err)
	}
	return out, nil
}

// resolveParentRefs turns every parent_ref into a parent_id: the customer holding the
// reference, else the item of this batch that creates a customer with it.
func (b *upsertBatch) resolveParentRefs() error {
	refIndex := map[crm.ExternalRef][]int{}
	for i, it := range b.items {
		if b.ok(i) && it.ParentRef != nil {
			refIndex[*it.ParentRef] = append(refIndex[*it.ParentRef], i)
		}
	}
	if len(refIndex) == 0 {
		return nil
	}
	owners, err := lookUpCustomerRefs(b.ctx, b.tx, b.scope, refIndex)
	if err != nil {
		return err
	}
	creating := map[crm.ExternalRef]int{}
	for i, it := range b.items {
		if b.ok(i) && it.Ref != nil && b.existing[i] == nil {
			creating[*it.Ref] = i
		}
	}
	for ref, idxs := range refIndex {
		for _, i := range idxs {
			if owner, ok := owners[ref]; ok {
				b.items[i].Patch.ParentID = nullable.NewNullableWithValue(owner)
			} else if j, ok := creating[ref]; ok {
				b.items[i].Patch.ParentID = nullable.NewNullableWithValue(b.items[j].NewID)
				b.parentItem[i] = j
			} else {
				b.fail(i, crm.CodeInvalid, "/parent_ref", fmt.Sprintf("no live customer or item of this batch has source %q external_id %q", ref.Source, ref.ExternalID))
			}
		}
	}
	return nil
}

// merge builds every item's new state.
func (b *upsertBatch) merge(merge crm.UpsertMerge) {
	for i := range b.items {
		if !b.ok(i) {
			continue
		}
		c, changed, err := merge(i, b.existing[i])
		if err != nil {
			b.results[i] = crm.UpsertResult{Status: crm.UpsertFailed, Err: err}
			continue
		}
		b.states[i], b.changed[i] = c, changed
	}
}

// refChange is the external references an item takes and gives up.
func refChange(old, updated []crm.ExternalRef) (added, removed []crm.ExternalRef) {
	for _, r := range updated {
		if !slices.Contains(old, r) {
			added = append(added, r)
		}
	}
	for _, r := range old {
		if !slices.Contains(updated, r) {
			removed = append(removed, r)
		}
	}
	return added, removed
}

func (b *upsertBatch) oldRefs(i int) []crm.ExternalRef {
	if b.existing[i] == nil {
		return nil
	}
	return b.existing[i].ExternalRefs
}

// checkRefs fails items that take an external reference another customer holds, or that an
// earlier item of the batch takes.
func (b *upsertBatch) checkRefs() error {
	takenBy := map[crm.ExternalRef]int{}
	released := map[crm.ExternalRef]bool{}
	refIndex := map[crm.ExternalRef][]int{}
	for i := range b.items {
		if !b.ok(i) || !b.changed[i] {
			continue
		}
		added, removed := refChange(b.oldRefs(i), b.states[i].ExternalRefs)
		if k := slices.IndexFunc(added, func(r crm.ExternalRef) bool { _, taken := takenBy[r]; return taken }); k >= 0 {
			r := added[k]
			b.fail(i, crm.CodeInvalid, b.refPointer(i, r), fmt.Sprintf("source %q external_id %q is taken by item %d of this batch", r.Source, r.ExternalID, takenBy[r]))
			continue
		}
		for _, r := range removed {
			released[r] = true
		}
		for _, r := range added {
			takenBy[r] = i
			refIndex[r] = append(refIndex[r], i)
		}
	}
	if len(refIndex) == 0 {
		return nil
	}
	owners, err := lookUpCustomerRefs(b.ctx, b.tx, crm.Scope{}, refIndex)
	if err != nil {
		return err
	}
	for r, owner := range owners {
		i := takenBy[r]
		if b.ok(i) && owner != b.states[i].ID && !released[r] {
			b.fail(i, crm.CodeConflict, b.refPointer(i, r), fmt.Sprintf("source %q external_id %q is already used by another live customer", r.Source, r.ExternalID))
		}
	}
	return nil
}

// refPointer points at r in item i's request: in external_refs when the item lists it, else at
// the matching external_ref.
func (b *upsertBatch) refPointer(i int, r crm.ExternalRef) string {
	if refs, err := b.items[i].Patch.ExternalRefs.Get(); err == nil {
		if k := slices.Index(refs, r); k >= 0 {
			return fmt.Sprintf("/external_refs/%d", k)
		}
	}
	return "/external_ref"
}

// parentRow is what placing a customer needs to know of its parent.
type parentRow struct {
	Kind      string
	Ancestors []uuid.UUID
}

// place sets the ancestors of every item that is created or gets another parent, parents
// first, and fails items whose parent is not a live business account within scope, would make
// a cycle, or would make the hierarchy too deep.
func (b *upsertBatch) place() error {
	itemOf := map[uuid.UUID]int{}
	var parentIDs []uuid.UUID
	for i := range b.items {
		if !b.ok(i) || !b.changed[i] {
			continue
		}
		itemOf[b.states[i].ID] = i
		if b.needsPlacing(i) && b.states[i].ParentID != nil && b.parentItem[i] < 0 {
			parentIDs = append(parentIDs, *b.states[i].ParentID)
		}
	}
	parents := map[uuid.UUID]parentRow{}
	if len(parentIDs) > 0 {
		from, args := byIDs(parentIDs, b.scope)
		rows, err := b.tx.Query(b.ctx, `SELECT c.id, c.kind, c.ancestors`+from+` FOR SHARE OF c`, args...)
		if err != nil {
			return fmt.Errorf("read parents: %w", err)
		}
		var id uuid.UUID
		var p parentRow
		if _, err := pgx.ForEachRow(rows, []any{&id, &p.Kind, &p.Ancestors}, func() error {
			parents[id] = parentRow{Kind: p.Kind, Ancestors: slices.Clone(p.Ancestors)}
			return nil
		}); err != nil {
			return fmt.Errorf("read parents: %w", err)
		}
	}
	const (
		unvisited = iota
		visiting
		done
	)
	mark := make([]int, len(b.items))
	var visit func(i int)
	visit = func(i int) {
		if mark[i] != unvisited {
			return
		}
		mark[i] = visiting
		defer func() { mark[i] = done }()
		c := b.states[i]
		if c.ParentID == nil {
			if b.scope.Root != nil {
				b.fail(i, crm.CodeInvalid, "/parent_id", "is required: this API key may only place customers inside its own subtree")
				return
			}
			c.Ancestors = []uuid.UUID{}
			return
		}
		parentID := *c.ParentID
		if j := b.parentItem[i]; j >= 0 && !b.ok(j) {
			b.fail(i, crm.CodeInvalid, b.parentPointer(i), fmt.Sprintf("names the customer of item %d, which failed", j))
			return
		}
		var parent parentRow
		if j, inBatch := itemOf[parentID]; inBatch {
			// The parent is an item of this batch: place it first and take its new state.
			if mark[j] == visiting {
				b.fail(i, crm.CodeInvalid, b.parentPointer(i), "would create a cycle among the items of this batch")
				return
			}
			if b.needsPlacing(j) {
				visit(j)
			}
			if !b.ok(j) {
				b.fail(i, crm.CodeInvalid, b.parentPointer(i), fmt.Sprintf("names the customer of item %d, which failed", j))
				return
			}
			parent = parentRow{Kind: string(b.states[j].Kind), Ancestors: b.states[j].Ancestors}
		} else if p, ok := parents[parentID]; ok {
			parent = p
		} else {
			b.fail(i, crm.CodeInvalid, b.parentPointer(i), "names no live customer")
			return
		}
		switch {
		case parent.Kind != string(crm.KindBusiness):
			b.fail(i, crm.CodeInvalid, b.parentPointer(i), "must be a business account: consumers cannot have customers below them")
		case slices.Contains(parent.Ancestors, c.ID):
			b.fail(i, crm.CodeInvalid, b.parentPointer(i), "would create a cycle: the new parent is below this customer")
		case len(parent.Ancestors)+1 >= maxDepth:
			b.fail(i, crm.CodeInvalid, b.parentPointer(i), fmt.Sprintf("would make the hierarchy deeper than %d levels", maxDepth))
		default:
			c.Ancestors = append(slices.Clone(parent.Ancestors), parentID)
		}
	}
	for i := range b.items {
		if b.ok(i) && b.changed[i] && b.needsPlacing(i) {
			visit(i)
		}
	}
	return nil
}

// needsPlacing reports whether item i creates a customer or moves one to another parent.
func (b *upsertBatch) needsPlacing(i int) bool {
	old := b.existing[i]
	return old == nil || !equalPtr(old.ParentID, b.states[i].ParentID)
}

func (b *upsertBatch) parentPointer(i int) string {
	if b.items[i].ParentRef != nil {
		return "/parent_ref"
	}
	return "/parent_id"
}

// checkReferrers fails items whose new referrer is not a live customer within scope.
func (b *upsertBatch) checkReferrers() error {
	var ids []uuid.UUID
	for i := range b.items {
		if b.ok(i) && b.changed[i] && b.states[i].ReferredBy != nil && (b.existing[i] == nil || !equalPtr(b.existing[i].ReferredBy, b.states[i].ReferredBy)) {
			ids = append(ids, *b.states[i].ReferredBy)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	from, args := byIDs(ids, b.scope)
	live, err := b.liveIDs(`SELECT c.id`+from, args...)
	if err != nil {
		return fmt.Errorf("check referrers: %w", err)
	}
	for i := range b.items {
		if b.ok(i) && b.changed[i] && b.states[i].ReferredBy != nil && (b.existing[i] == nil || !equalPtr(b.existing[i].ReferredBy, b.states[i].ReferredBy)) && !live[*b.states[i].ReferredBy] {
			b.fail(i, crm.CodeInvalid, "/referred_by", "names no live customer")
		}
	}
	return nil
}

// checkKindChanges fails items that turn a business account with customers below it into a
// consumer.
func (b *upsertBatch) checkKindChanges() error {
	var ids []uuid.UUID
	turning := map[uuid.UUID]int{}
	for i := range b.items {
		if b.ok(i) && b.changed[i] && b.existing[i] != nil && b.existing[i].Kind == crm.KindBusiness && b.states[i].Kind == crm.KindConsumer {
			ids = append(ids, b.states[i].ID)
			turning[b.states[i].ID] = i
		}
	}
	if len(ids) == 0 {
		return nil
	}
	withChildren, err := b.liveIDs(`SELECT DISTINCT parent_id FROM customers WHERE parent_id = ANY($1) AND deleted_at IS NULL`, ids)
	if err != nil {
		return fmt.Errorf("check children: %w", err)
	}
	for id, i := range turning {
		if withChildren[id] {
			b.fail(i, crm.CodeInvalid, "/kind", "must stay business while customers are placed below this one")
		}
	}
	return nil
}

func (b *upsertBatch) liveIDs(query string, args ...any) (map[uuid.UUID]bool, error) {
	rows, err := b.tx.Query(b.ctx, query, args...)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}

// failOrphans fails the items whose parent is created by an item that failed, until none is
// left.
func (b *upsertBatch) failOrphans() {
	for again := true; again; {
		again = false
		for i, j := range b.parentItem {
			if j >= 0 && b.ok(i) && !b.ok(j) {
				b.fail(i, crm.CodeInvalid, b.parentPointer(i), fmt.Sprintf("names the customer of item %d, which failed", j))
				again = true
			}
		}
	}
}

// settle sets the status of every item still pending and returns how many failed.
func (b *upsertBatch) settle() int {
	failed := 0
	for i := range b.items {
		if !b.ok(i) {
			failed++
			continue
		}
		c := b.states[i]
		status := crm.UpsertUnchanged
		switch {
		case b.existing[i] == nil:
			status = crm.UpsertCreated
		case b.changed[i]:
			status = crm.UpsertUpdated
		}
		b.results[i] = crm.UpsertResult{Status: status, ID: c.ID, Version: c.Version}
	}
	return failed
}

// write stores the created and updated customers.
func (b *upsertBatch) write() error {
	var written []int
	created, movers := []uuid.UUID{}, []uuid.UUID{} // never nil: nil is NULL, and <> ALL(NULL) matches nothing
	var releasedSources, releasedIDs, claimedSources, claimedIDs []string
	var releasedOwners, claimedOwners []uuid.UUID
	for i, r := range b.results {
		if r.Status != crm.UpsertCreated && r.Status != crm.UpsertUpdated {
			continue
		}
		written = append(written, i)
		c := b.states[i]
		if r.Status == crm.UpsertCreated {
			created = append(created, c.ID)
		} else if b.needsPlacing(i) {
			movers = append(movers, c.ID)
		}
		added, removed := refChange(b.oldRefs(i), c.ExternalRefs)
		for _, ref := range removed {
			releasedSources, releasedIDs, releasedOwners = append(releasedSources, ref.Source), append(releasedIDs, ref.ExternalID), append(releasedOwners, c.ID)
		}
		for _, ref := range added {
			claimedSources, claimedIDs, claimedOwners = append(claimedSources, ref.Source), append(claimedIDs, ref.ExternalID), append(claimedOwners, c.ID)
		}
	}
	if len(written) == 0 {
		return nil
	}
	if err := b.lockWritten(written); err != nil {
		return err
	}
	if len(releasedOwners) > 0 {
		_, err := b.tx.Exec(b.ctx, `DELETE FROM customer_external_refs r
			USING unnest($1::text[], $2::text[], $3::uuid[]) AS w(source, external_id, customer_id)
			WHERE r.source = w.source AND r.external_id = w.external_id AND r.customer_id = w.customer_id`,
			releasedSources, releasedIDs, releasedOwners)
		if err != nil {
			return fmt.Errorf("release external references: %w", err)
		}
	}
	if len(claimedOwners) > 0 {
		tag, err := b.tx.Exec(b.ctx, `INSERT INTO customer_external_refs (external_id, source, customer_id)
			SELECT external_id, source, customer_id FROM unnest($1::text[], $2::text[], $3::uuid[]) AS w(source, external_id, customer_id)
			ON CONFLICT DO NOTHING`, claimedSources, claimedIDs, claimedOwners)
		if err != nil {
			return fmt.Errorf("claim external references: %w", err)
		}
		if tag.RowsAffected() < int64(len(claimedOwners)) {
			return crm.Errorf(crm.CodeConflict, "A concurrent request claimed an external reference of this batch meanwhile; nothing was written. Send the batch again.")
		}
	}
	if err := b.stage(written); err != nil {
		return err
	}
	if _, err := b.tx.Exec(b.ctx, `UPDATE customers c SET kind = s.kind, role = s.role, parent_id = s.parent_id,
			ancestors = s.ancestors, name = s.name, email = s.email, phone = s.phone, country = s.country,
			industry = s.industry, tags = s.tags, attributes = s.attributes, owner = s.owner,
			acquired_at = s.acquired_at, acquisition_channel = s.acquisition_channel,
			acquisition_cost = s.acquisition_cost, acquisition_currency = s.acquisition_currency,
			referred_by = s.referred_by, external_refs = s.external_refs, version = s.version, updated_at = s.updated_at
		FROM staged_customers s WHERE c.id = s.id AND s.id <> ALL($1)`, created); err != nil {
		return fmt.Errorf("update customers: %w", err)
	}
	if _, err := b.tx.Exec(b.ctx, `INSERT INTO customers (`+columnList(customerCopyColumns)+`)
		SELECT `+columnList(customerCopyColumns)+` FROM staged_customers WHERE id = ANY($1)
		ORDER BY cardinality(ancestors), id`, created); err != nil {
		return fmt.Errorf("insert customers: %w", err)
	}
	if len(movers) > 0 {
		if err := b.moveSubtrees(movers); err != nil {
			return err
		}
	}
	return b.readVersions(written)
}

// lockWritten locks the stored customers the batch updates, in id order so concurrent batches
// cannot deadlock, and fails with errConcurrentChange if any changed since it read them.
func (b *upsertBatch) lockWritten(written []int) error {
	read := map[uuid.UUID]int64{}
	var ids []uuid.UUID
	for _, i := range written {
		if old := b.existing[i]; old != nil {
			read[old.ID] = old.Version
			ids = append(ids, old.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	from, args := byIDs(ids, b.scope)
	rows, err := b.tx.Query(b.ctx, `SELECT c.id, c.version`+from+` ORDER BY c.id FOR NO KEY UPDATE OF c`, args...)
	if err != nil {
		return fmt.Errorf("lock customers: %w", err)
	}
	locked := 0
	var id uuid.UUID
	var version int64
	_, err = pgx.ForEachRow(rows, []any{&id, &version}, func() error {
		if version != read[id] {
			return errConcurrentChange
		}
		locked++
		return nil
	})
	if err != nil {
		if errors.Is(err, errConcurrentChange) {
			return err
		}
		return fmt.Errorf("lock customers: %w", err)
	}
	if locked != len(ids) {
		return errConcurrentChange // deleted or moved out of scope meanwhile
	}
	return nil
}

func columnList(columns []string) string { return strings.Join(columns, ", ") }

// stage copies the written items' new states into the session's staging table.
func (b *upsertBatch) stage(written []int) error {
	_, err := b.tx.Exec(b.ctx, `CREATE TEMP TABLE IF NOT EXISTS staged_customers
		(LIKE customers INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`)
	if err != nil {
		return fmt.Errorf("create staging table: %w", err)
	}
	k := -1
	row := make([]any, len(customerCopyColumns))
	ancestors := make([]pgtype.UUID, 0, 8) // never nil: nil is NULL
	var cost pgtype.Numeric
	source := pgx.CopyFromFunc(func() ([]any, error) {
		if k++; k >= len(written) {
			return nil, nil
		}
		var err error
		ancestors, err = fillCustomerRow(row, b.states[written[k]], ancestors, &cost)
		return row, err
	})
	if _, err := b.tx.CopyFrom(b.ctx, pgx.Identifier{"staged_customers"}, customerCopyColumns, source); err != nil {
		return fmt.Errorf("copy customers: %w", err)
	}
	// Without statistics the planner takes the staging table for a few rows and may join it
	// to every customer; a thousand rows are analysed in a millisecond.
	if _, err := b.tx.Exec(b.ctx, `ANALYZE staged_customers`); err != nil {
		return fmt.Errorf("analyse staging table: %w", err)
	}
	return nil
}

// moveSubtrees rewrites the paths below every moved customer, shallowest first, and then checks
// that every path below them agrees with its parent's: moves that depend on one another in
// ways one batch cannot order fail the batch.
func (b *upsertBatch) moveSubtrees(movers []uuid.UUID) error {
	depth := map[uuid.UUID]int{}
	newPath := map[uuid.UUID][]uuid.UUID{}
	for i := range b.items {
		if b.states[i] != nil {
			depth[b.states[i].ID] = len(b.states[i].Ancestors)
			newPath[b.states[i].ID] = b.states[i].Ancestors
		}
	}
	slices.SortFunc(movers, func(x, y uuid.UUID) int { return depth[x] - depth[y] })
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, id := range movers {
		_, err := b.tx.Exec(b.ctx, `UPDATE customers
			SET ancestors = $1::uuid[] || ancestors[array_position(ancestors, $2):], version = version + 1, updated_at = $3
			WHERE ancestors @> ARRAY[$2::uuid] AND ancestors[:array_position(ancestors, $2) - 1] <> $1::uuid[]`,
			newPath[id], id, now)
		if err != nil {
			return fmt.Errorf("move subtree of %s: %w", id, err)
		}
	}
	var inconsistent int64
	err := b.tx.QueryRow(b.ctx, `SELECT count(*) FROM customers c JOIN customers p ON p.id = c.parent_id
		WHERE (c.ancestors && $1::uuid[] OR c.id = ANY($1)) AND c.ancestors <> p.ancestors || p.id`, movers).Scan(&inconsistent)
	if err != nil {
		return fmt.Errorf("check moved subtrees: %w", err)
	}
	if inconsistent > 0 {
		return crm.Errorf(crm.CodeConflict, "This batch moves customers below customers it also moves, which one batch cannot order; nothing was written. Send those moves in separate batches.")
	}
	return nil
}

// readVersions reports the versions the written customers have after the batch.
func (b *upsertBatch) readVersions(written []int) error {
	ids := make([]uuid.UUID, len(written))
	for k, i := range written {
		ids[k] = b.states[i].ID
	}
	rows, err := b.tx.Query(b.ctx, `SELECT id, version FROM customers WHERE id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("read versions: %w", err)
	}
	versions := map[uuid.UUID]int64{}
	var id uuid.UUID
	var version int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &version}, func() error {
		versions[id] = version
		return nil
	}); err != nil {
		return fmt.Errorf("read versions: %w", err)
	}
	for _, i := range written {
		b.results[i].Version = versions[b.states[i].ID]
	}
	return nil
}
