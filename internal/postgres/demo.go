package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/centric-crm/centric/internal/crm"
)

// DemoLoad describes what LoadDemo wrote.
type DemoLoad struct {
	Customers    int64
	ExternalRefs int64
	Transactions int64
	// Copy is the time of the transaction that copied the rows in; Vacuum the time of the
	// VACUUM (ANALYZE) after it.
	Copy, Vacuum time.Duration
}

// customerCopyColumns are the customers columns that bulk paths copy, in the order
// fillCustomerRow fills them.
var customerCopyColumns = []string{
	"id", "kind", "role", "parent_id", "ancestors", "name", "email", "phone", "country", "industry",
	"tags", "attributes", "owner", "acquired_at", "acquisition_channel", "acquisition_cost",
	"acquisition_currency", "referred_by", "external_refs", "version", "created_at", "updated_at",
}

// fillCustomerRow fills row with c's values for COPY in customerCopyColumns order. It reuses
// ancestors (returned, grown as needed) and cost, which the row then references.
func fillCustomerRow(row []any, c *crm.Customer, ancestors []pgtype.UUID, cost *pgtype.Numeric) ([]pgtype.UUID, error) {
	ancestors = ancestors[:0]
	for _, id := range c.Ancestors {
		ancestors = append(ancestors, pgtype.UUID{Bytes: id, Valid: true})
	}
	tags := c.Tags
	if tags == nil {
		tags = []string{}
	}
	attributes, err := jsonObject(c.Attributes)
	if err != nil {
		return ancestors, fmt.Errorf("customer %s attributes: %w", c.ID, err)
	}
	externalRefs := []byte("[]")
	if len(c.ExternalRefs) > 0 {
		if externalRefs, err = json.Marshal(c.ExternalRefs); err != nil {
			return ancestors, fmt.Errorf("customer %s external references: %w", c.ID, err)
		}
	}
	cost.Valid = false
	var currency pgtype.Text
	if c.AcquisitionCost != nil {
		if err := setDecimal(cost, c.AcquisitionCost.Amount); err != nil {
			return ancestors, fmt.Errorf("customer %s acquisition cost: %w", c.ID, err)
		}
		currency = pgtype.Text{String: c.AcquisitionCost.Currency, Valid: true}
	}
	var role pgtype.Text
	if c.Role != nil {
		role = pgtype.Text{String: string(*c.Role), Valid: true}
	}
	var acquired pgtype.Timestamptz
	if c.AcquiredAt != nil {
		acquired = pgtype.Timestamptz{Time: *c.AcquiredAt, Valid: true}
	}
	row[0], row[1], row[2], row[3] = pgtype.UUID{Bytes: c.ID, Valid: true}, string(c.Kind), role, pgUUID(c.ParentID)
	row[4], row[5], row[6], row[7] = ancestors, pgText(c.Name), pgText(c.Email), pgText(c.Phone)
	row[8], row[9], row[10], row[11] = pgText(c.Country), pgText(c.Industry), tags, attributes
	row[12], row[13], row[14], row[15] = pgText(c.Owner), acquired, pgText(c.AcquisitionChannel), *cost
	row[16], row[17], row[18], row[19] = currency, pgUUID(c.ReferredBy), externalRefs, c.Version
	row[20], row[21] = pgtype.Timestamptz{Time: c.CreatedAt, Valid: true}, pgtype.Timestamptz{Time: c.UpdatedAt, Valid: true}
	return ancestors, nil
}

// demoTransactionColumns are the transactions columns LoadDemo copies, in order.
var demoTransactionColumns = []string{
	"customer_id", "id", "type", "occurred_at", "amount", "currency", "product", "category",
	"quantity", "margin", "channel", "dealer_id", "source", "external_id", "metadata", "created_at",
}

