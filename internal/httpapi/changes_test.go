package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/postgres"
)

// feedReader pages through the change feed as a partner would, remembering its cursor.
type feedReader struct {
	e      *env
	key    string
	query  string
	cursor string
	seen   []map[string]any
}

// drain reads pages until the feed has no more committed changes, and returns how many it read.
func (r *feedReader) drain() int {
	r.e.t.Helper()
	n := 0
	for {
		path := "/v1/changes?limit=7" + r.query
		if r.cursor != "" {
			path += "&cursor=" + url.QueryEscape(r.cursor)
		}
		page := r.e.mustDo(request{Method: "GET", Path: path, Key: r.key}, http.StatusOK).json(r.e.t)
		for _, c := range page["data"].([]any) {
			r.seen = append(r.seen, c.(map[string]any))
			n++
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			r.e.t.Fatalf("a page without next_cursor: %v", page)
		}
		r.cursor = next
		if page["has_more"] != true {
			return n
		}
	}
}

// catchUp reads until it has seen every change in the log. The feed serves a change once
// every transaction that started before it has ended, in any database of the server, so
// under parallel tests it may lag behind the log for a moment.
func (r *feedReader) catchUp() {
	r.e.t.Helper()
	var logged int
	if err := r.e.app.DB.SQL().QueryRow(`SELECT count(*) FROM change_log WHERE moved_to IS NULL`).Scan(&logged); err != nil {
		r.e.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for r.drain(); len(r.seen) < logged; r.drain() {
		if time.Now().After(deadline) {
			r.e.t.Fatalf("the feed served %d of the %d changes in the log within 30 seconds", len(r.seen), logged)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *feedReader) ids() []string {
	out := make([]string, len(r.seen))
	for i, c := range r.seen {
		out[i] = c["id"].(string)
	}
	return out
}

// TestChangeFeedConcurrentWriters has writers commit out of order while a partner pages the
// feed, and checks that the partner sees every committed change exactly once, in the log's
// order, including a change from a transaction that started early and committed last.
func TestChangeFeedConcurrentWriters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	reader := &feedReader{e: e}

	// write makes four changes to one customer, or five with a deletion.
	write := func(w, k int) {
		expect := func(res response, status int) {
			if res.Status != status {
				t.Errorf("writer %d: status %d, want %d: %s", w, res.Status, status, res.Body)
			}
		}
		res := e.do(request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "name": fmt.Sprintf("w%d-%d", w, k), "external_refs": []any{ref("erp", fmt.Sprintf("w%d-%d", w, k))}}})
		expect(res, http.StatusCreated)
		if res.Status != http.StatusCreated {
			return
		}
		id := res.json(t)["id"].(string)
		expect(e.do(request{Method: "PATCH", Path: "/v1/customers/" + id, Body: map[string]any{"email": fmt.Sprintf("w%d-%d@example.com", w, k)}}), http.StatusOK)
		expect(e.do(request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
			"customer_id": id, "type": "purchase", "occurred_at": "2026-03-01T10:00:00Z", "amount": "9.99", "currency": "EUR",
		}}), http.StatusCreated)
		if k%3 == 0 {
			expect(e.do(request{Method: "DELETE", Path: "/v1/customers/" + id}), http.StatusNoContent)
		}
	}
	runWriters := func(from, to int) {
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for k := from; k < to; k++ {
					write(w, k)
				}
			})
		}
		// The partner pages the feed while the writers commit.
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for {
			select {
			case <-done:
				return
			default:
				reader.drain()
			}
		}
	}

	runWriters(0, 3)

	// A transaction that writes now and commits after everything below.
	slow, err := e.app.DB.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	slowID := uuid.Must(uuid.NewV7())
	if _, err := slow.ExecContext(ctx, `INSERT INTO customers (id, kind, version, created_at, updated_at) VALUES ($1, 'consumer', 1, now(), now())`, slowID); err != nil {
		t.Fatal(err)
	}
	var slowXID uint64
	if err := slow.QueryRowContext(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&slowXID); err != nil {
		t.Fatal(err)
	}
	runWriters(3, 6)
	reader.drain()
	// While it is open, nothing that started after it is served, though much has committed.
	for _, c := range reader.seen {
		if xidOf(t, c["id"].(string)) >= slowXID {
			t.Fatalf("the feed served change %s while transaction %d, which started before it, was still open", c["id"], slowXID)
		}
	}
	var waiting int
	if err := e.app.DB.SQL().QueryRowContext(ctx, `SELECT count(*) FROM change_log WHERE xid::text::bigint > $1`, slowXID).Scan(&waiting); err != nil || waiting == 0 {
		t.Fatalf("no committed change waits behind the open transaction (%v): the test proves nothing", err)
	}
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	reader.catchUp()

	var logged []string
	rows, err := e.app.DB.SQL().QueryContext(ctx, `SELECT xid::text || '-' || seq FROM change_log WHERE moved_to IS NULL ORDER BY xid, seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		logged = append(logged, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// 4 writers × 6 rounds: created, updated, transaction created; a third also deleted; plus the slow insert.
	if want := 4*6*3 + 4*2 + 1; len(logged) != want {
		t.Errorf("the log holds %d changes, want %d", len(logged), want)
	}
	if diff := cmp.Diff(logged, reader.ids()); diff != "" {
		t.Errorf("the partner's feed differs from the log (-log +feed):\n%s", diff)
	}
	var slowSeen, deletions int
	for _, c := range reader.seen {
		if c["entity_id"] == slowID.String() {
			slowSeen++
		}
		if c["operation"] == "deleted" {
			deletions++
			tomb := c["tombstone"].(map[string]any)
			if tomb["id"] != c["entity_id"] || len(tomb["external_refs"].([]any)) != 1 || c["customer"] != nil {
				t.Errorf("tombstone = %v", c)
			}
		}
	}
	if slowSeen != 1 || deletions != 8 {
		t.Errorf("saw the late commit %d times and %d deletions, want 1 and 8", slowSeen, deletions)
	}
}

// xidOf returns the transaction id part of a change id ("xid-seq").
func xidOf(t *testing.T, id string) uint64 {
	t.Helper()
	var xid, seq uint64
	if _, err := fmt.Sscanf(id, "%d-%d", &xid, &seq); err != nil {
		t.Fatalf("change id %q: %v", id, err)
	}
	return xid
}

func TestChangeFeedContents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	distributor := createCustomer(e, map[string]any{"kind": "business", "role": "distributor", "name": "North"})["id"].(string)
	dealer := createCustomer(e, map[string]any{"kind": "business", "role": "dealer", "parent_id": distributor, "external_refs": []any{ref("erp", "D-1")}})["id"].(string)
	other := createCustomer(e, map[string]any{"kind": "business", "role": "distributor", "name": "South"})["id"].(string)
	e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + dealer, Body: map[string]any{"name": "Outlet", "tags": []string{"gold"}}}, http.StatusOK)
	tx := e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
		"customer_id": dealer, "type": "purchase", "occurred_at": "2026-03-01T10:00:00Z", "amount": "129.90", "currency": "EUR", "source": "shop", "external_id": "o-1",
	}}, http.StatusCreated).json(t)
	e.mustDo(request{Method: "DELETE", Path: "/v1/customers/" + dealer}, http.StatusNoContent)

	all := &feedReader{e: e}
	all.catchUp()
	type entry struct{ Type, Operation, Entity string }
	var got []entry
	for _, c := range all.seen {
		got = append(got, entry{c["type"].(string), c["operation"].(string), c["entity_id"].(string)})
	}
	want := []entry{
		{"customer", "created", distributor}, {"customer", "created", dealer}, {"customer", "created", other},
		{"customer", "updated", dealer}, {"transaction", "created", tx["id"].(string)}, {"customer", "deleted", dealer},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("feed (-want +got):\n%s", diff)
	}
	update := all.seen[3]
	if diff := cmp.Diff([]any{"name", "tags"}, update["changed_fields"]); diff != "" {
		t.Errorf("changed_fields (-want +got):\n%s", diff)
	}
	if c := update["customer"].(map[string]any); c["name"] != "Outlet" || c["version"] != float64(2) || c["parent_id"] != distributor {
		t.Errorf("updated state = %v", c)
	}
	if actor := update["actor"].(map[string]any); actor["name"] != "test admin" || actor["key_id"] == "" {
		t.Errorf("actor = %v", actor)
	}
	if txState := all.seen[4]["transaction"].(map[string]any); txState["amount"] != "129.90" || txState["customer_id"] != dealer {
		t.Errorf("transaction state = %v", txState)
	}
	tomb := all.seen[5]["tombstone"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"id": dealer, "customer_id": dealer, "parent_id": distributor, "external_refs": []any{ref("erp", "D-1")}}, tomb); diff != "" {
		t.Errorf("tombstone (-want +got):\n%s", diff)
	}

	// Filter by type; a cursor is bound to its filter.
	txOnly := &feedReader{e: e, query: "&type=transaction"}
	txOnly.drain()
	if len(txOnly.seen) != 1 {
		t.Errorf("type=transaction gave %d changes", len(txOnly.seen))
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/changes?cursor=" + url.QueryEscape(txOnly.cursor)}), http.StatusUnprocessableEntity, "validation_failed")

	// A key without transactions:read gets no transactions, and may not ask for them.
	reader := e.key(crm.PermCustomersRead)
	limited := &feedReader{e: e, key: reader}
	limited.drain()
	if len(limited.seen) != 5 {
		t.Errorf("customers:read alone saw %d changes, want the 5 customer changes", len(limited.seen))
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/changes?type=transaction", Key: reader}), http.StatusForbidden, "forbidden")

	// A partner confined to the north subtree sees only its changes.
	root := uuid.MustParse(distributor)
	page, err := e.app.Changes.List(context.Background(), crm.Scope{Root: &root}, crm.ChangeFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range page.Changes {
		if c.CustomerID.String() == other {
			t.Errorf("a scoped feed shows a change outside the subtree: %+v", c)
		}
	}
	if len(page.Changes) != 5 {
		t.Errorf("scoped feed has %d changes, want 5", len(page.Changes))
	}

	// A resumed reader gets only what is new.
	e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + other, Body: map[string]any{"name": "South East"}}, http.StatusOK)
	before := len(all.seen)
	all.catchUp()
	if n := len(all.seen) - before; n != 1 || all.seen[len(all.seen)-1]["entity_id"] != other {
		t.Errorf("resuming read %d changes, want the one new update", n)
	}

	// Pruning drops old changes; the feed then starts after them.
	pruned, err := postgres.NewChangeStore(e.app.DB).PruneChanges(context.Background(), time.Now().Add(time.Hour))
	if err != nil || pruned != int64(len(all.seen)) {
		t.Errorf("pruned %d, %v; want all %d", pruned, err, len(all.seen))
	}
	if page := e.mustDo(request{Method: "GET", Path: "/v1/changes"}, http.StatusOK).json(t); len(page["data"].([]any)) != 0 {
		t.Errorf("the feed after pruning = %v", page["data"])
	}
	// A reader at the end of what was pruned goes on; one whose cursor lies before it is told
	// that changes may be gone.
	if n := all.drain(); n != 0 {
		t.Errorf("a reader at the horizon read %d changes", n)
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/changes?type=transaction&cursor=" + url.QueryEscape(txOnly.cursor)}), http.StatusGone, "cursor_expired")
}

func TestCustomerAudit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	writer := e.key(crm.PermCustomersWrite, crm.PermCustomersRead, crm.PermTransactionsWrite)
	id := e.mustDo(request{Method: "POST", Path: "/v1/customers", Key: writer, Body: map[string]any{"kind": "consumer", "name": "Ada"}}, http.StatusCreated).json(t)["id"].(string)
	e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + id, Body: map[string]any{"email": "ada@example.com"}}, http.StatusOK)
	e.mustDo(request{Method: "POST", Path: "/v1/transactions", Key: writer, Body: map[string]any{
		"customer_id": id, "type": "purchase", "occurred_at": "2026-03-01T10:00:00Z", "amount": "5", "currency": "EUR",
	}}, http.StatusCreated)
	upsertBatch(e, map[string]any{"items": []any{map[string]any{"id": id, "tags": []string{"vip"}}}})
	e.mustDo(request{Method: "DELETE", Path: "/v1/customers/" + id}, http.StatusNoContent)

	var entries []map[string]any
	cursor := ""
	for {
		path := "/v1/customers/" + id + "/audit?limit=2"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		page := e.mustDo(request{Method: "GET", Path: path}, http.StatusOK).json(t)
		for _, x := range page["data"].([]any) {
			entries = append(entries, x.(map[string]any))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	type entry struct {
		Type, Operation, Actor string
		Fields                 []any
	}
	var got []entry
	for _, x := range entries {
		got = append(got, entry{x["type"].(string), x["operation"].(string), x["actor"].(map[string]any)["name"].(string), x["changed_fields"].([]any)})
		if _, err := time.Parse(time.RFC3339, x["changed_at"].(string)); err != nil {
			t.Errorf("changed_at: %v", err)
		}
	}
	want := []entry{
		{"customer", "deleted", "test admin", []any{}},
		{"customer", "updated", "test admin", []any{"tags"}},
		{"transaction", "created", "test", []any{}},
		{"customer", "updated", "test admin", []any{"email"}},
		{"customer", "created", "test", []any{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("audit trail, newest first (-want +got):\n%s", diff)
	}
	// A key that may not read transactions does not see theirs.
	var customerOnly []string
	page := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + id + "/audit", Key: e.key(crm.PermCustomersRead)}, http.StatusOK).json(t)
	for _, x := range page["data"].([]any) {
		customerOnly = append(customerOnly, x.(map[string]any)["type"].(string)+" "+x.(map[string]any)["operation"].(string))
	}
	if diff := cmp.Diff([]string{"customer deleted", "customer updated", "customer updated", "customer created"}, customerOnly); diff != "" {
		t.Errorf("audit trail with customers:read only (-want +got):\n%s", diff)
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/customers/" + uuid.NewString() + "/audit"}), http.StatusNotFound, "not_found")
}

// TestChangeFeedSegmentMemberships checks that entries into and exits from segments are in
// the feed as segment_membership changes, one per customer and write, listing the segments
// entered and left, and confined to the caller's subtree.
func TestChangeFeedSegmentMemberships(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := ruleBase(t, e)
	seg := e.mustDo(request{Method: "POST", Path: "/v1/segments", Body: map[string]any{
		"name": "Repeat buyers", "definition": cond("frequency", "gte", 1),
	}}, http.StatusCreated).json(t)
	segID := seg["id"].(string)
	// b buys again and enters; then the rule tightens and c (one repeat purchase) leaves.
	e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
		"customer_id": ids["b"], "type": "purchase", "occurred_at": time.Now().UTC().Add(-time.Hour).Format(time.RFC3339), "amount": "6", "currency": "EUR",
	}}, http.StatusCreated)
	e.mustDo(request{Method: "PATCH", Path: "/v1/segments/" + segID, Body: map[string]any{"definition": cond("frequency", "gte", 2)}}, http.StatusOK)

	type entry struct{ Customer, Change, Cause string }
	want := []entry{
		{ids["a"], "entered", "definition"}, {ids["c"], "entered", "definition"},
		{ids["b"], "entered", "rescore"},
		{ids["b"], "left", "definition"}, {ids["c"], "left", "definition"},
	}
	feed := &feedReader{e: e, query: "&type=segment_membership"}
	var got []entry
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		feed.drain()
		got = got[:0]
		for _, c := range feed.seen {
			m := c["segment_membership"].(map[string]any)
			if c["operation"] != "updated" || c["entity_id"] != c["customer_id"] || m["customer_id"] != c["customer_id"] {
				t.Fatalf("membership change %v", c)
			}
			for _, change := range []string{"entered", "left"} {
				for _, s := range m[change].([]any) {
					s := s.(map[string]any)
					if s["id"] != segID {
						continue
					}
					if s["name"] != "Repeat buyers" || s["family"] != "custom" {
						t.Fatalf("segment %v in membership change %v", s, c)
					}
					got = append(got, entry{c["customer_id"].(string), change, m["cause"].(string)})
				}
			}
		}
		if len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	// The changes of one statement come in no particular order of customers.
	byCustomer := func(es []entry) {
		for start := 0; start < len(es); {
			end := start + 1
			for end < len(es) && es[end].Change == es[start].Change && es[end].Cause == es[start].Cause {
				end++
			}
			slices.SortFunc(es[start:end], func(x, y entry) int { return strings.Compare(x.Customer, y.Customer) })
			start = end
		}
	}
	byCustomer(want)
	byCustomer(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("membership changes of the segment (-want +got):\n%s", diff)
	}
	// The model run's built-in families are in the feed too.
	families := map[string]bool{}
	for _, c := range feed.seen {
		m := c["segment_membership"].(map[string]any)
		for _, s := range m["entered"].([]any) {
			families[s.(map[string]any)["family"].(string)] = true
		}
	}
	for _, f := range []string{"value_tier", "usage_tier", "rfm", "churn_band"} {
		if !families[f] {
			t.Errorf("no membership change of the %s family in the feed", f)
		}
	}

	// A partner confined to the dealer X sees only the memberships of a and b.
	root := uuid.MustParse(ids["X"])
	page, err := e.app.Changes.List(context.Background(), crm.Scope{Root: &root},
		crm.ChangeFilter{Types: []crm.ChangeType{crm.ChangeSegmentMembership}, Page: crm.PageRequest{Limit: 200}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range page.Changes {
		seen[c.CustomerID.String()] = true
	}
	if !seen[ids["a"]] || !seen[ids["b"]] || len(seen) != 2 {
		t.Errorf("a partner on X sees the memberships of %v, want a %s and b %s only", seen, ids["a"], ids["b"])
	}
}

// TestChangeFeedMovedOutOfSubtree checks that a customer moved to another subtree, with
// everyone below it, leaves a tombstone in the feed of a partner confined to the subtree it
// left, while the partner it moved to, and unconfined keys, read the move as an update.
func TestChangeFeedMovedOutOfSubtree(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	north := createCustomer(e, map[string]any{"kind": "business", "role": "distributor", "name": "North"})["id"].(string)
	south := createCustomer(e, map[string]any{"kind": "business", "role": "distributor", "name": "South"})["id"].(string)
	dealer := createCustomer(e, map[string]any{"kind": "business", "role": "dealer", "parent_id": north})["id"].(string)
	shopper := createCustomer(e, map[string]any{"kind": "consumer", "parent_id": dealer, "external_refs": []any{ref("erp", "C-1")}})["id"].(string)

	type entry struct{ Operation, Entity, Parent string }
	// feedOf pages the customer changes of dealer and shopper a key confined to root (or an
	// unconfined key, for "") sees, once the feed has served want of them.
	feedOf := func(root string, want int) []entry {
		t.Helper()
		scope := crm.Scope{}
		if root != "" {
			r := uuid.MustParse(root)
			scope.Root = &r
		}
		var got []entry
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			page, err := e.app.Changes.List(context.Background(), scope, crm.ChangeFilter{Types: []crm.ChangeType{crm.ChangeCustomer}, Page: crm.PageRequest{Limit: 200}})
			if err != nil {
				t.Fatal(err)
			}
			got = got[:0]
			for _, c := range page.Changes {
				if id := c.EntityID.String(); id == dealer || id == shopper {
					var parent string
					switch {
					case c.Tombstone != nil && c.Tombstone.ParentID != nil:
						parent = c.Tombstone.ParentID.String()
					case c.Customer != nil && c.Customer.ParentID != nil:
						parent = c.Customer.ParentID.String()
					}
					got = append(got, entry{string(c.Operation), id, parent})
				}
			}
			if len(got) >= want || time.Now().After(deadline) {
				return got
			}
		}
	}

	e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + dealer, Body: map[string]any{"parent_id": south}}, http.StatusOK)
	// Like every state in a confined feed, a tombstone names only customers inside the subtree
	// at the time of reading: the shopper's parent, the dealer, has left it too.
	created := []entry{{"created", dealer, north}, {"created", shopper, dealer}}
	movedAway := []entry{{"updated", dealer, south}, {"updated", shopper, dealer}}
	if diff := cmp.Diff(append(slices.Clone(created), entry{"deleted", dealer, north}, entry{"deleted", shopper, ""}), feedOf(north, 4)); diff != "" {
		t.Errorf("the feed of the subtree left (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(movedAway, feedOf(south, 2)); diff != "" {
		t.Errorf("the feed of the subtree joined (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append(slices.Clone(created), movedAway...), feedOf("", 4)); diff != "" {
		t.Errorf("the unconfined feed (-want +got):\n%s", diff)
	}

	// Moved back, the customers reappear in the north (whose feed now names the dealer as the
	// shopper's parent again) and leave the south.
	e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + dealer, Body: map[string]any{"parent_id": north}}, http.StatusOK)
	back := []entry{{"updated", dealer, north}, {"updated", shopper, dealer}}
	if diff := cmp.Diff(append(append(slices.Clone(created), entry{"deleted", dealer, north}, entry{"deleted", shopper, dealer}), back...), feedOf(north, 6)); diff != "" {
		t.Errorf("the feed of the subtree returned to (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append(slices.Clone(movedAway), entry{"deleted", dealer, south}, entry{"deleted", shopper, ""}), feedOf(south, 4)); diff != "" {
		t.Errorf("the feed of the subtree left again (-want +got):\n%s", diff)
	}
}
