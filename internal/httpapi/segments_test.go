package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fixtureTx is one transaction of a test fixture, for a customer named by its external id.
type fixtureTx struct {
	customer string
	day      string
	amount   string
	kind     string
}

// recordFixture records the purchases through the batch API, creating the customers.
func recordFixture(t *testing.T, e *env, txs []fixtureTx) {
	t.Helper()
	items := make([]any, len(txs))
	for i, p := range txs {
		kind := p.kind
		if kind == "" {
			kind = "purchase"
		}
		items[i] = map[string]any{
			"customer_ref": map[string]any{"source": "shop", "external_id": p.customer},
			"type":         kind, "occurred_at": p.day + "T12:00:00Z", "amount": p.amount, "currency": "EUR",
			"source": "shop", "external_id": fmt.Sprint("t", i),
		}
	}
	e.mustDo(request{Method: "POST", Path: "/v1/transactions/batch", Body: map[string]any{"items": items, "create_customers": true, "all_or_none": true}}, http.StatusOK)
}

// customerIDs maps the shop's external ids to customer ids.
func customerIDs(t *testing.T, e *env) map[string]string {
	t.Helper()
	out := map[string]string{}
	cursor := ""
	for {
		res := e.mustDo(request{Method: "GET", Path: "/v1/customers?limit=200" + cursor}, http.StatusOK).json(t)
		for _, c := range res["data"].([]any) {
			c := c.(map[string]any)
			for _, r := range c["external_refs"].([]any) {
				if r := r.(map[string]any); r["source"] == "shop" {
					out[r["external_id"].(string)] = c["id"].(string)
				}
			}
		}
		if res["next_cursor"] == nil {
			return out
		}
		cursor = "&cursor=" + res["next_cursor"].(string)
	}
}

// segmentsOf returns the segments of a family by tier.
func segmentsOf(t *testing.T, e *env, family string) map[string]map[string]any {
	t.Helper()
	res := e.mustDo(request{Method: "GET", Path: "/v1/segments?limit=200&family=" + family}, http.StatusOK).json(t)
	out := map[string]map[string]any{}
	for _, s := range res["data"].([]any) {
		s := s.(map[string]any)
		out[s["tier"].(string)] = s
	}
	return out
}

// memberNames pages through a segment's members and returns their shop ids, sorted.
func memberNames(t *testing.T, e *env, segmentID string, names map[string]string) []string {
	t.Helper()
	byID := map[string]string{}
	for name, id := range names {
		byID[id] = name
	}
	out := []string{}
	cursor := ""
	for {
		res := e.mustDo(request{Method: "GET", Path: "/v1/segments/" + segmentID + "/members?limit=2" + cursor}, http.StatusOK).json(t)
		for _, m := range res["data"].([]any) {
			c := m.(map[string]any)["customer"].(map[string]any)
			out = append(out, byID[c["id"].(string)])
		}
		if res["next_cursor"] == nil {
			break
		}
		cursor = "&cursor=" + res["next_cursor"].(string)
	}
	sort.Strings(out)
	return out
}

// TestSegmentsRFMGolden runs the RFM golden case of pymc-marketing through a model run and
// reads the built-in RFM segments' members.
func TestSegmentsRFMGolden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	recordFixture(t, e, []fixtureTx{
		{"1", "2015-01-01", "1", ""}, {"1", "2015-02-06", "2", ""}, {"2", "2015-01-01", "2", ""},
		{"3", "2015-01-01", "3", ""}, {"3", "2015-01-02", "1", ""}, {"3", "2015-01-05", "5", ""},
		{"4", "2015-01-16", "6", ""}, {"4", "2015-02-02", "3", ""}, {"4", "2015-02-05", "3", ""},
		{"5", "2015-01-16", "3", ""}, {"5", "2015-01-17", "1", ""}, {"5", "2015-01-18", "8", ""},
		{"6", "2015-02-02", "5", ""}, {"4", "2015-02-05", "6", ""},
	})
	run := runModel(t, e, map[string]any{"time_unit": "day", "calibration_end": "2015-02-07T00:00:00Z", "penalty": 0.1})
	if run["status"] != "succeeded" {
		t.Fatalf("model run: %v", run)
	}
	names := customerIDs(t, e)
	rfmSegments := segmentsOf(t, e, "rfm")
	want := map[string][]string{
		"Other": {"1"}, "Inactive Customer": {"2"}, "At Risk Customer": {"3"},
		"Premium Customer": {"4"}, "Repeat Customer": {"5"}, "Top Spender": {"6"},
	}
	if len(rfmSegments) != len(want) {
		t.Fatalf("rfm segments: %v", rfmSegments)
	}
	for tier, members := range want {
		seg := rfmSegments[tier]
		if got := memberNames(t, e, seg["id"].(string), names); !cmp.Equal(got, members) {
			t.Errorf("members of %s = %v, want %v", tier, got, members)
		}
		if seg["member_count"] != float64(1) || seg["refreshed_at"] == nil || seg["builtin"] != true {
			t.Errorf("segment %s: %v", tier, seg)
		}
	}
	c := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + names["4"]}, http.StatusOK).json(t)
	var segNames []string
	for _, s := range c["segments"].([]any) {
		segNames = append(segNames, s.(map[string]any)["name"].(string))
	}
	if !slices.Contains(segNames, "RFM: Premium Customer") || len(segNames) != 6 {
		t.Errorf("customer 4 is in %v, want one segment per built-in family including RFM: Premium Customer", segNames)
	}
}

