package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// syncAccessCases are the matrix rows of partner sync: customer batch upserts, the change feed
// and the audit trail.
func syncAccessCases() []accessCase {
	batch := func(items ...any) request {
		return request{Method: "POST", Path: "/v1/customers/batch", Body: map[string]any{"items": items}}
	}
	shop := func(id string) map[string]any { return map[string]any{"source": "shop", "external_id": id} }
	return []accessCase{
		{
			name: "upsert a batch creating and updating customers below a dealer",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return batch(
					map[string]any{"external_ref": shop("sync-" + uuid.NewString()), "kind": "consumer", "parent_id": s.dealer},
					map[string]any{"id": s.customer, "name": "Synced " + uuid.NewString()[:8]},
				)
			},
			cells: [4]cell{
				ok(200, createdBelowDealer("created", "updated")), forbidden, ok(200, createdBelowDealer("created", "updated")),
				ok(200, batchItems("error validation_failed /items/0/parent_id", "error not_found /items/1/id")),
			},
		},
		{
			name: "upsert a batch placing a customer below a dealer named by reference",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return batch(map[string]any{"external_ref": shop("sync-" + uuid.NewString()), "kind": "consumer", "parent_ref": shop(s.dealerRef)})
			},
			cells: [4]cell{
				ok(200, createdBelowDealer("created")), forbidden, ok(200, createdBelowDealer("created")),
				ok(200, batchItems("error validation_failed /items/0/parent_ref")),
			},
		},
		{
			name: "upsert a batch matching a customer by reference",
			build: func(_ *testing.T, fx *accessFixture, s *partnerSide) request {
				return batch(map[string]any{"external_ref": shop(s.custRef), "kind": "consumer", "parent_id": fx.a.dealer, "name": "Matched " + uuid.NewString()[:8]})
			},
			// A reference held in another subtree is taken: the partner can neither update its
			// holder nor create a customer with it, and is told so without a name, exactly as
			// when it creates a customer with that reference one by one.
			cells: [4]cell{
				ok(200, batchItems("updated")), forbidden, ok(200, batchItems("updated")),
				ok(200, batchItems("error conflict /items/0/external_ref")),
			},
			twin: twinNone,
		},
		{
			name: "re-parent an own customer below the sibling's dealer through a batch",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				own := createCustomer(fx.e, map[string]any{"kind": "consumer", "parent_id": fx.a.dist})["id"].(string)
				return batch(map[string]any{"id": own, "parent_id": s.dealer})
			},
			cells: [4]cell{
				ok(200, batchItems("updated")), forbidden, ok(200, batchItems("updated")),
				ok(200, batchItems("error validation_failed /items/0/parent_id")),
			},
		},
		{
			name: "take a customer into the partner's subtree through a batch",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return batch(map[string]any{"id": newConsumer(t, fx, s), "parent_id": fx.a.dist})
			},
			cells: [4]cell{
				ok(200, batchItems("updated")), forbidden, ok(200, batchItems("updated")),
				ok(200, batchItems("error not_found /items/0/id")),
			},
		},
		{
			name: "take a customer into the partner's subtree by reference through a batch",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				ref := "moved-" + uuid.NewString()
				createCustomer(fx.e, map[string]any{"kind": "consumer", "parent_id": s.dealer, "external_refs": []any{shop(ref)}})
				return batch(map[string]any{"external_ref": shop(ref), "parent_id": fx.a.dist})
			},
			// The sibling's reference is taken; see "upsert a batch matching a customer by reference".
			cells: [4]cell{
				ok(200, batchItems("updated")), forbidden, ok(200, batchItems("updated")),
				ok(200, batchItems("error conflict /items/0/external_ref")),
			},
			twin: twinNone,
		},
		{
			name: "move the partner's root through a batch",
			build: func(_ *testing.T, fx *accessFixture, s *partnerSide) request {
				return batch(map[string]any{"id": s.dist, "parent_id": fx.hq})
			},
			cells: [4]cell{
				// For the partner, any parent of its root is refused, even the current one, as
				// for a single update: the answer must not tell what lies above its subtree.
				ok(200, batchItems("unchanged")), forbidden, ok(200, batchItems("error forbidden /items/0/parent_id")),
				ok(200, batchItems("error not_found /items/0/id")),
			},
		},
		{
			name: "detach a dealer from every subtree through a batch",
			build: func(_ *testing.T, fx *accessFixture, s *partnerSide) request {
				dealer := createCustomer(fx.e, map[string]any{"kind": "business", "role": "dealer", "parent_id": s.dist})["id"].(string)
				return batch(map[string]any{"id": dealer, "parent_id": nil})
			},
			cells: [4]cell{
				ok(200, batchItems("updated")), forbidden, ok(200, batchItems("error validation_failed /items/0/parent_id")),
				ok(200, batchItems("error not_found /items/0/id")),
			},
		},
		{
			name: "create a customer without a parent through a batch",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request {
				return batch(map[string]any{"external_ref": shop("top-" + uuid.NewString()), "kind": "consumer"})
			},
			cells: [4]cell{
				ok(200, batchItems("created")), forbidden, ok(200, batchItems("error validation_failed /items/0/parent_id")),
				ok(200, batchItems("error validation_failed /items/0/parent_id")),
			},
		},
		{
			name:  "follow the change feed",
			build: probeFeed,
			// The request names no record; each check pages through the whole feed itself.
			cells: [4]cell{
				ok(200, feedOf(func(fx *accessFixture) string { return fx.e.admin }, false)),
				ok(200, feedOf(func(fx *accessFixture) string { return fx.reader }, false)),
				ok(200, feedOf(func(fx *accessFixture) string { return fx.a.key }, true)),
				ok(200, feedOf(func(fx *accessFixture) string { return fx.a.key }, true)),
			},
			twin: twinNone,
		},
		{
			name: "read a customer's audit trail",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return get("/v1/customers/" + s.customer + "/audit?limit=200")
			},
			cells: [4]cell{ok(200, auditOfCustomerA), ok(200, auditOfCustomerA), ok(200, auditOfCustomerA), notFound},
		},
		{
			name: "read the audit trail of a customer moved in from another subtree",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				from := fx.other(s)
				moved := fx.e.mustDo(request{Method: "POST", Path: "/v1/customers", Key: from.key, Body: map[string]any{"kind": "consumer", "parent_id": from.dealer}}, http.StatusCreated).json(t)["id"].(string)
				fx.e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + moved, Key: from.key, Body: map[string]any{"name": "Moved"}}, http.StatusOK)
				fx.e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + moved, Body: map[string]any{"parent_id": s.dealer}}, http.StatusOK)
				return get("/v1/customers/" + moved + "/audit")
			},
			// The partner that receives the customer sees only the move, not what the other
			// subtree's key did before.
			cells: [4]cell{ok(200, auditOperations("updated test admin", "updated partner b", "created partner b")), ok(200, auditOperations("updated test admin", "updated partner b", "created partner b")), ok(200, auditOperations("updated test admin")), notFound},
		},
	}
}

