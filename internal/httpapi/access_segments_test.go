package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

// segmentAccessCases are the matrix rows of segments: custom segments are their partner's
// alone, built-in ones are shared but counted within the caller's subtree, and what every
// customer shares a confined key may read but not change.
func segmentAccessCases() []accessCase {
	subtreeRule := func(op string, value any) map[string]any {
		return map[string]any{"field": "subtree", "op": op, "value": value}
	}
	dealerSubtreeOfA := func(t *testing.T, fx *accessFixture) []string { return fx.subtreeIDs(t, fx.a.dealer) }
	return []accessCase{
		{
			name: "list custom segments",
			build: func(*testing.T, *accessFixture, *partnerSide) request {
				return get("/v1/segments?family=custom&limit=200")
			},
			cells: [4]cell{ok(200, listsSegments(true)), ok(200, listsSegments(true)), ok(200, listsSegments(false)), ok(200, listsSegments(false))},
		},
		{
			name: "get a custom segment",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				refreshAsAdmin(t, fx, s.segment)
				return get("/v1/segments/" + s.segment)
			},
			cells: [4]cell{ok(200, segmentCount(dealerSubtreeOfA)), ok(200, segmentCount(dealerSubtreeOfA)), ok(200, segmentCount(dealerSubtreeOfA)), notFound},
		},
		{
			name: "change a custom segment's strategy",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "PATCH", Path: "/v1/segments/" + s.segment, Body: map[string]any{"strategy": "Visit every quarter."}}
			},
			cells: [4]cell{ok(200, field("strategy", strategySet)), forbidden, ok(200, field("strategy", strategySet)), notFound},
		},
		{
			name: "list a custom segment's members",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				referAcross(t, fx, s)
				refreshAsAdmin(t, fx, s.segment)
				return get("/v1/segments/" + s.segment + "/members?limit=200")
			},
			cells: [4]cell{ok(200, membersExactly(dealerSubtreeOfA)), ok(200, membersExactly(dealerSubtreeOfA)), ok(200, membersExactly(dealerSubtreeOfA)), notFound},
		},
		{
			name: "summarise a custom segment",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				refreshAsAdmin(t, fx, s.segment)
				return get("/v1/segments/" + s.segment + "/summary")
			},
			cells: [4]cell{ok(200, summaryCount(dealerSubtreeOfA)), ok(200, summaryCount(dealerSubtreeOfA)), ok(200, summaryCount(dealerSubtreeOfA)), notFound},
		},
		{
			name: "compare a custom segment with a built-in one",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return get("/v1/segment-comparison?segment_id=" + s.segment + "&segment_id=" + fx.builtinOf(t, s))
			},
			cells: [4]cell{ok(200, comparesTwo), ok(200, comparesTwo), ok(200, comparesTwo), notFound},
		},
		{
			name: "refresh a custom segment",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/segments/" + s.segment + "/refresh"}
			},
			cells: [4]cell{ok(200, segmentCount(dealerSubtreeOfA)), forbidden, ok(200, segmentCount(dealerSubtreeOfA)), notFound},
		},
		{
			name: "create a segment of a dealer's subtree",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/segments", Body: map[string]any{"name": "Subtree " + uuid.NewString(), "definition": subtreeRule("eq", s.dealer)}}
			},
			// The sibling's dealer selects nothing, as an id that exists nowhere does; the new
			// segment's id and times differ from any twin's.
			cells: [4]cell{ok(201, segmentCount(dealerSubtreeOfA)), forbidden, ok(201, segmentCount(dealerSubtreeOfA)), ok(201, segmentCount(nobody))},
			twin:  twinNone,
		},
		{
			name: "redefine a custom segment as a dealer's subtree",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				seg := fx.e.mustDo(request{Method: "POST", Path: "/v1/segments", Key: fx.a.key, Body: map[string]any{
					"name": "Redefined " + uuid.NewString(), "definition": subtreeRule("eq", fx.a.dist),
				}}, http.StatusCreated).json(t)["id"].(string)
				return request{Method: "PATCH", Path: "/v1/segments/" + seg, Body: map[string]any{"definition": subtreeRule("in", []any{s.dealer})}}
			},
			cells: [4]cell{ok(200, segmentCount(dealerSubtreeOfA)), forbidden, ok(200, segmentCount(dealerSubtreeOfA)), ok(200, segmentCount(nobody))},
			twin:  twinNone,
		},
		{
			name: "preview a rule selecting a dealer's subtree",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				referAcross(t, fx, s)
				return request{Method: "POST", Path: "/v1/segments/preview", Body: map[string]any{"definition": subtreeRule("eq", s.dealer), "limit": 200}}
			},
			cells: [4]cell{ok(200, previewsExactly(dealerSubtreeOfA)), ok(200, previewsExactly(dealerSubtreeOfA)), ok(200, previewsExactly(dealerSubtreeOfA)), ok(200, previewsExactly(nobody))},
		},
		{
			name: "preview a rule excluding a dealer's subtree",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/segments/preview", Body: map[string]any{"definition": subtreeRule("not_in", []any{s.dealer}), "limit": 1}}
			},
			cells: [4]cell{
				ok(200, previewCount(func(t *testing.T, fx *accessFixture) int {
					return len(fx.allPages(t, fx.e.admin, "/v1/customers?limit=200")) - len(dealerSubtreeOfA(t, fx))
				})),
				ok(200, previewCount(func(t *testing.T, fx *accessFixture) int {
					return len(fx.allPages(t, fx.e.admin, "/v1/customers?limit=200")) - len(dealerSubtreeOfA(t, fx))
				})),
				ok(200, previewCount(func(t *testing.T, fx *accessFixture) int {
					return len(fx.subtreeIDs(t, fx.a.dist)) - len(dealerSubtreeOfA(t, fx))
				})),
				ok(200, previewCount(func(t *testing.T, fx *accessFixture) int { return len(fx.subtreeIDs(t, fx.a.dist)) })),
			},
		},
		{
			name: "get a built-in segment",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return get("/v1/segments/" + fx.builtinOf(t, s))
			},
			cells: [4]cell{ok(200, builtinCount(false)), ok(200, builtinCount(false)), ok(200, builtinCount(true)), ok(200, builtinCount(true))},
		},
		{
			name: "list a built-in segment's members",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return get("/v1/segments/" + fx.builtinOf(t, s) + "/members?limit=200")
			},
			cells: [4]cell{ok(200, builtinMembers(false)), ok(200, builtinMembers(false)), ok(200, builtinMembers(true)), ok(200, builtinMembers(true))},
		},
		{
			name: "summarise a built-in segment",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return get("/v1/segments/" + fx.builtinOf(t, s) + "/summary")
			},
			cells: [4]cell{ok(200, builtinSummary(false)), ok(200, builtinSummary(false)), ok(200, builtinSummary(true)), ok(200, builtinSummary(true))},
			// The request names no record of the sibling, and a summary is computed at the time
			// of asking.
			twin: twinNone,
		},
		{
			name: "refresh a built-in segment",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/segments/" + fx.builtinOf(t, s) + "/refresh"}
			},
			cells: [4]cell{ok(200, builtinCount(false)), forbidden, ok(403, sharedBuiltinRefused), ok(403, sharedBuiltinRefused)},
		},
		{
			name: "change a built-in segment's strategy",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "PATCH", Path: "/v1/segments/" + fx.builtinOf(t, s), Body: map[string]any{"strategy": "Visit every quarter."}}
			},
			cells: [4]cell{ok(200, field("strategy", strategySet)), forbidden, ok(403, sharedBuiltinRefused), ok(403, sharedBuiltinRefused)},
		},
		{
			name: "delete a built-in segment",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "DELETE", Path: "/v1/segments/" + fx.builtinOf(t, s)}
			},
			cells: [4]cell{fails(409, "conflict"), forbidden, fails(409, "conflict"), fails(409, "conflict")},
		},
		{
			name: "delete a custom segment",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				seg := fx.e.mustDo(request{Method: "POST", Path: "/v1/segments", Key: s.key, Body: map[string]any{
					"name": "Doomed " + uuid.NewString(), "definition": subtreeRule("eq", s.dist),
				}}, http.StatusCreated).json(t)["id"].(string)
				return request{Method: "DELETE", Path: "/v1/segments/" + seg}
			},
			// The sibling's new segment is not among its ids, so its twin names no segment.
			cells: [4]cell{ok(204, noBody), forbidden, ok(204, noBody), notFound},
			twin:  twinNone,
		},
		{
			name:  "get the segment settings",
			build: func(*testing.T, *accessFixture, *partnerSide) request { return get("/v1/segment-settings") },
			cells: [4]cell{ok(200, sameSettings), ok(200, sameSettings), ok(200, sameSettings), ok(200, sameSettings)},
		},
		{
			name: "change the segment settings",
			build: func(t *testing.T, fx *accessFixture, _ *partnerSide) request {
				// The settings as they are, so that the admin's change leaves them unchanged.
				st := fx.e.mustDo(get("/v1/segment-settings"), http.StatusOK).json(t)
				return request{Method: "PUT", Path: "/v1/segment-settings", Body: map[string]any{"usage_thresholds": st["usage_thresholds"], "rfm_map": st["rfm_map"]}}
			},
			cells: [4]cell{ok(200, sameSettings), forbidden, ok(403, settingsRefused), ok(403, settingsRefused)},
		},
	}
}