// names returns the shop ids of the customers in a list of customer objects, sorted.
func namesOf(list []any, byID map[string]string) []string {
	out := []string{}
	for _, c := range list {
		out = append(out, byID[c.(map[string]any)["id"].(string)])
	}
	sort.Strings(out)
	return out
}

func invert(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

// TestSegmentsValueTiers checks the 80/20 value tiers, VIP / potential / mass, usage terciles
// and the segment summaries on a base whose Pareto split is known: 13 customers whose positive
// net values (800, 100, 50, 20, 10, 5, 5, 3, 3, 2, 1, 1) sum to 1,000, the top one making
// exactly 80% and the next two the next 15%, and one customer whose cost exceeds its revenue.
func TestSegmentsValueTiers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	day := func(ago int) string { return time.Now().UTC().AddDate(0, 0, -ago).Format("2006-01-02") }
	// Purchases of similar size (so the spend model fits), and costs that bring each
	// customer's net value to the amount of the split.
	occasions := map[string]int{"c01": 20, "c02": 4, "c03": 3, "c04": 3, "c05": 2, "c06": 2, "c07": 2, "c08": 2, "c09": 1, "c10": 1, "c11": 1, "c12": 1, "c13": 1}
	amount := map[string]string{"c01": "40", "c02": "30", "c13": "10"}
	cost := map[string]string{"c02": "20", "c03": "10", "c04": "40", "c05": "30", "c06": "35", "c07": "35", "c08": "37", "c09": "17", "c10": "18", "c11": "19", "c12": "19", "c13": "30"}
	var txs []fixtureTx
	for name, n := range occasions {
		a := amount[name]
		if a == "" {
			a = "20"
		}
		for k := range n {
			txs = append(txs, fixtureTx{name, day(200 - 9*k), a, ""})
		}
		if c := cost[name]; c != "" {
			txs = append(txs, fixtureTx{name, day(100), c, "cost"})
		}
	}
	recordFixture(t, e, txs)
	run := runModel(t, e, map[string]any{"time_unit": "day", "penalty": 0.1})
	if run["status"] != "succeeded" {
		t.Fatalf("model run: %v", run)
	}
	names := customerIDs(t, e)
	members := func(family, tier string) []string {
		t.Helper()
		seg, ok := segmentsOf(t, e, family)[tier]
		if !ok {
			t.Fatalf("no segment %s/%s", family, tier)
		}
		return memberNames(t, e, seg["id"].(string), names)
	}
	for _, tc := range []struct {
		family, tier string
		want         []string
	}{
		{"value_tier", "A", []string{"c01"}},
		{"value_tier", "B", []string{"c02", "c03"}},
		{"value_tier", "C", []string{"c04", "c05", "c06", "c07", "c08", "c09", "c10", "c11", "c12", "c13"}},
		{"value_class", "vip", []string{"c01"}},
		{"usage_tier", "heavy", []string{"c01", "c02", "c03", "c04"}},
		{"usage_tier", "medium", []string{"c05", "c06", "c07", "c08"}},
		{"usage_tier", "light", []string{"c09", "c10", "c11", "c12", "c13"}},
	} {
		if got := members(tc.family, tc.tier); !cmp.Equal(got, tc.want) {
			t.Errorf("%s %s = %v, want %v", tc.family, tc.tier, got, tc.want)
		}
	}
	// Potential = CLV tier A without the VIPs; mass = everyone else.
	clvA := members("clv_tier", "A")
	var potential []string
	for _, n := range clvA {
		if n != "c01" {
			potential = append(potential, n)
		}
	}
	if got := members("value_class", "potential"); !cmp.Equal(got, append([]string{}, potential...)) {
		t.Errorf("potential = %v, want CLV tier A %v without c01", got, clvA)
	}
	if got, want := len(members("value_class", "mass")), 13-1-len(potential); got != want {
		t.Errorf("mass has %d members, want %d", got, want)
	}
	if n := len(clvA) + len(members("clv_tier", "B")) + len(members("clv_tier", "C")); n != 13 {
		t.Errorf("CLV tiers hold %d customers, want 13", n)
	}

	tiers := segmentsOf(t, e, "value_tier")
	summary := e.mustDo(request{Method: "GET", Path: "/v1/segments/" + tiers["A"]["id"].(string) + "/summary"}, http.StatusOK).json(t)
	if summary["members"] != float64(1) || summary["revenue"] != "800.00" || summary["net_value"] != "800.00" || summary["currency"] != "EUR" {
		t.Errorf("summary of tier A: %v", summary)
	}
	near(t, "share_of_customers", summary["share_of_customers"], 1.0/13, 1e-9)
	near(t, "revenue_share", summary["revenue_share"], 800.0/1290, 1e-9)
	near(t, "net_value_share", summary["net_value_share"], 800.0/980, 1e-9)
	near(t, "average_frequency", summary["average_frequency"], 20, 1e-9)
	if summary["average_order_value"] != "40.00" {
		t.Errorf("average_order_value = %v, want 40.00", summary["average_order_value"])
	}
	comparison := e.mustDo(request{Method: "GET", Path: fmt.Sprintf("/v1/segment-comparison?segment_id=%s&segment_id=%s&segment_id=%s",
		tiers["A"]["id"], tiers["B"]["id"], tiers["C"]["id"])}, http.StatusOK).json(t)["data"].([]any)
	var total float64
	for i, tier := range []string{"A", "B", "C"} {
		s := comparison[i].(map[string]any)
		if s["segment_id"] != tiers[tier]["id"] {
			t.Errorf("comparison[%d] = %v, want tier %s", i, s["segment_id"], tier)
		}
		total += s["revenue_share"].(float64)
	}
	near(t, "revenue shares of A+B+C", total, 1, 1e-9)
	problem(t, e.do(request{Method: "GET", Path: "/v1/segment-comparison"}), http.StatusBadRequest, "invalid_request")

	// The customer list filters by segment.
	list := e.mustDo(request{Method: "GET", Path: "/v1/customers?segment_id=" + tiers["B"]["id"].(string)}, http.StatusOK).json(t)["data"].([]any)
	if got := namesOf(list, invert(names)); !cmp.Equal(got, []string{"c02", "c03"}) {
		t.Errorf("customers in tier B = %v", got)
	}
	// Built-in segments cannot be deleted or given a rule.
	problem(t, e.do(request{Method: "DELETE", Path: "/v1/segments/" + tiers["A"]["id"].(string)}), http.StatusConflict, "conflict")
	p := problem(t, e.do(request{Method: "PATCH", Path: "/v1/segments/" + tiers["A"]["id"].(string),
		Body: map[string]any{"definition": map[string]any{"field": "kind", "op": "eq", "value": "consumer"}}}), http.StatusUnprocessableEntity, "validation_failed")
	if got := pointers(p); !cmp.Equal(got, []string{"/definition"}) {
		t.Errorf("pointers = %v", got)
	}
	patched := e.mustDo(request{Method: "PATCH", Path: "/v1/segments/" + tiers["A"]["id"].(string), Headers: map[string]string{"If-Match": `"1"`},
		Body: map[string]any{"strategy": "Assign an account manager."}}, http.StatusOK)
	if patched.json(t)["strategy"] != "Assign an account manager." || patched.Header.Get("ETag") != `"2"` {
		t.Errorf("patched: %s %v", patched.Body, patched.Header)
	}
	problem(t, e.do(request{Method: "PATCH", Path: "/v1/segments/" + tiers["A"]["id"].(string), Headers: map[string]string{"If-Match": `"1"`},
		Body: map[string]any{"strategy": "x"}}), http.StatusPreconditionFailed, "precondition_failed")
	// A full refresh with unchanged scores changes nothing.
	before := e.mustDo(request{Method: "GET", Path: "/v1/segments/" + tiers["A"]["id"].(string)}, http.StatusOK).json(t)
	after := e.mustDo(request{Method: "POST", Path: "/v1/segments/" + tiers["A"]["id"].(string) + "/refresh"}, http.StatusOK).json(t)
	if after["member_count"] != before["member_count"] || after["refreshed_at"] == before["refreshed_at"] {
		t.Errorf("refresh: before %v, after %v", before, after)
	}
}

