package postgres_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/demo"
	"github.com/centric-crm/centric/internal/postgres"
	"github.com/centric-crm/centric/internal/postgres/pgtest"
)

// TestMain gives this package's database tests their throwaway PostgreSQL. It is the
// package's only TestMain: other database tests here share it.
func TestMain(m *testing.M) { pgtest.Main(m) }

func openDB(t *testing.T) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.DSN(t), postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// asJSON is v as the API would show it, so records compare independently of Go types.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLoadDemo loads a small demo and reads it back through the stores: every customer as
// generated, the hierarchy's subtrees and scopes, external references, and transactions.
func TestLoadDemo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	opts := demo.DefaultOptions(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC))
	opts.Customers = 400
	g, err := demo.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	customers, transactions := slices.Collect(g.Customers()), slices.Collect(g.Transactions())
	schema := schemaOf(t, db)
	load, err := db.LoadDemo(ctx, g.Customers(), g.Transactions())
	if err != nil {
		t.Fatal(err)
	}
	// LoadDemo drops indexes and foreign keys for the load: all are back as they were.
	if diff := cmp.Diff(schema, schemaOf(t, db)); diff != "" {
		t.Errorf("indexes and constraints changed (-before +after):\n%s", diff)
	}
	refs := 0
	for _, c := range customers {
		refs += len(c.ExternalRefs)
	}
	if load.Customers != int64(len(customers)) || load.ExternalRefs != int64(refs) || load.Transactions != int64(len(transactions)) {
		t.Fatalf("loaded %+v, want %d customers, %d references, %d transactions", load, len(customers), refs, len(transactions))
	}
	var count int64
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM transactions`).Scan(&count); err != nil || count != int64(len(transactions)) {
		t.Fatalf("transactions table holds %d rows (%v), want %d", count, err, len(transactions))
	}
	// The demo is a starting state, not a history: it stays out of the change log.
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM change_log`).Scan(&count); err != nil || count != 0 {
		t.Fatalf("the demo wrote %d changes (%v), want none", count, err)
	}

	store := postgres.NewCustomerStore(db)
	byID := map[uuid.UUID]crm.Customer{}
	for _, want := range customers {
		byID[want.ID] = want
		got, err := store.Customer(ctx, crm.Scope{}, want.ID)
		if err != nil {
			t.Fatalf("read customer %s: %v", want.ID, err)
		}
		if diff := cmp.Diff(asJSON(t, want), asJSON(t, got)); diff != "" {
			t.Fatalf("customer %s as stored differs from the generated one (-generated +stored):\n%s", want.ID, diff)
		}
	}

	// Every distributor's subtree, through the store's materialised-path filter, is exactly
	// the customers whose ancestors include it; a key confined to it sees nothing else.
	distributors := 0
	for _, c := range customers {
		if c.Role == nil || *c.Role != crm.RoleDistributor {
			continue
		}
		distributors++
		var want []uuid.UUID
		for _, d := range customers {
			if slices.Contains(d.Ancestors, c.ID) {
				want = append(want, d.ID)
			}
		}
		got := listAll(t, store, crm.Scope{}, crm.CustomerFilter{DescendantOf: &c.ID})
		slices.SortFunc(want, uuidCompare)
		slices.SortFunc(got, uuidCompare)
		if diff := cmp.Diff(want, got); diff != "" || len(want) < 4 {
			t.Errorf("descendants of distributor %s (-want +got, %d wanted):\n%s", c.ID, len(want), diff)
		}
		scoped := listAll(t, store, crm.Scope{Root: &c.ID}, crm.CustomerFilter{})
		if len(scoped) != len(want)+1 {
			t.Errorf("a key confined to distributor %s sees %d customers, want %d", c.ID, len(scoped), len(want)+1)
		}
		for _, id := range scoped {
			if d := byID[id]; id != c.ID && !slices.Contains(d.Ancestors, c.ID) {
				t.Errorf("a key confined to distributor %s sees %s outside its subtree", c.ID, id)
			}
		}
	}
	if distributors < 3 {
		t.Errorf("%d distributors, want at least 3", distributors)
	}

	// External references resolve to their customers.
	for _, c := range customers[len(customers)-40:] {
		for _, r := range c.ExternalRefs {
			got := listAll(t, store, crm.Scope{}, crm.CustomerFilter{ExternalRef: &r})
			if len(got) != 1 || got[0] != c.ID {
				t.Errorf("reference %+v finds %v, want %s", r, got, c.ID)
			}
		}
	}

	// A customer's transactions read back as generated.
	last := customers[len(customers)-20]
	var want []crm.Transaction
	for _, tx := range transactions {
		if tx.CustomerID == last.ID {
			tx.Metadata = map[string]any{}
			want = append(want, tx)
		}
	}
	page, err := postgres.NewTransactionStore(db).ListTransactions(ctx, crm.Scope{}, crm.TransactionFilter{
		CustomerID: &last.ID, Sort: crm.SortOccurredAsc, Page: crm.PageRequest{Limit: crm.MaxPageSize},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 || len(want) >= crm.MaxPageSize {
		t.Fatalf("pick another customer: %d transactions", len(want))
	}
	// Only refunds carry metadata; compare it apart.
	for i := range page.Transactions {
		page.Transactions[i].Metadata = map[string]any{}
	}
	if diff := cmp.Diff(asJSON(t, want), asJSON(t, page.Transactions)); diff != "" {
		t.Errorf("transactions of %s as stored differ (-generated +stored):\n%s", last.ID, diff)
	}
	var refundOf int
	err = db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM transactions t
		JOIN transactions p ON p.id = (t.metadata->>'refund_of')::uuid AND p.customer_id = t.customer_id
		WHERE t.type = 'refund' AND p.type = 'purchase' AND t.amount <= p.amount AND t.occurred_at > p.occurred_at`).Scan(&refundOf)
	if err != nil {
		t.Fatal(err)
	}
	refunds := 0
	for _, tx := range transactions {
		if tx.Type == crm.TypeRefund {
			refunds++
		}
	}
	if refundOf != refunds {
		t.Errorf("%d refunds name a bigger or later purchase of their customer, want all %d", refundOf, refunds)
	}

	// The database is no longer empty: a second load is refused and writes nothing.
	_, err = db.LoadDemo(ctx, g.Customers(), g.Transactions())
	if crm.ErrorCodeOf(err) != crm.CodeConflict {
		t.Fatalf("second LoadDemo: error %v, want a conflict", err)
	}
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM customers`).Scan(&count); err != nil || count != int64(len(customers)) {
		t.Fatalf("after the refused load: %d customers (%v), want %d", count, err, len(customers))
	}

	// Capture was off for the load only: the next write is recorded.
	if _, err := db.SQL().ExecContext(ctx, `UPDATE customers SET name = 'renamed' WHERE id = $1`, customers[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM change_log`).Scan(&count); err != nil || count != 1 {
		t.Fatalf("a write after the demo recorded %d changes (%v), want 1", count, err)
	}
}

// schemaOf lists the valid indexes and the constraints of every table.
func schemaOf(t *testing.T, db *postgres.DB) []string {
	t.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), `
		SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
		WHERE c.relnamespace = 'public'::regnamespace AND i.indisvalid AND i.indisready
		UNION ALL
		SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
		WHERE connamespace = 'public'::regnamespace AND convalidated
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil || len(out) < 10 {
		t.Fatalf("schema: %v, %d entries", err, len(out))
	}
	return out
}

func uuidCompare(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) }

// listAll lists every customer matching f within scope, page by page, and returns their ids.
func listAll(t *testing.T, store *postgres.CustomerStore, scope crm.Scope, f crm.CustomerFilter) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	f.Page = crm.PageRequest{Limit: crm.MaxPageSize}
	for {
		page, err := store.ListCustomers(context.Background(), scope, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Customers {
			ids = append(ids, c.ID)
		}
		if page.NextCursor == "" {
			return ids
		}
		f.Page.Cursor = page.NextCursor
	}
}