func nobody(*testing.T, *accessFixture) []string { return nil }

func strategySet(*accessFixture) any { return "Visit every quarter." }

// refreshAsAdmin recomputes a custom segment's members, so that customers created by earlier
// rows count.
func refreshAsAdmin(t *testing.T, fx *accessFixture, segment string) {
	t.Helper()
	fx.e.mustDo(request{Method: "POST", Path: "/v1/segments/" + segment + "/refresh"}, http.StatusOK)
}

// referAcross has the side's consumer referred by the other side's, so that a member list
// or preview that does not confine its customers names the other side.
func referAcross(t *testing.T, fx *accessFixture, s *partnerSide) {
	t.Helper()
	fx.e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + s.customer, Body: map[string]any{"referred_by": fx.other(s).customer}}, http.StatusOK)
}

// builtinOf picks the built-in value class segment of the side's consumer and remembers it.
func (fx *accessFixture) builtinOf(t *testing.T, s *partnerSide) string {
	t.Helper()
	c := fx.e.mustDo(get("/v1/customers/"+s.customer), http.StatusOK).json(t)
	for _, seg := range c["segments"].([]any) {
		if seg := seg.(map[string]any); seg["family"] == "value_class" {
			fx.builtin = seg["id"].(string)
			return fx.builtin
		}
	}
	t.Fatalf("customer %s is in no value class segment: %v", s.customer, c["segments"])
	return ""
}