// ruleBase creates a small hierarchy with profiles, tags, attributes and purchases, scores it,
// and returns the customer ids by name: distributor D, dealer X under it, consumers a and b
// under X, consumer c and enterprise d at the top. a, b and c are scored; D, X and d are not.
func ruleBase(t *testing.T, e *env) map[string]string {
	t.Helper()
	ids := map[string]string{}
	create := func(name string, body map[string]any) {
		t.Helper()
		body["name"] = name
		ids[name] = e.mustDo(request{Method: "POST", Path: "/v1/customers", Body: body}, http.StatusCreated).json(t)["id"].(string)
	}
	create("D", map[string]any{"kind": "business", "role": "distributor", "country": "DE", "tags": []string{"partner"}})
	create("X", map[string]any{"kind": "business", "role": "dealer", "country": "DE", "parent_id": ids["D"]})
	create("a", map[string]any{"kind": "consumer", "country": "DE", "parent_id": ids["X"], "tags": []string{"vip", "newsletter"},
		"attributes": map[string]any{"level": "gold", "score": 7, "langs": []string{"de", "en"}, "active": true},
		"owner":      "ann", "acquisition_channel": "paid_search", "acquired_at": "2026-01-10T00:00:00Z"})
	create("b", map[string]any{"kind": "consumer", "country": "FR", "parent_id": ids["X"], "tags": []string{"newsletter"},
		"attributes": map[string]any{"level": "silver", "score": 3}, "owner": "bob", "acquisition_channel": "dealer",
		"acquired_at": "2025-06-01T00:00:00Z"})
	create("c", map[string]any{"kind": "consumer", "country": "US", "acquisition_channel": "Paid_Search_Brand"})
	create("d", map[string]any{"kind": "business", "role": "enterprise", "country": "DE", "tags": []string{"vip"}, "attributes": map[string]any{"score": 12.5}})
	now := time.Now().UTC()
	buy := func(name string, daysAgo int, amount string) {
		t.Helper()
		e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
			"customer_id": ids[name], "type": "purchase", "occurred_at": now.AddDate(0, 0, -daysAgo).Format(time.RFC3339), "amount": amount, "currency": "EUR",
		}}, http.StatusCreated)
	}
	buy("a", 90, "10")
	buy("a", 60, "10")
	buy("a", 30, "10")
	buy("b", 80, "5")
	buy("c", 70, "8")
	buy("c", 20, "8")
	if run := runModel(t, e, map[string]any{"time_unit": "day", "penalty": 0.1}); run["status"] != "succeeded" {
		t.Fatalf("model run: %v", run)
	}
	return ids
}

