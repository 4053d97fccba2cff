package postgres_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/postgres"
)

// insertScoresSQL starts an INSERT of whole score rows, for tests that make up their scores.
const insertScoresSQL = `INSERT INTO customer_scores (customer_id, model_run_id, currency, observation_end, frequency, recency, t, monetary,
		purchases, first_purchase_at, last_purchase_at, revenue, refunds, cost, net_value, p_alive, churn_risk, churn_band,
		expected_purchases_30d, expected_purchases_90d, expected_purchases_365d, expected_spend, clv,
		rfm_recency, rfm_frequency, rfm_monetary, rfm_segment, computed_at)`

// TestSegmentsScope checks partner scopes: a custom segment made under a subtree only holds
// customers of that subtree and is visible only there and to unconfined callers; built-in
// segments are visible to all with their members, counts and summaries confined to the scope.
func TestSegmentsScope(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(t)
	customers := crm.NewCustomerService(postgres.NewCustomerStore(db), crm.NewValidator(), time.Now)
	create := func(c crm.Customer) uuid.UUID {
		t.Helper()
		got, err := customers.Create(ctx, crm.Scope{}, c)
		if err != nil {
			t.Fatal(err)
		}
		return got.ID
	}
	role := crm.RoleDistributor
	dist := create(crm.Customer{Kind: crm.KindBusiness, Role: &role})
	inside := create(crm.Customer{Kind: crm.KindConsumer, ParentID: &dist})
	outside := create(crm.Customer{Kind: crm.KindConsumer})
	_, err := db.SQL().ExecContext(ctx, insertScoresSQL+`
		SELECT id, '01900000-0000-7000-8000-000000000000', 'EUR', now(), 1, 10, 20, 5, 2, now() - interval '400 days', now() - interval '10 days',
			10, 0, 0, 10, 0.9, 0.1, 'low', 0.1, 0.2, 0.5, 5, 8, 4, 4, 4, 'Premium Customer', now()
		FROM unnest($1::uuid[]) id`, "{"+inside.String()+","+outside.String()+"}")
	if err != nil {
		t.Fatal(err)
	}
	store := postgres.NewSegmentStore(db)
	segments := crm.NewSegmentService(store, store, slog.New(slog.DiscardHandler), time.Now)
	if err := segments.EnsureBuiltins(ctx); err != nil {
		t.Fatal(err)
	}
	if err := store.RefreshAllSegments(ctx, crm.CauseRefresh, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	partner, other := crm.Scope{Root: &dist}, crm.Scope{Root: &outside}

	low := func(scope crm.Scope) *crm.Segment {
		t.Helper()
		page, err := segments.List(ctx, scope, crm.SegmentFilter{Family: crm.FamilyChurnBand})
		if err != nil {
			t.Fatal(err)
		}
		for i := range page.Segments {
			if page.Segments[i].Tier == "low" {
				return &page.Segments[i]
			}
		}
		t.Fatal("no low churn band")
		return nil
	}
	if got := low(crm.Scope{}).MemberCount; got != 2 {
		t.Errorf("unconfined count of the low band = %d, want 2", got)
	}
	if got := low(partner).MemberCount; got != 1 {
		t.Errorf("partner count of the low band = %d, want 1", got)
	}
	members, err := segments.Members(ctx, partner, low(partner).ID, crm.MemberFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(members.Members) != 1 || members.Members[0].Customer.ID != inside {
		t.Errorf("partner members of the low band = %+v", members.Members)
	}
	summary, err := segments.Summary(ctx, partner, low(partner).ID)
	if err != nil {
		t.Fatal(err)
	}
	if summary.Members != 1 || summary.Revenue != "10.00" || summary.ShareOfCustomers != 0.5 {
		t.Errorf("partner summary: %+v", summary)
	}

	seg, err := segments.Create(ctx, partner, crm.SegmentInput{Name: "consumers", Definition: map[string]any{"field": "kind", "op": "eq", "value": "consumer"}})
	if err != nil {
		t.Fatal(err)
	}
	if seg.MemberCount != 1 || seg.ScopeRoot == nil || *seg.ScopeRoot != dist {
		t.Errorf("partner segment: %+v", seg)
	}
	if got, err := segments.Get(ctx, crm.Scope{}, seg.ID); err != nil || got.MemberCount != 1 {
		t.Errorf("unconfined read of the partner segment: %+v, %v", got, err)
	}
	if _, err := segments.Get(ctx, other, seg.ID); crm.ErrorCodeOf(err) != crm.CodeNotFound {
		t.Errorf("another root reads the partner segment: %v", err)
	}
	if _, err := segments.Refresh(ctx, other, seg.ID); crm.ErrorCodeOf(err) != crm.CodeNotFound {
		t.Errorf("another root refreshes the partner segment: %v", err)
	}
	if err := segments.Delete(ctx, other, seg.ID, ""); crm.ErrorCodeOf(err) != crm.CodeNotFound {
		t.Errorf("another root deletes the partner segment: %v", err)
	}
	page, err := segments.List(ctx, other, crm.SegmentFilter{Family: crm.FamilyCustom})
	if err != nil || len(page.Segments) != 0 {
		t.Errorf("another root lists custom segments %+v, %v", page.Segments, err)
	}
	// The rescore of the outside customer never puts it into the partner's segment.
	if err := store.UpdateMemberships(ctx, []uuid.UUID{outside, inside}, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	all, err := segments.Members(ctx, crm.Scope{}, seg.ID, crm.MemberFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	for _, m := range all.Members {
		ids = append(ids, m.Customer.ID)
	}
	if !cmp.Equal(ids, []uuid.UUID{inside}) {
		t.Errorf("members of the partner segment = %v, want only %v", ids, inside)
	}
	// A customer shows the partner's segment to the partner, not to another root.
	c, err := customers.Get(ctx, crm.Scope{}, outside)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range c.Segments {
		if ref.ID == seg.ID {
			t.Errorf("outside customer is in the partner segment")
		}
	}
	if len(c.Segments) != 6 {
		t.Errorf("outside customer is in %d segments, want one per built-in family", len(c.Segments))
	}
}
