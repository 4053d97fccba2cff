package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"testing"

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