// preview evaluates a rule and returns the names of the customers it selects.
func preview(t *testing.T, e *env, byID map[string]string, rule any) []string {
	t.Helper()
	raw := e.do(request{Method: "POST", Path: "/v1/segments/preview", Body: map[string]any{"definition": rule, "limit": 200}})
	if raw.Status != http.StatusOK {
		t.Fatalf("preview of %v = %d: %s", rule, raw.Status, raw.Body)
	}
	res := raw.json(t)
	got := namesOf(res["data"].([]any), byID)
	if res["count"] != float64(len(got)) {
		t.Errorf("rule %v: count %v, but %d customers", rule, res["count"], len(got))
	}
	return got
}

func cond(field, op string, value any) map[string]any {
	return map[string]any{"field": field, "op": op, "value": value}
}

// TestSegmentsRules evaluates rules with every operator on every family of fields: profile,
// hierarchy, tags, custom attributes, scores and tiers, and the all / any / not combinators.
func TestSegmentsRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := ruleBase(t, e)
	byID := invert(ids)
	all := []string{"D", "X", "a", "b", "c", "d"}
	soon := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		rule any
		want []string
	}{
		{cond("kind", "eq", "business"), []string{"D", "X", "d"}},
		{cond("role", "in", []string{"dealer", "distributor"}), []string{"D", "X"}},
		{cond("role", "ne", "dealer"), []string{"D", "d"}},
		{cond("country", "not_in", []string{"DE"}), []string{"b", "c"}},
		{cond("industry", "exists", false), all},
		{cond("owner", "eq", "ann"), []string{"a"}},
		{cond("acquisition_channel", "contains", "PAID"), []string{"a", "c"}},
		{cond("acquired_at", "between", []string{"2025-01-01T00:00:00Z", "2025-12-31T23:59:59Z"}), []string{"b"}},
		{cond("acquired_at", "gt", "2025-12-31T00:00:00Z"), []string{"a"}},
		{cond("created_at", "lte", soon), all},
		{cond("parent_id", "eq", ids["X"]), []string{"a", "b"}},
		{cond("parent_id", "exists", false), []string{"D", "c", "d"}},
		{cond("subtree", "eq", ids["D"]), []string{"D", "X", "a", "b"}},
		{cond("subtree", "ne", ids["X"]), []string{"D", "c", "d"}},
		{cond("subtree", "in", []string{ids["X"], ids["d"]}), []string{"X", "a", "b", "d"}},
		{cond("subtree", "not_in", []string{ids["D"]}), []string{"c", "d"}},
		{cond("tags", "contains", "vip"), []string{"a", "d"}},
		{cond("tags", "in", []string{"partner", "newsletter"}), []string{"D", "a", "b"}},
		{cond("tags", "not_in", []string{"vip"}), []string{"D", "X", "b", "c"}},
		{cond("tags", "exists", false), []string{"X", "c"}},
		{cond("attributes.level", "eq", "gold"), []string{"a"}},
		{cond("attributes.level", "ne", "gold"), []string{"b"}},
		{cond("attributes.level", "in", []string{"gold", "silver"}), []string{"a", "b"}},
		{cond("attributes.level", "not_in", []string{"gold"}), []string{"b"}},
		{cond("attributes.score", "gt", 5), []string{"a", "d"}},
		{cond("attributes.score", "eq", 12.5), []string{"d"}},
		{cond("attributes.score", "between", []any{3, "7"}), []string{"a", "b"}},
		{cond("attributes.score", "lte", "3"), []string{"b"}},
		{cond("attributes.score", "lt", 3), nil},
		{cond("attributes.score", "gte", "12.5"), []string{"d"}},
		{cond("attributes.langs", "contains", "en"), []string{"a"}},
		{cond("attributes.level", "contains", "OLD"), []string{"a"}},
		{cond("attributes.active", "eq", true), []string{"a"}},
		{cond("attributes.score", "exists", false), []string{"D", "X", "c"}},
		{map[string]any{"any": []any{cond("country", "eq", "FR"), cond("owner", "eq", "ann")}}, []string{"a", "b"}},
		{map[string]any{"not": cond("kind", "eq", "consumer")}, []string{"D", "X", "d"}},
		{map[string]any{"all": []any{cond("kind", "eq", "consumer"), map[string]any{"not": cond("tags", "contains", "vip")}}}, []string{"b", "c"}},
		{map[string]any{"not": cond("clv", "gte", 0)}, []string{"D", "X", "d"}},
		{cond("purchases", "gte", 2), []string{"a", "c"}},
		{cond("purchases", "eq", 1), []string{"b"}},
		{cond("frequency", "gt", 0), []string{"a", "c"}},
		{cond("net_value", "gt", "15"), []string{"a", "c"}},
		{cond("revenue", "lt", 10), []string{"b"}},
		{cond("revenue", "in", []any{"5", 30}), []string{"a", "b"}},
		{cond("revenue", "not_in", []any{"5"}), []string{"a", "c"}},
		{cond("revenue", "ne", 5), []string{"a", "c"}},
		{cond("monetary", "gte", 0), []string{"a", "b", "c"}},
		{cond("recency", "gte", 0), []string{"a", "b", "c"}},
		{cond("clv", "exists", false), []string{"D", "X", "d"}},
		{cond("churn_risk", "between", []any{0, 1}), []string{"a", "b", "c"}},
		{cond("p_alive", "lte", 1), []string{"a", "b", "c"}},
		{cond("expected_purchases_90d", "gte", 0), []string{"a", "b", "c"}},
		{cond("last_purchase_at", "lt", soon), []string{"a", "b", "c"}},
		{cond("first_purchase_at", "gte", "2000-01-01T00:00:00Z"), []string{"a", "b", "c"}},
		{cond("churn_band", "in", []string{"low", "medium", "high"}), []string{"a", "b", "c"}},
		{cond("rfm_segment", "exists", true), []string{"a", "b", "c"}},
		{cond("rfm_recency", "in", []any{1, 2, 3, 4}), []string{"a", "b", "c"}},
		{cond("rfm_frequency", "gte", 1), []string{"a", "b", "c"}},
		{cond("rfm_monetary", "lte", 4), []string{"a", "b", "c"}},
		{cond("value_tier", "eq", "A"), []string{"a", "c"}},
		{cond("value_tier", "ne", "A"), []string{"b"}},
		{cond("usage_tier", "eq", "heavy"), []string{"a"}},
		{cond("usage_tier", "not_in", []string{"heavy"}), []string{"b", "c"}},
		{cond("clv_tier", "in", []string{"A", "B", "C"}), []string{"a", "b", "c"}},
		{cond("value_class", "eq", "vip"), []string{"a", "c"}},
	} {
		got := preview(t, e, byID, tc.rule)
		want := tc.want
		if want == nil {
			want = []string{}
		}
		if !cmp.Equal(got, want) {
			t.Errorf("rule %v selects %v, want %v", tc.rule, got, want)
		}
	}

	// A saved segment materialises its members, lists them, filters customers, and shows on
	// each member.
	seg := e.mustDo(request{Method: "POST", Path: "/v1/segments", Body: map[string]any{
		"name": "Northwind subtree", "strategy": "Co-marketing with the distributor.",
		"definition": map[string]any{"all": []any{cond("subtree", "eq", ids["D"]), cond("kind", "eq", "consumer")}},
	}}, http.StatusCreated)
	s := seg.json(t)
	if s["member_count"] != float64(2) || s["family"] != "custom" || s["builtin"] != false || seg.Header.Get("Location") != "/v1/segments/"+s["id"].(string) {
		t.Fatalf("created segment: %s", seg.Body)
	}
	segID := s["id"].(string)
	if got := memberNames(t, e, segID, ids); !cmp.Equal(got, []string{"a", "b"}) {
		t.Errorf("members = %v", got)
	}
	list := e.mustDo(request{Method: "GET", Path: "/v1/customers?segment_id=" + segID}, http.StatusOK).json(t)["data"].([]any)
	if got := namesOf(list, byID); !cmp.Equal(got, []string{"a", "b"}) {
		t.Errorf("customers?segment_id = %v", got)
	}
	a := e.mustDo(request{Method: "GET", Path: "/v1/customers/" + ids["a"]}, http.StatusOK).json(t)
	var inCustom bool
	for _, ref := range a["segments"].([]any) {
		inCustom = inCustom || ref.(map[string]any)["id"] == segID
	}
	if !inCustom {
		t.Errorf("customer a's segments %v lack %s", a["segments"], segID)
	}
	// Profile changes move customers at once: c moves under X, a new consumer is created there.
	e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + ids["c"], Body: map[string]any{"parent_id": ids["X"]}}, http.StatusOK)
	created := e.mustDo(request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "parent_id": ids["X"]}}, http.StatusCreated).json(t)
	ids["e"], byID[created["id"].(string)] = created["id"].(string), "e"
	if got := memberNames(t, e, segID, ids); !cmp.Equal(got, []string{"a", "b", "c", "e"}) {
		t.Errorf("members after c moved under X and e was created there = %v", got)
	}
	if refs := created["segments"].([]any); len(refs) != 1 || refs[0].(map[string]any)["id"] != segID {
		t.Errorf("new customer e shows segments %v, want the subtree segment", refs)
	}
	e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + ids["c"], Body: map[string]any{"parent_id": nil}}, http.StatusOK)
	if got := memberNames(t, e, segID, ids); !cmp.Equal(got, []string{"a", "b", "e"}) {
		t.Errorf("members after c moved back to the top = %v", got)
	}
	// A new rule rematerialises the members.
	e.mustDo(request{Method: "PATCH", Path: "/v1/segments/" + segID, Body: map[string]any{"definition": cond("tags", "contains", "vip")}}, http.StatusOK)
	if got := memberNames(t, e, segID, ids); !cmp.Equal(got, []string{"a", "d"}) {
		t.Errorf("members after a new rule = %v", got)
	}
	// Sorted members: by CLV descending, unscored last.
	members := e.mustDo(request{Method: "GET", Path: "/v1/segments/" + segID + "/members?sort=-clv"}, http.StatusOK).json(t)["data"].([]any)
	if got := members[0].(map[string]any)["customer"].(map[string]any)["id"]; got != ids["a"] {
		t.Errorf("first member by CLV = %v, want a", got)
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/segments/" + segID + "/members?sort=-churn_risk&cursor=bogus"}), http.StatusUnprocessableEntity, "validation_failed")
	e.mustDo(request{Method: "DELETE", Path: "/v1/segments/" + segID}, http.StatusNoContent)
	problem(t, e.do(request{Method: "GET", Path: "/v1/segments/" + segID}), http.StatusNotFound, "not_found")
	problem(t, e.do(request{Method: "GET", Path: "/v1/customers?segment_id=" + segID}), http.StatusUnprocessableEntity, "validation_failed")
}