// auditOperations asserts the operations of an audit trail and who made them, newest first.
func auditOperations(want ...string) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, _ *accessFixture, res response) {
		var got []string
		for _, e := range res.json(t)["data"].([]any) {
			e := e.(map[string]any)
			got = append(got, e["operation"].(string)+" "+e["actor"].(map[string]any)["name"].(string))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("audit trail (-want +got):\n%s", diff)
		}
	}
}

// batchItems asserts a customer batch's per-item outcomes: a status, or for a failed item
// "error", its problem code and its pointers.
func batchItems(want ...string) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, _ *accessFixture, res response) {
		var got []string
		for _, r := range res.json(t)["results"].([]any) {
			r := r.(map[string]any)
			outcome := r["status"].(string)
			if e, ok := r["error"].(map[string]any); ok {
				outcome += " " + e["code"].(string)
				fields, _ := e["errors"].([]any)
				for _, f := range fields {
					outcome += " " + f.(map[string]any)["pointer"].(string)
				}
			}
			got = append(got, outcome)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("item outcomes (-want +got):\n%s", diff)
		}
	}
}

// createdBelowDealer asserts the outcomes of a batch and that its first item created a
// customer below partner a's dealer.
func createdBelowDealer(want ...string) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		batchItems(want...)(t, fx, res)
		id := res.json(t)["results"].([]any)[0].(map[string]any)["id"].(string)
		if c := fx.e.mustDo(get("/v1/customers/"+id), http.StatusOK).json(t); c["parent_id"] != fx.a.dealer {
			t.Errorf("created customer's parent = %v, want partner a's dealer %s", c["parent_id"], fx.a.dealer)
		}
	}
}

