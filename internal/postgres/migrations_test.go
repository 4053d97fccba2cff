package postgres_test

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/pressly/goose/v3"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/postgres"
	"github.com/centric-crm/centric/internal/postgres/pgtest"
)

// TestMembershipChangesMigration checks migration 00008 both ways: down to 00007, a membership
// change is logged the old way (a segment_membership_changes row, copied by the trigger, one
// change per segment); up again, the feed serves it in the new shape.
func TestMembershipChangesMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	sqlDB, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer sqlDB.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, os.DirFS("../../migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.DownTo(ctx, 7); err != nil {
		t.Fatal(err)
	}
	customer, segment := uuid.New(), uuid.New()
	_, err = sqlDB.ExecContext(ctx, `INSERT INTO customers (id, kind, created_at, updated_at) VALUES ($1, 'consumer', now(), now())`, customer)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sqlDB.ExecContext(ctx, `INSERT INTO segments (id, family, name, definition, created_at, updated_at)
		VALUES ($1, 'custom', 'Old friends', '{"field": "country", "op": "eq", "value": "DE"}', now(), now())`, segment)
	if err != nil {
		t.Fatal(err)
	}
	_, err = sqlDB.ExecContext(ctx, `INSERT INTO segment_membership_changes (customer_id, segment_id, segment_family, segment_name, change, changed_at, cause)
		VALUES ($1, $2, 'custom', 'Old friends', 'entered', '2026-11-01T10:00:00Z', 'definition')`, customer, segment)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.Up(ctx); err != nil {
		t.Fatal(err)
	}

	db, err := postgres.Open(ctx, dsn, postgres.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got []crm.Change
	for deadline := time.Now().Add(30 * time.Second); len(got) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		page, err := postgres.NewChangeStore(db).ListChanges(ctx, crm.Scope{}, crm.ChangeFilter{Types: []crm.ChangeType{crm.ChangeSegmentMembership}})
		if err != nil {
			t.Fatal(err)
		}
		got = page.Changes
	}
	if len(got) != 1 {
		t.Fatalf("membership changes after the migration: %d, want 1", len(got))
	}
	c := got[0]
	want := &crm.MembershipChange{
		CustomerID: customer, Cause: crm.CauseDefinition, ChangedAt: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		Entered: []crm.SegmentRef{{ID: segment, Name: "Old friends", Family: crm.FamilyCustom}}, Left: []crm.SegmentRef{},
	}
	if c.Operation != crm.OperationUpdated || c.EntityID != customer {
		t.Errorf("migrated change: operation %s, entity %s; want updated, the customer %s", c.Operation, c.EntityID, customer)
	}
	if diff := cmp.Diff(want, c.Membership); diff != "" {
		t.Errorf("migrated membership change (-want +got):\n%s", diff)
	}
}