// TestSegmentsMalformedRules checks that every kind of bad rule is a 422 whose pointer names
// the bad node, and that nothing is stored.
func TestSegmentsMalformedRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	deep := cond("kind", "eq", "consumer")
	for range 5 {
		deep = map[string]any{"not": deep}
	}
	many := make([]any, 101)
	for i := range many {
		many[i] = cond("kind", "eq", "consumer")
	}
	for _, tc := range []struct {
		name    string
		rule    any
		pointer string
	}{
		{"unknown field", map[string]any{"all": []any{cond("kind", "eq", "consumer"), cond("favourite_colour", "eq", "red")}}, "/definition/all/1/field"},
		{"wrong value type", map[string]any{"all": []any{cond("kind", "eq", "consumer"), cond("country", "eq", "DE"), cond("clv", "gt", "lots")}}, "/definition/all/2/value"},
		{"bad op", cond("tags", "gt", "vip"), "/definition/op"},
		{"unknown op", map[string]any{"any": []any{cond("clv", "approximately", 5)}}, "/definition/any/0/op"},
		{"nesting too deep", deep, "/definition/not/not/not/not"},
		{"too many nodes", map[string]any{"any": many}, "/definition/any/99"},
		{"empty all", map[string]any{"all": []any{}}, "/definition/all"},
		{"two kinds of node", map[string]any{"all": []any{cond("kind", "eq", "consumer")}, "field": "kind"}, "/definition"},
		{"not an enum value", cond("value_tier", "eq", "Z"), "/definition/value"},
		{"bad list element", cond("churn_band", "in", []any{"low", 3}), "/definition/value/1"},
		{"between reversed", cond("clv", "between", []any{10, 5}), "/definition/value"},
		{"between one bound", cond("clv", "between", []any{10}), "/definition/value"},
		{"exists not boolean", cond("owner", "exists", "yes"), "/definition/value"},
		{"bad time", cond("acquired_at", "gt", "yesterday"), "/definition/value"},
		{"bad uuid", cond("subtree", "eq", "not-a-uuid"), "/definition/value"},
		{"missing value", map[string]any{"field": "kind", "op": "eq"}, "/definition/value"},
		{"ordering a text field", cond("country", "lt", "DE"), "/definition/op"},
		{"unknown key", map[string]any{"field": "kind", "op": "eq", "value": "consumer", "weight": 2}, "/definition/weight"},
	} {
		p := problem(t, e.do(request{Method: "POST", Path: "/v1/segments", Body: map[string]any{"name": tc.name, "definition": tc.rule}}),
			http.StatusUnprocessableEntity, "validation_failed")
		if got := pointers(p); !slices.Contains(got, tc.pointer) {
			t.Errorf("%s: pointers %v, want %s; detail %v", tc.name, got, tc.pointer, p["detail"])
		}
		p = problem(t, e.do(request{Method: "POST", Path: "/v1/segments/preview", Body: map[string]any{"definition": tc.rule}}),
			http.StatusUnprocessableEntity, "validation_failed")
		if got := pointers(p); !slices.Contains(got, tc.pointer) {
			t.Errorf("%s (preview): pointers %v, want %s", tc.name, got, tc.pointer)
		}
	}
	customs := e.mustDo(request{Method: "GET", Path: "/v1/segments?family=custom"}, http.StatusOK).json(t)["data"].([]any)
	if len(customs) != 0 {
		t.Errorf("invalid rules stored %d segments", len(customs))
	}
	p := problem(t, e.do(request{Method: "POST", Path: "/v1/segments", Body: map[string]any{"name": " ", "definition": cond("kind", "eq", "consumer")}}),
		http.StatusUnprocessableEntity, "validation_failed")
	if got := pointers(p); !cmp.Equal(got, []string{"/name"}) {
		t.Errorf("blank name: pointers %v", got)
	}
	// Permissions: segments:read may read but not write; other keys may do neither.
	reader := e.key("segments:read")
	e.mustDo(request{Method: "GET", Path: "/v1/segments", Key: reader}, http.StatusOK)
	problem(t, e.do(request{Method: "POST", Path: "/v1/segments", Key: reader, Body: map[string]any{"name": "x", "definition": cond("kind", "eq", "consumer")}}),
		http.StatusForbidden, "forbidden")
	problem(t, e.do(request{Method: "GET", Path: "/v1/segments", Key: e.key("customers:read")}), http.StatusForbidden, "forbidden")
}

