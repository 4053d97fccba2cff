package postgres_test

import (
	"context"
	"slices"
	"strings"
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
	ids, text := createConsumers(t, customers, 6)
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

// TestRefreshMovesCustomersBetweenThresholds checks the refresh of a built-in segment, which
// moves only the customers between old and new thresholds, against a placement of everyone:
// after three customers are rescored live (and placed with their scores), the refresh moves
// customers whose own scores did not change, and placing everyone afterwards finds nothing
// left to move; the value buckets the rescores and a deletion kept equal those counted afresh.
// After a model run's swap of the scores table, the refresh places everyone.
func TestRefreshMovesCustomersBetweenThresholds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	customers := crm.NewCustomerService(postgres.NewCustomerStore(db), crm.NewValidator(), time.Now)
	ids, text := createConsumers(t, customers, 30)
	// Net values 10, 20, …, 300, CLVs 7, 14, …, 210 and 1 to 5 purchase occasions.
	_, err := db.SQL().ExecContext(ctx, insertScoresSQL+`
		SELECT id, '01900000-0000-7000-8000-000000000000', 'EUR', now(), 1, 10, 20, 5, 1 + n % 5, now() - interval '400 days', now() - interval '10 days',
			10 * n, 0, 0, 10 * n, 0.9, 0.1, 'low', 0.1, 0.2, 0.5, 5, 7 * n, 1 + n % 4, 1 + n % 3, 1 + n % 2, 'x', now()
		FROM unnest($1::uuid[]) WITH ORDINALITY AS u (id, n)`, text)
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewSegmentStore(db)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := store.EnsureBuiltinSegments(ctx, at); err != nil {
		t.Fatal(err)
	}
	page, err := store.ListSegments(ctx, crm.Scope{}, crm.SegmentFilter{Family: crm.FamilyValueTier})
	if err != nil {
		t.Fatal(err)
	}
	builtin := page.Segments[0].ID
	if _, err := store.RefreshSegment(ctx, crm.Scope{}, builtin, at); err != nil {
		t.Fatal(err)
	}
	type placement struct {
		ID                                                                  uuid.UUID
		Value, CLV, Class, Usage, RFM, Churn, NetValue, CLVValue, Purchases string
	}
	placements := func() []placement {
		t.Helper()
		rows, err := db.SQL().QueryContext(ctx, `SELECT t.customer_id, t.value_tier, t.clv_tier, t.value_class, t.usage_tier, t.rfm, t.churn_band,
			s.net_value::text, s.clv::text, s.purchases::text
			FROM customer_tiers t JOIN customer_scores s USING (customer_id) ORDER BY customer_id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []placement
		for rows.Next() {
			var p placement
			if err := rows.Scan(&p.ID, &p.Value, &p.CLV, &p.Class, &p.Usage, &p.RFM, &p.Churn, &p.NetValue, &p.CLVValue, &p.Purchases); err != nil {
				t.Fatal(err)
			}
			out = append(out, p)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	thresholds := func() string {
		t.Helper()
		var th string
		err := db.SQL().QueryRowContext(ctx, `SELECT concat_ws(' ', value_a_min, value_b_min, clv_a_min, clv_b_min, usage_light_max, usage_medium_max)
			FROM segment_settings`).Scan(&th)
		if err != nil {
			t.Fatal(err)
		}
		return th
	}
	// buckets lists the value buckets of the tier thresholds.
	buckets := func() []string {
		t.Helper()
		rows, err := db.SQL().QueryContext(ctx, `SELECT concat_ws(' ', family, bucket, customers, trim_scale(total))
			FROM segment_value_buckets WHERE customers <> 0 OR total <> 0 ORDER BY family, bucket`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var b string
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 {
			t.Fatal("no value buckets")
		}
		return out
	}
	// movedBy returns the customers the membership changes of a cause at a time name.
	movedBy := func(cause string, when time.Time) map[uuid.UUID]bool {
		t.Helper()
		rows, err := db.SQL().QueryContext(ctx, `SELECT entity_id FROM change_log
			WHERE entity_type = 'segment_membership' AND state->>'cause' = $1 AND (state->>'changed_at')::timestamptz = $2`, cause, when)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[uuid.UUID]bool{}
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			out[id] = true
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if n := len(movedBy(crm.CauseRefresh, at)); n != len(ids) {
		t.Fatalf("the first refresh placed %d customers, want %d", n, len(ids))
	}

	// The three smallest customers are rescored live into the largest.
	rescored := ids[:3]
	if err := store.RescoreForTest(ctx, "net_value = net_value + 1000, clv = clv + 800, purchases = purchases + 6", rescored, at); err != nil {
		t.Fatal(err)
	}
	if moved := movedBy(crm.CauseRescore, at); len(moved) != 3 {
		t.Errorf("the live placement moved %d customers, want the 3 rescored", len(moved))
	}
	before := thresholds()
	if _, err := store.RefreshSegment(ctx, crm.Scope{}, builtin, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if after := thresholds(); after == before {
		t.Fatalf("thresholds stayed at %s: the refresh has nothing to move", after)
	}
	byThresholds := movedBy(crm.CauseRefresh, at.Add(time.Hour))
	for _, id := range rescored {
		delete(byThresholds, id)
	}
	if len(byThresholds) == 0 {
		t.Errorf("the refresh moved none of the customers whose scores stayed while the thresholds moved")
	}
	refreshed, kept := placements(), buckets()
	if err := store.RefreshAllSegments(ctx, crm.CauseModelRun, at.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n := len(movedBy(crm.CauseModelRun, at.Add(2*time.Hour))); n != 0 {
		t.Errorf("placing everyone after the refresh moved %d more customers", n)
	}
	if diff := cmp.Diff(placements(), refreshed); diff != "" {
		t.Errorf("placements after the refresh differ from placing everyone (-everyone +refresh):\n%s", diff)
	}
	if diff := cmp.Diff(buckets(), kept); diff != "" {
		t.Errorf("value buckets kept by the rescores differ from counting them afresh (-counted +kept):\n%s", diff)
	}
	// A deleted customer leaves the value buckets at once.
	if err := customers.Delete(ctx, crm.Scope{}, ids[10], ""); err != nil {
		t.Fatal(err)
	}
	kept = buckets()
	if err := store.RefreshAllSegments(ctx, crm.CauseModelRun, at.Add(150*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(buckets(), kept); diff != "" {
		t.Errorf("value buckets after a deletion differ from counting them afresh (-counted +kept):\n%s", diff)
	}

	// A model run swaps in a new scores table in which four customers' churn risks rose (their
	// values, and so the thresholds, stay), and nobody is placed from it yet: the refresh
	// places everyone.
	_, err = db.SQL().ExecContext(ctx, `ALTER TABLE customer_scores RENAME TO previous_scores;
		CREATE TABLE customer_scores (LIKE previous_scores INCLUDING ALL);
		INSERT INTO customer_scores SELECT * FROM previous_scores;
		DROP TABLE previous_scores;
		UPDATE customer_scores SET churn_risk = 0.9, churn_band = 'high' WHERE net_value BETWEEN 270 AND 300`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.RefreshSegment(ctx, crm.Scope{}, builtin, at.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	var high int64
	if err := db.SQL().QueryRowContext(ctx, `SELECT count(*) FROM customer_tiers WHERE churn_band = 'high'`).Scan(&high); err != nil {
		t.Fatal(err)
	}
	if high != 4 {
		t.Errorf("%d customers in the high churn band after the swap's refresh, want the 4 whose scores changed", high)
	}
	swapped := placements()
	if err := store.RefreshAllSegments(ctx, crm.CauseModelRun, at.Add(4*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(placements(), swapped); diff != "" {
		t.Errorf("placements after the swap's refresh differ from placing everyone (-everyone +refresh):\n%s", diff)
	}
}

// createConsumers creates n consumers and returns their ids, also as a PostgreSQL array.
func createConsumers(t *testing.T, customers *crm.CustomerService, n int) ([]uuid.UUID, string) {
	t.Helper()
	ids := make([]uuid.UUID, n)
	parts := make([]string, n)
	for i := range ids {
		c, err := customers.Create(context.Background(), crm.Scope{}, crm.Customer{Kind: crm.KindConsumer})
		if err != nil {
			t.Fatal(err)
		}
		ids[i], parts[i] = c.ID, c.ID.String()
	}
	return ids, "{" + strings.Join(parts, ",") + "}"
}