// probeFeed has the unconfined admin create a customer below the side's dealer, record a
// transaction for it through the other side's dealer, rename and delete it, and then asks
// for the change feed.
func probeFeed(t *testing.T, fx *accessFixture, s *partnerSide) request {
	s.probe = createCustomer(fx.e, map[string]any{
		"kind": "consumer", "parent_id": s.dealer, "external_refs": []any{map[string]any{"source": "shop", "external_id": "probe-" + uuid.NewString()}},
	})["id"].(string)
	s.probeTx = fx.e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
		"customer_id": s.probe, "dealer_id": fx.other(s).dealer, "type": "purchase",
		"occurred_at": "2026-02-01T10:00:00Z", "amount": "9.90", "currency": "EUR",
	}}, http.StatusCreated).json(t)["id"].(string)
	fx.e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + s.probe, Body: map[string]any{"name": "Probe"}}, http.StatusOK)
	fx.e.mustDo(request{Method: "DELETE", Path: "/v1/customers/" + s.probe}, http.StatusNoContent)
	return get("/v1/changes?limit=200")
}

// readFeed pages through the change feed with key from the start until it has served the
// deletion of customer last, and returns every change it served.
func readFeed(t *testing.T, fx *accessFixture, key, last string) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var seen []map[string]any
	cursor := ""
	for {
		path := "/v1/changes?limit=200"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		page := fx.e.mustDo(request{Method: "GET", Path: path, Key: key}, http.StatusOK).json(t)
		for _, c := range page["data"].([]any) {
			seen = append(seen, c.(map[string]any))
		}
		cursor = page["next_cursor"].(string)
		if page["has_more"] == true {
			continue
		}
		if slices.ContainsFunc(seen, func(c map[string]any) bool { return c["entity_id"] == last && c["operation"] == "deleted" }) {
			return seen
		}
		// The feed serves a change once every older transaction of the server has ended.
		if time.Now().After(deadline) {
			t.Fatalf("the feed did not serve the deletion of %s within 30 seconds", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// feedOf asserts the change feed as key sees it: the probe of the request's side is there,
// created, with its transaction, updated and deleted as a tombstone below its dealer, when
// the key sees that side; a confined key sees partner a's changes only, every state shown as
// inside its subtree, and nothing that names the sibling.
func feedOf(key func(*accessFixture) string, confined bool) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		side := &fx.a
		if fx.b.probe != "" {
			side = &fx.b // the sibling cell runs last and is the only one that probes side b
		}
		// Wait until the admin's feed serves the probe, then read the whole feed as the caller.
		readFeed(t, fx, fx.e.admin, side.probe)
		var seen []map[string]any
		if confined && side == &fx.b {
			seen = readFeed(t, fx, key(fx), fx.a.probe)
		} else {
			seen = readFeed(t, fx, key(fx), side.probe)
		}
		if len(res.json(t)["data"].([]any)) == 0 {
			t.Errorf("the first page of the feed is empty")
		}
		type entry struct{ Type, Operation, Entity string }
		var probed []entry
		for _, c := range seen {
			// The probe's segment memberships follow its purchase and deletion; the
			// confinement checks below cover them.
			if c["customer_id"] == side.probe && c["type"] != "segment_membership" {
				probed = append(probed, entry{c["type"].(string), c["operation"].(string), c["entity_id"].(string)})
			}
		}
		want := []entry{
			{"customer", "created", side.probe}, {"transaction", "created", side.probeTx},
			{"customer", "updated", side.probe}, {"customer", "deleted", side.probe},
		}
		if confined && side == &fx.b {
			want = nil
		}
		if diff := cmp.Diff(want, probed); diff != "" {
			t.Errorf("changes of the probe (-want +got):\n%s", diff)
		}
		if !confined {
			return
		}
		// Every customer of the feed was created in the subtree, and shows there.
		customers := map[string]bool{}
		for _, c := range seen {
			if c["type"] == "customer" && c["operation"] == "created" {
				customers[c["customer_id"].(string)] = true
			}
		}
		for _, c := range seen {
			raw := fmt.Sprint(c)
			for _, id := range fx.siblingIDs() {
				if strings.Contains(raw, id) {
					t.Errorf("change %v names %s of the sibling", c["id"], id)
				}
			}
			if cid := c["customer_id"].(string); !customers[cid] {
				t.Errorf("change %v of customer %s, which the feed did not show created in the subtree", c["id"], cid)
			}
			if cust, ok := c["customer"].(map[string]any); ok && cust != nil {
				anc := cust["ancestors"].([]any)
				if cust["id"] == fx.a.dist {
					if cust["parent_id"] != nil || len(anc) != 0 {
						t.Errorf("change %v shows the root with parent %v and ancestors %v", c["id"], cust["parent_id"], anc)
					}
				} else if len(anc) == 0 || anc[0] != fx.a.dist {
					t.Errorf("change %v shows customer %v with ancestors %v, want them from the root down", c["id"], cust["id"], anc)
				}
			}
			if c["entity_id"] == fx.a.probeTx {
				if tx := c["transaction"].(map[string]any); tx["dealer_id"] != nil {
					t.Errorf("the probe's transaction shows dealer %v of the sibling", tx["dealer_id"])
				}
			}
			if c["entity_id"] == fx.a.probe && c["operation"] == "deleted" {
				tomb := c["tombstone"].(map[string]any)
				if tomb["parent_id"] != fx.a.dealer || len(tomb["external_refs"].([]any)) != 1 {
					t.Errorf("tombstone = %v, want the dealer %s as parent and the reference", tomb, fx.a.dealer)
				}
			}
		}
	}
}

// subtreeIDs lists the live customers of the subtree of root, root first, as the admin sees them.
func (fx *accessFixture) subtreeIDs(t *testing.T, root string) []string {
	t.Helper()
	ids := []string{root}
	for _, c := range fx.allPages(t, fx.e.admin, "/v1/customers?limit=200&descendant_of="+root) {
		ids = append(ids, c["id"].(string))
	}
	return ids
}

// allPages reads every page of a cursor-paged list with key.
func (fx *accessFixture) allPages(t *testing.T, key, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	cursor := ""
	for {
		p := path
		if cursor != "" {
			p += "&cursor=" + url.QueryEscape(cursor)
		}
		page := fx.e.mustDo(request{Method: "GET", Path: p, Key: key}, http.StatusOK).json(t)
		for _, item := range page["data"].([]any) {
			out = append(out, item.(map[string]any))
		}
		if page["has_more"] != true {
			return out
		}
		cursor = page["next_cursor"].(string)
	}
}

// auditOfCustomerA asserts the audit trail holds partner a's consumer's changes and those of
// its transactions only, newest first, beginning with the consumer's creation by the admin
// and recording the order the partner's key synced.
func auditOfCustomerA(t *testing.T, fx *accessFixture, res response) {
	entries := res.json(t)["data"].([]any)
	txs := map[string]bool{}
	for _, tx := range fx.allPages(t, fx.e.admin, "/v1/transactions?limit=200&customer_id="+fx.a.customer) {
		txs[tx["id"].(string)] = true
	}
	var partnerTxs int
	for _, e := range entries {
		e := e.(map[string]any)
		id := e["entity_id"].(string)
		switch e["type"] {
		case "customer":
			if id != fx.a.customer {
				t.Errorf("entry %v is of customer %s", e["id"], id)
			}
		case "transaction":
			if !txs[id] {
				t.Errorf("entry %v is of transaction %s, not the customer's", e["id"], id)
			}
			if id == fx.a.tx && e["operation"] == "created" && e["actor"].(map[string]any)["key_id"] == fx.a.keyID {
				partnerTxs++
			}
		default:
			t.Errorf("entry %v of type %v", e["id"], e["type"])
		}
	}
	first := entries[len(entries)-1].(map[string]any)
	if first["type"] != "customer" || first["operation"] != "created" || first["actor"].(map[string]any)["name"] != "test admin" {
		t.Errorf("oldest entry = %v, want the customer's creation by the admin", first)
	}
	if partnerTxs != 1 {
		t.Errorf("the creation of the order %s the partner's key synced is recorded %d times, want once", fx.a.tx, partnerTxs)
	}
}