// TestSegmentsInjection sends SQL in field names, attribute keys and values: field names are
// rejected against the allow-list, values are bound and match nothing, and no error reveals
// SQL.
func TestSegmentsInjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := ruleBase(t, e)
	byID := invert(ids)
	for _, field := range []string{
		"kind; DROP TABLE customers; --", "c.kind", "kind) OR (true", "attributes.x') OR 1=1 --",
		"attributes.level'::text) IS NOT NULL OR (true", "attributes.", "ATTRIBUTES.level", "s.clv",
	} {
		p := problem(t, e.do(request{Method: "POST", Path: "/v1/segments/preview", Body: map[string]any{"definition": cond(field, "eq", "x")}}),
			http.StatusUnprocessableEntity, "validation_failed")
		if got := pointers(p); !cmp.Equal(got, []string{"/definition/field"}) {
			t.Errorf("field %q: pointers %v", field, got)
		}
		if detail := p["detail"].(string); strings.Contains(detail, "SQL") || strings.Contains(detail, "syntax") {
			t.Errorf("field %q: the problem reveals SQL: %s", field, detail)
		}
	}
	for _, rule := range []any{
		cond("country", "eq", "DE' OR '1'='1"),
		cond("country", "in", []string{"x') OR true --"}),
		cond("owner", "contains", "%"),
		cond("owner", "contains", "_"),
		cond("owner", "contains", `\`),
		cond("tags", "contains", "vip'); DROP TABLE customers; --"),
		cond("tags", "in", []string{`"},{vip`}),
		cond("attributes.level", "eq", `gold" OR true`),
		cond("attributes.level", "in", []string{`gold"]'::jsonb OR true OR '["`}),
		cond("attributes.langs", "contains", `en"]`),
		cond("acquisition_channel", "ne", "'; DELETE FROM segments; --"),
	} {
		got := preview(t, e, byID, rule)
		want := []string{}
		if r := rule.(map[string]any); r["op"] == "ne" {
			want = []string{"a", "b", "c"}
		}
		if !cmp.Equal(got, want) {
			t.Errorf("rule %v selects %v, want %v", rule, got, want)
		}
	}
	seg := e.mustDo(request{Method: "POST", Path: "/v1/segments", Body: map[string]any{
		"name": "x'); DROP TABLE segment_members; --", "definition": cond("owner", "eq", "ann'; DROP TABLE customers; --"),
	}}, http.StatusCreated).json(t)
	if seg["member_count"] != float64(0) {
		t.Errorf("injected segment has %v members", seg["member_count"])
	}
	e.mustDo(request{Method: "POST", Path: "/v1/segments/" + seg["id"].(string) + "/refresh"}, http.StatusOK)
	list := e.mustDo(request{Method: "GET", Path: "/v1/customers?limit=200"}, http.StatusOK).json(t)["data"].([]any)
	if len(list) != 6 {
		t.Errorf("%d customers after the attempts, want 6", len(list))
	}
	if n := len(e.mustDo(request{Method: "GET", Path: "/v1/segments?limit=200"}, http.StatusOK).json(t)["data"].([]any)); n != 22 {
		t.Errorf("%d segments after the attempts, want 21 built-in and 1 custom", n)
	}
	if got := preview(t, e, byID, cond("owner", "eq", "ann")); !cmp.Equal(got, []string{"a"}) {
		t.Errorf("owner eq ann = %v after the attempts", got)
	}
}

