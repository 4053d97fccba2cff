package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/postgres"
)

// TestRefreshMovesOnlyChangedCustomers checks a full refresh of the built-in families against
// stored placements: a customer whose churn risk crosses a band edge leaves one band and
// enters the other; a customer whose scores are gone leaves every family; the others stay
// where they are, with their entry times. The member counts follow, and the change log holds
// exactly one membership change for each customer that moved.
func TestRefreshMovesOnlyChangedCustomers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	customers := crm.NewCustomerService(postgres.NewCustomerStore(db), crm.NewValidator(), time.Now)
	ids := make([]uuid.UUID, 6)
	text := "{"
	for i := range ids {
		c, err := customers.Create(ctx, crm.Scope{}, crm.Customer{Kind: crm.KindConsumer})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = c.ID
		if i > 0 {
			text += ","
		}
		text += c.ID.String()
	}
	text += "}"
	// Net values and CLVs rising with n, except the last customer's (nothing, so that its
	// leaving moves no threshold), and churn risks 0.1, 0.15, …, 0.35.
	_, err := db.SQL().ExecContext(ctx, insertScoresSQL+`
		SELECT id, '01900000-0000-7000-8000-000000000000', 'EUR', now(), 1, 10, 20, 5, 2, now() - interval '400 days', now() - interval '10 days',
			10 * n, 0, 0, 10 * n * (n < 6)::int, 0.9, 0.05 + 0.05 * n, CASE WHEN 0.05 + 0.05 * n >= 0.3 THEN 'medium' ELSE 'low' END,
			0.1, 0.2, 0.5, 5, 8 * n * (n < 6)::int, 4, 4, 4, 'x', now()
		FROM unnest($1::uuid[]) WITH ORDINALITY AS u (id, n)`, text)
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewSegmentStore(db)
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := store.EnsureBuiltinSegments(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := store.RefreshAllSegments(ctx, crm.CauseRefresh, first); err != nil {
		t.Fatal(err)
	}
	changes := postgres.NewChangeStore(db)
	// The feed serves a change once no older transaction of the server (other tests' too)
	// is still running.
	read := func(cursor string, want int) crm.ChangePage {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			page, err := changes.ListChanges(ctx, crm.Scope{}, crm.ChangeFilter{Types: []crm.ChangeType{crm.ChangeSegmentMembership}, Page: crm.PageRequest{Limit: 100, Cursor: cursor}})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Changes) >= want || time.Now().After(deadline) {
				return page
			}
		}
	}
	feed := read("", len(ids))
	if len(feed.Changes) != len(ids) {
		t.Fatalf("first refresh logged %d membership changes, want one per customer (%d)", len(feed.Changes), len(ids))
	}
	for _, c := range feed.Changes {
		if m := c.Membership; len(m.Entered) != len(crm.BuiltinFamilies) || len(m.Left) != 0 || m.Cause != crm.CauseRefresh {
			t.Errorf("first placement of %s: entered %v, left %v, cause %s", c.CustomerID, m.Entered, m.Left, m.Cause)
		}
	}

	// Customer 0 crosses into the high band; customer 5 loses its scores.
	if _, err := db.SQL().ExecContext(ctx, `UPDATE customer_scores SET churn_risk = 0.8, churn_band = 'high' WHERE customer_id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().ExecContext(ctx, `DELETE FROM customer_scores WHERE customer_id = $1`, ids[5]); err != nil {
		t.Fatal(err)
	}
	second := first.Add(24 * time.Hour)
	if err := store.RefreshAllSegments(ctx, crm.CauseRefresh, second); err != nil {
		t.Fatal(err)
	}
	next := read(feed.NextCursor, 2)
	moved := map[uuid.UUID]*crm.MembershipChange{}
	for _, c := range next.Changes {
		moved[c.CustomerID] = c.Membership
	}
	tiers := func(refs []crm.SegmentRef) []string {
		var out []string
		for _, r := range refs {
			out = append(out, string(r.Family)+"/"+r.Name)
		}
		slices.Sort(out)
		return out
	}
	if m := moved[ids[0]]; m == nil {
		t.Errorf("customer 0 crossed into the high churn band without a membership change")
	} else if diff := cmp.Diff([][]string{{"churn_band/Churn risk high"}, {"churn_band/Churn risk low"}}, [][]string{tiers(m.Entered), tiers(m.Left)}); diff != "" {
		t.Errorf("customer 0's move (-want +got):\n%s", diff)
	}
	if m := moved[ids[5]]; m == nil || len(m.Left) != len(crm.BuiltinFamilies) || len(m.Entered) != 0 {
		t.Errorf("customer 5 lost its scores: membership change %+v, want every family left", m)
	}
	if len(moved) != 2 {
		t.Errorf("the second refresh logged changes for %d customers, want 2", len(moved))
	}

	// Counts and entry times.
	var low, high, valueTiers int64
	var since time.Time
	err = db.SQL().QueryRowContext(ctx, `SELECT
		(SELECT member_count FROM segments WHERE family = 'churn_band' AND tier = 'low'),
		(SELECT member_count FROM segments WHERE family = 'churn_band' AND tier = 'high'),
		(SELECT sum(member_count) FROM segments WHERE family = 'value_tier'),
		(SELECT churn_band_since FROM customer_tiers WHERE customer_id = $1)`, ids[1]).Scan(&low, &high, &valueTiers, &since)
	if err != nil {
		t.Fatal(err)
	}
	if low != 3 || high != 1 || valueTiers != 5 {
		t.Errorf("members: low band %d, high band %d, value tiers %d; want 3, 1 and 5", low, high, valueTiers)
	}
	if !since.Equal(first) {
		t.Errorf("customer 1 stayed in its band but its entry time became %s, want %s", since, first)
	}
}