// builtinMemberIDs lists the members of the last built-in segment named, as the admin sees
// them, or only those in partner a's subtree.
func (fx *accessFixture) builtinMemberIDs(t *testing.T, confined bool) []string {
	t.Helper()
	var ids []string
	subtree := fx.subtreeIDs(t, fx.a.dist)
	for _, m := range fx.allPages(t, fx.e.admin, "/v1/segments/"+fx.builtin+"/members?limit=200") {
		id := m["customer"].(map[string]any)["id"].(string)
		if !confined || slices.Contains(subtree, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func listsSegments(unconfined bool) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		ids := dataIDs(t, res)
		if !slices.Contains(ids, fx.a.segment) {
			t.Errorf("partner a's segment %s is not listed: %v", fx.a.segment, ids)
		}
		if slices.Contains(ids, fx.b.segment) != unconfined {
			t.Errorf("partner b's segment listed: %v, want %v", !unconfined, unconfined)
		}
	}
}

// segmentCount asserts a segment's member count is the number of the given customers.
func segmentCount(members func(*testing.T, *accessFixture) []string) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		want := len(members(t, fx))
		if got := res.json(t)["member_count"]; got != float64(want) {
			t.Errorf("member_count = %v, want %d", got, want)
		}
	}
}

func membersExactly(members func(*testing.T, *accessFixture) []string) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		var got []string
		for _, m := range res.json(t)["data"].([]any) {
			got = append(got, m.(map[string]any)["customer"].(map[string]any)["id"].(string))
		}
		assertSameIDs(t, members(t, fx), got)
	}
}