// TestSegmentsIncremental checks that a new transaction moves its customer into a custom
// segment and between built-in tiers at once, without a refresh.
func TestSegmentsIncremental(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := ruleBase(t, e)
	seg := e.mustDo(request{Method: "POST", Path: "/v1/segments", Body: map[string]any{
		"name": "Repeat buyers", "definition": cond("frequency", "gte", 1),
	}}, http.StatusCreated).json(t)
	segID := seg["id"].(string)
	if got := memberNames(t, e, segID, ids); !cmp.Equal(got, []string{"a", "c"}) {
		t.Fatalf("members before = %v", got)
	}
	light := segmentsOf(t, e, "usage_tier")["light"]
	if got := memberNames(t, e, light["id"].(string), ids); !cmp.Equal(got, []string{"b"}) {
		t.Fatalf("light buyers before = %v", got)
	}
	refreshedAt := seg["refreshed_at"]
	// b buys again: frequency 1 enters the custom segment, and 2 purchase occasions (above the
	// light edge of 1.67 stored at the last refresh) make b a medium buyer.
	e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
		"customer_id": ids["b"], "type": "purchase", "occurred_at": time.Now().UTC().Add(-time.Hour).Format(time.RFC3339), "amount": "6", "currency": "EUR",
	}}, http.StatusCreated)
	after := e.mustDo(request{Method: "GET", Path: "/v1/segments/" + segID}, http.StatusOK).json(t)
	if after["member_count"] != float64(3) || after["refreshed_at"] != refreshedAt {
		t.Errorf("after the purchase: member_count %v, refreshed_at %v (was %v)", after["member_count"], after["refreshed_at"], refreshedAt)
	}
	if got := memberNames(t, e, segID, ids); !cmp.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("members after = %v", got)
	}
	usage := segmentsOf(t, e, "usage_tier")
	if got := memberNames(t, e, usage["light"]["id"].(string), ids); !cmp.Equal(got, []string{}) {
		t.Errorf("light buyers after = %v", got)
	}
	if got := memberNames(t, e, usage["medium"]["id"].(string), ids); !cmp.Equal(got, []string{"b", "c"}) {
		t.Errorf("medium buyers after = %v", got)
	}
	if usage["light"]["member_count"] != float64(0) || usage["medium"]["member_count"] != float64(2) {
		t.Errorf("usage counts after: light %v, medium %v", usage["light"]["member_count"], usage["medium"]["member_count"])
	}
	// A deleted customer leaves every segment at once.
	e.mustDo(request{Method: "DELETE", Path: "/v1/customers/" + ids["c"]}, http.StatusNoContent)
	if got := e.mustDo(request{Method: "GET", Path: "/v1/segments/" + segID}, http.StatusOK).json(t)["member_count"]; got != float64(2) {
		t.Errorf("member_count after deleting c = %v, want 2", got)
	}
	if got := segmentsOf(t, e, "usage_tier")["medium"]["member_count"]; got != float64(1) {
		t.Errorf("medium buyers after deleting c = %v, want 1", got)
	}
	var inBuiltins float64
	for _, family := range []string{"value_tier", "clv_tier", "value_class", "usage_tier", "rfm", "churn_band"} {
		for _, seg := range segmentsOf(t, e, family) {
			inBuiltins += seg["member_count"].(float64)
		}
	}
	if inBuiltins != 12 {
		t.Errorf("built-in families hold %v memberships after deleting c, want 2 customers × 6", inBuiltins)
	}
	page := e.mustDo(request{Method: "GET", Path: "/v1/segments/" + segID + "/members?sort=-net_value&limit=200"}, http.StatusOK).json(t)["data"].([]any)
	for _, m := range page {
		m := m.(map[string]any)
		if m["customer"].(map[string]any)["id"] == ids["b"] {
			entered, err := time.Parse(time.RFC3339, m["entered_at"].(string))
			if err != nil || time.Since(entered) > time.Minute {
				t.Errorf("b entered at %v", m["entered_at"])
			}
		}
	}
	// b's rescore and c's deletion kept the value distribution of the tier thresholds as
	// counting it afresh finds it, which storing the settings again does.
	kept := valueBuckets(t, e)
	st := e.mustDo(request{Method: "GET", Path: "/v1/segment-settings"}, http.StatusOK).json(t)
	e.mustDo(request{Method: "PUT", Path: "/v1/segment-settings", Body: map[string]any{
		"usage_thresholds": st["usage_thresholds"], "rfm_map": st["rfm_map"],
	}}, http.StatusOK)
	if diff := cmp.Diff(valueBuckets(t, e), kept); diff != "" {
		t.Errorf("value buckets kept by the rescore and the deletion differ from counting them afresh (-counted +kept):\n%s", diff)
	}
}