// LoadDemo bulk-loads a generated customer base into an empty database. In one transaction
// it drops the tables' foreign keys and plain indexes (primary keys and unique constraints
// stay), copies the customers, their external references (into
// customer_external_refs, mirroring each customer's external_refs) and the transactions with
// COPY, and restores the indexes and constraints, which checks them over every row. Then it
// runs VACUUM (ANALYZE) on the three tables, so the first queries find statistics, hint bits
// and the visibility map as autovacuum would leave them. It fails with a Conflict error,
// writing nothing, when the database has customers already. The tables are locked
// exclusively while it loads; the index builds use the server's maintenance_work_mem.
//
// LoadDemo trusts its input as the domain services would leave it: customers come parents
// first with id, version, timestamps and ancestors set (root first, as CreateCustomer writes
// them), and transactions have ids, valid decimal amounts and existing customers. Nothing is
// validated beyond the database's constraints; a violation rolls everything back. Transaction
// external ids, if any, are copied as they are but not claimed in transaction_external_refs.
// The rows are not written to the change log: the demo is a starting state, read through the
// list endpoints, and the feed records what changes after it.
func (db *DB) LoadDemo(ctx context.Context, customers iter.Seq[crm.Customer], transactions iter.Seq[crm.Transaction]) (DemoLoad, error) {
	var load DemoLoad
	start := time.Now()
	err := db.withPgx(ctx, func(tx pgx.Tx) error {
		// Keep writers out between the check and the copy.
		if _, err := tx.Exec(ctx, `LOCK TABLE customers IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("lock customers: %w", err)
		}
		var existing int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM customers`).Scan(&existing); err != nil {
			return fmt.Errorf("count customers: %w", err)
		}
		if existing > 0 {
			return crm.Errorf(crm.CodeConflict, "The database already has %d customers; demo data is loaded into an empty database only.", existing)
		}
		// The demo is a starting state, not a history: it stays out of the change log.
		if _, err := tx.Exec(ctx, `SELECT set_config('centric.capture_changes', 'off', true)`); err != nil {
			return fmt.Errorf("turn off change capture: %w", err)
		}
		rebuild, err := dropForBulkLoad(ctx, tx, demoTables)
		if err != nil {
			return err
		}
		refs, err := copyDemoCustomers(ctx, tx, customers, &load)
		if err != nil {
			return err
		}
		if load.ExternalRefs, err = tx.CopyFrom(ctx, pgx.Identifier{"customer_external_refs"},
			[]string{"external_id", "source", "customer_id"}, pgx.CopyFromRows(refs)); err != nil {
			return fmt.Errorf("copy customer references: %w", err)
		}
		if err := copyDemoTransactions(ctx, tx, transactions, &load); err != nil {
			return err
		}
		for _, stmt := range rebuild {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("restore after bulk load: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return DemoLoad{}, err
	}
	load.Copy = time.Since(start)
	start = time.Now()
	if _, err := db.sql.ExecContext(ctx, `VACUUM (ANALYZE) customers, customer_external_refs, transactions`); err != nil {
		return load, fmt.Errorf("vacuum demo tables: %w", err)
	}
	load.Vacuum = time.Since(start)
	return load, nil
}

// demoTables are the tables LoadDemo fills.
var demoTables = []string{"customers", "customer_external_refs", "transactions"}

// dropForBulkLoad drops the foreign keys of tables and their plain indexes (those backing no
// constraint), and returns the statements that restore them, in the order to run them.
// Checking a foreign key once with a join is far faster than a trigger's lookup per row, and
// building an index once after a bulk load is far faster than maintaining it row by row for
// keys that arrive in random order (transaction ids and times across customers, names, GIN
// indexes). Primary keys and unique constraints stay: their keys arrive nearly in order, and
// they check the rows as they come. Inside a transaction, the drop and the restore commit
// together or not at all.
func dropForBulkLoad(ctx context.Context, tx pgx.Tx, tables []string) ([]string, error) {
	rows, err := tx.Query(ctx, `
		SELECT 1 AS step, 'ALTER TABLE ' || c.conrelid::regclass || ' DROP CONSTRAINT ' || quote_ident(c.conname),
			'ALTER TABLE ' || c.conrelid::regclass || ' ADD CONSTRAINT ' || quote_ident(c.conname) || ' ' || pg_get_constraintdef(c.oid)
		FROM pg_constraint c
		WHERE c.contype = 'f' AND c.conrelid = ANY($1::regclass[])
		UNION ALL
		SELECT 2, 'DROP INDEX ' || i.indexrelid::regclass, pg_get_indexdef(i.indexrelid)
		FROM pg_index i
		WHERE i.indrelid = ANY($1::regclass[])
			AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
		ORDER BY 1, 2`, tables)
	if err != nil {
		return nil, fmt.Errorf("list indexes and constraints: %w", err)
	}
	type step struct {
		Step         int
		Drop, Create string
	}
	steps, err := pgx.CollectRows(rows, pgx.RowToStructByPos[step])
	if err != nil {
		return nil, fmt.Errorf("list indexes and constraints: %w", err)
	}
	restore := make([]string, len(steps))
	for i, s := range steps {
		if _, err := tx.Exec(ctx, s.Drop); err != nil {
			return nil, fmt.Errorf("prepare bulk load: %w", err)
		}
		restore[len(steps)-1-i] = s.Create
	}
	return restore, nil
}

// copyDemoCustomers copies the customers and returns the rows of their external references.
func copyDemoCustomers(ctx context.Context, tx pgx.Tx, customers iter.Seq[crm.Customer], load *DemoLoad) ([][]any, error) {
	next, stop := iter.Pull(customers)
	defer stop()
	var refs [][]any
	row := make([]any, len(customerCopyColumns))
	ancestors := make([]pgtype.UUID, 0, 8) // never nil: nil is NULL
	var cost pgtype.Numeric
	source := pgx.CopyFromFunc(func() ([]any, error) {
		c, ok := next()
		if !ok {
			return nil, nil
		}
		var err error
		if ancestors, err = fillCustomerRow(row, &c, ancestors, &cost); err != nil {
			return nil, err
		}
		for _, r := range c.ExternalRefs {
			refs = append(refs, []any{r.ExternalID, r.Source, pgtype.UUID{Bytes: c.ID, Valid: true}})
		}
		return row, nil
	})
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"customers"}, customerCopyColumns, source)
	if err != nil {
		return nil, fmt.Errorf("copy customers: %w", err)
	}
	load.Customers = n
	return refs, nil
}

// copyDemoTransactions copies the transactions.
func copyDemoTransactions(ctx context.Context, tx pgx.Tx, transactions iter.Seq[crm.Transaction], load *DemoLoad) error {
	next, stop := iter.Pull(transactions)
	defer stop()
	row := make([]any, len(demoTransactionColumns))
	var amount, margin pgtype.Numeric
	source := pgx.CopyFromFunc(func() ([]any, error) {
		t, ok := next()
		if !ok {
			return nil, nil
		}
		if err := setDecimal(&amount, t.Amount); err != nil {
			return nil, fmt.Errorf("transaction %s amount: %w", t.ID, err)
		}
		margin.Valid = false
		if t.Margin != nil {
			if err := margin.ScanScientific(*t.Margin); err != nil {
				return nil, fmt.Errorf("transaction %s margin: %w", t.ID, err)
			}
		}
		metadata, err := jsonObject(t.Metadata)
		if err != nil {
			return nil, fmt.Errorf("transaction %s metadata: %w", t.ID, err)
		}
		row[0], row[1], row[2] = pgtype.UUID{Bytes: t.CustomerID, Valid: true}, pgtype.UUID{Bytes: t.ID, Valid: true}, string(t.Type)
		row[3], row[4], row[5] = pgtype.Timestamptz{Time: t.OccurredAt, Valid: true}, amount, t.Currency
		row[6], row[7], row[8], row[9] = pgText(t.Product), pgText(t.Category), pgInt4(t.Quantity), margin
		row[10], row[11], row[12], row[13] = pgText(t.Channel), pgUUID(t.DealerID), pgText(t.Source), pgText(t.ExternalID)
		row[14], row[15] = metadata, pgtype.Timestamptz{Time: t.CreatedAt, Valid: true}
		return row, nil
	})
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"transactions"}, demoTransactionColumns, source)
	if err != nil {
		return fmt.Errorf("copy transactions: %w", err)
	}
	load.Transactions = n
	return nil
}

// jsonObject encodes a JSON object column; nil and empty maps are {}.
func jsonObject(m map[string]any) ([]byte, error) {
	if len(m) == 0 {
		return []byte("{}"), nil
	}
	return json.Marshal(m)
}

// setDecimal sets n to the plain decimal s ("129.90"), reusing n's integer: bulk loads parse
// millions of amounts. Other forms go through pgtype's parser.
func setDecimal(n *pgtype.Numeric, s string) error {
	var v int64
	var exp int32
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			v = v*10 + int64(c-'0')
			digits++
			if dot {
				exp--
			}
		case c == '.' && !dot:
			dot = true
		default:
			return n.ScanScientific(s)
		}
	}
	if digits == 0 || digits > 18 {
		return n.ScanScientific(s)
	}
	if n.Int == nil {
		n.Int = new(big.Int)
	}
	n.Int.SetInt64(v)
	n.Exp, n.NaN, n.InfinityModifier, n.Valid = exp, false, pgtype.Finite, true
	return nil
}