func assertSameIDs(t *testing.T, want, got []string) {
	t.Helper()
	want, got = slices.Clone(want), slices.Clone(got)
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("customers (-want +got):\n%s", diff)
	}
}

func summaryCount(members func(*testing.T, *accessFixture) []string) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		want := len(members(t, fx))
		if got := res.json(t)["members"]; got != float64(want) {
			t.Errorf("members = %v, want %d", got, want)
		}
	}
}

func comparesTwo(t *testing.T, fx *accessFixture, res response) {
	var ids []string
	for _, s := range res.json(t)["data"].([]any) {
		ids = append(ids, s.(map[string]any)["segment_id"].(string))
	}
	if diff := cmp.Diff([]string{fx.a.segment, fx.builtin}, ids); diff != "" {
		t.Errorf("compared segments (-want +got):\n%s", diff)
	}
}

// previewsExactly asserts a preview counts and lists exactly the given customers, the
// partner's root shown as the top of its subtree.
func previewsExactly(members func(*testing.T, *accessFixture) []string) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		want := members(t, fx)
		body := res.json(t)
		if body["count"] != float64(len(want)) {
			t.Errorf("count = %v, want %d", body["count"], len(want))
		}
		assertSameIDs(t, want, dataIDs(t, res))
	}
}

func previewCount(want func(*testing.T, *accessFixture) int) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		if got, n := res.json(t)["count"], want(t, fx); got != float64(n) {
			t.Errorf("count = %v, want %d", got, n)
		}
	}
}

// builtinCount asserts the built-in segment's member count is that of all its members or of
// those in partner a's subtree.
func builtinCount(confined bool) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		want := len(fx.builtinMemberIDs(t, confined))
		if got := res.json(t)["member_count"]; got != float64(want) || want == 0 {
			t.Errorf("member_count = %v, want %d (not 0)", got, want)
		}
	}
}

func builtinMembers(confined bool) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		var got []string
		for _, m := range res.json(t)["data"].([]any) {
			got = append(got, m.(map[string]any)["customer"].(map[string]any)["id"].(string))
		}
		want := fx.builtinMemberIDs(t, confined)
		if len(want) == 0 {
			t.Fatalf("the built-in segment has no members in the subtree")
		}
		assertSameIDs(t, want, got)
	}
}

func builtinSummary(confined bool) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		want := len(fx.builtinMemberIDs(t, confined))
		if got := res.json(t)["members"]; got != float64(want) || want == 0 {
			t.Errorf("members = %v, want %d (not 0)", got, want)
		}
	}
}

func sharedBuiltinRefused(t *testing.T, _ *accessFixture, res response) {
	p := problem(t, res, http.StatusForbidden, "forbidden")
	if !strings.Contains(p["detail"].(string), "built-in segments are shared by every customer") {
		t.Errorf("detail = %q, want it to say built-in segments are shared", p["detail"])
	}
}

func settingsRefused(t *testing.T, _ *accessFixture, res response) {
	p := problem(t, res, http.StatusForbidden, "forbidden")
	if !strings.Contains(p["detail"].(string), "confined to a customer subtree") || !strings.Contains(p["detail"].(string), "settings") {
		t.Errorf("detail = %q, want it to say the settings need an unconfined key", p["detail"])
	}
}

// sameSettings asserts the settings are those the admin reads.
func sameSettings(t *testing.T, fx *accessFixture, res response) {
	want := fx.e.mustDo(get("/v1/segment-settings"), http.StatusOK).json(t)
	got := res.json(t)
	for _, k := range []string{"usage_thresholds", "rfm_map", "thresholds"} {
		if diff := cmp.Diff(want[k], got[k]); diff != "" {
			t.Errorf("%s (-admin +got):\n%s", k, diff)
		}
	}
	if len(got["rfm_map"].([]any)) == 0 {
		t.Errorf("rfm_map is empty")
	}
}