// valueBuckets lists the value buckets the tier thresholds are computed from.
func valueBuckets(t *testing.T, e *env) []string {
	t.Helper()
	rows, err := e.app.DB.SQL().Query(`SELECT concat_ws(' ', family, bucket, customers, trim_scale(total))
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

// TestSegmentsSettings configures fixed usage thresholds and a new RFM map: the tiers follow
// at once, RFM segments are created and removed to match, and bad settings are 422.
func TestSegmentsSettings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ids := ruleBase(t, e)
	st := e.mustDo(request{Method: "GET", Path: "/v1/segment-settings"}, http.StatusOK).json(t)
	if st["usage_thresholds"] != nil || len(st["rfm_map"].([]any)) != 5 || st["refreshed_at"] == nil {
		t.Fatalf("default settings: %v", st)
	}
	th := st["thresholds"].(map[string]any)
	near(t, "usage_light_max", th["usage_light_max"], 1+2.0/3, 1e-9)
	near(t, "usage_medium_max", th["usage_medium_max"], 2+1.0/3, 1e-9)
	near(t, "value_a_min", parseDecimal(t, th["value_a_min"]), 16, 0)
	near(t, "value_b_min", parseDecimal(t, th["value_b_min"]), 5, 0)
	all := []string{}
	for _, r := range st["rfm_map"].([]any) {
		for _, sc := range r.(map[string]any)["scores"].([]any) {
			all = append(all, sc.(string))
		}
	}
	updated := e.mustDo(request{Method: "PUT", Path: "/v1/segment-settings", Body: map[string]any{
		"usage_thresholds": map[string]any{"medium_from": 2, "heavy_from": 4},
		"rfm_map":          []any{map[string]any{"name": "Everyone scored", "scores": all}},
	}}, http.StatusOK).json(t)
	if updated["usage_thresholds"].(map[string]any)["heavy_from"] != float64(4) {
		t.Errorf("updated settings: %v", updated)
	}
	usage := segmentsOf(t, e, "usage_tier")
	if got := memberNames(t, e, usage["heavy"]["id"].(string), ids); !cmp.Equal(got, []string{}) {
		t.Errorf("heavy buyers with heavy_from 4 = %v", got)
	}
	if got := memberNames(t, e, usage["medium"]["id"].(string), ids); !cmp.Equal(got, []string{"a", "c"}) {
		t.Errorf("medium buyers with medium_from 2 = %v", got)
	}
	rfmSegments := segmentsOf(t, e, "rfm")
	if len(rfmSegments) != 2 || rfmSegments["Everyone scored"] == nil || rfmSegments["Other"] == nil {
		t.Fatalf("rfm segments after the new map: %v", rfmSegments)
	}
	if got := memberNames(t, e, rfmSegments["Everyone scored"]["id"].(string), ids); !cmp.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("members of the new RFM segment = %v", got)
	}
	for _, tc := range []struct {
		body    map[string]any
		pointer string
	}{
		{map[string]any{"usage_thresholds": map[string]any{"medium_from": 5, "heavy_from": 4}}, "/usage_thresholds"},
		{map[string]any{"rfm_map": []any{map[string]any{"name": "Other", "scores": []string{"111"}}}}, "/rfm_map/0/name"},
		{map[string]any{"rfm_map": []any{map[string]any{"name": "A", "scores": []string{"111"}}, map[string]any{"name": "B", "scores": []string{"111"}}}}, "/rfm_map"},
		{map[string]any{"rfm_map": []any{map[string]any{"name": "A", "scores": []string{"511"}}}}, "/rfm_map/0/scores/0"},
	} {
		p := problem(t, e.do(request{Method: "PUT", Path: "/v1/segment-settings", Body: tc.body}), http.StatusUnprocessableEntity, "validation_failed")
		if got := pointers(p); !slices.Contains(got, tc.pointer) {
			t.Errorf("%v: pointers %v, want %s", tc.body, got, tc.pointer)
		}
	}
	// Back to the defaults.
	e.mustDo(request{Method: "PUT", Path: "/v1/segment-settings", Body: map[string]any{}}, http.StatusOK)
	if n := len(segmentsOf(t, e, "rfm")); n != 6 {
		t.Errorf("%d RFM segments after restoring the default map, want 6", n)
	}
}
