package crm

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
)

func decode(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseRuleTypesValues(t *testing.T) {
	id := uuid.MustParse("01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e")
	r, err := ParseRule(decode(t, `{"all": [
		{"field": "clv", "op": "between", "value": [10, "20.5"]},
		{"field": "acquired_at", "op": "gte", "value": "2026-01-02T03:04:05+01:00"},
		{"field": "subtree", "op": "in", "value": ["`+id.String()+`"]},
		{"not": {"field": "tags", "op": "contains", "value": "vip"}},
		{"field": "attributes.level", "op": "eq", "value": true}
	]}`), "/definition")
	if err != nil {
		t.Fatal(err)
	}
	want := &Rule{All: []Rule{
		{Field: "clv", Op: OpBetween, Value: []any{Decimal("10"), Decimal("20.5")}},
		{Field: "acquired_at", Op: OpGte, Value: time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC)},
		{Field: "subtree", Op: OpIn, Value: []any{id}},
		{Not: &Rule{Field: "tags", Op: OpContains, Value: "vip"}},
		{Field: "attributes.level", Op: OpEq, Value: true},
	}}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("parsed rule (-want +got):\n%s", diff)
	}
	if !r.UsesScores() || (&Rule{Field: "country"}).UsesScores() {
		t.Error("UsesScores is wrong")
	}
}

func TestParseRulePointers(t *testing.T) {
	for _, tc := range []struct {
		rule string
		want []string
	}{
		{`[]`, []string{"/definition"}},
		{`{}`, []string{"/definition"}},
		{`{"any": [{"field": 3, "op": "eq", "value": 1}, {"field": "clv", "op": 5, "value": 1}]}`, []string{"/definition/any/0/field", "/definition/any/1/op"}},
		{`{"field": "clv", "op": "gt", "value": 1e300}`, []string{"/definition/value"}},
		{`{"field": "clv", "op": "gt", "value": "1,5"}`, []string{"/definition/value"}},
		{`{"field": "country", "op": "in", "value": []}`, []string{"/definition/value"}},
		{`{"field": "attributes.a/b", "op": "eq", "value": 1}`, []string{"/definition/field"}},
		{`{"field": "kind", "op": "eq", "value": "consumer", "a/b~": 1}`, []string{"/definition/a~1b~0"}},
	} {
		_, err := ParseRule(decode(t, tc.rule), "/definition")
		e, ok := err.(*Error)
		if !ok || e.Code != CodeInvalid {
			t.Errorf("%s: error %v, want Invalid", tc.rule, err)
			continue
		}
		var got []string
		for _, f := range e.Fields {
			got = append(got, f.Pointer)
		}
		if !cmp.Equal(got, tc.want) {
			t.Errorf("%s: pointers %v, want %v", tc.rule, got, tc.want)
		}
	}
}

// FuzzParseRule checks that any JSON either parses into a rule within the limits or fails
// with pointers into the definition, and never panics.
func FuzzParseRule(f *testing.F) {
	for _, seed := range []string{
		`{"all": [{"field": "clv", "op": "gt", "value": "10"}, {"not": {"field": "tags", "op": "exists", "value": true}}]}`,
		`{"any": [{"field": "attributes.x", "op": "between", "value": [1, 2]}]}`,
		`{"field": "subtree", "op": "eq", "value": "01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e"}`,
		`{"not": {"not": {"not": {"not": {"not": {}}}}}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			return
		}
		r, err := ParseRule(v, "/definition")
		if err != nil {
			e, ok := err.(*Error)
			if !ok || len(e.Fields) == 0 {
				t.Fatalf("error %v is not an Invalid error with fields", err)
			}
			for _, fe := range e.Fields {
				if !strings.HasPrefix(fe.Pointer, "/definition") {
					t.Fatalf("pointer %q is outside the definition", fe.Pointer)
				}
			}
			return
		}
		if depth, nodes := measure(r); depth > MaxRuleDepth || nodes > MaxRuleNodes {
			t.Fatalf("accepted a rule of depth %d with %d nodes", depth, nodes)
		}
	})
}

func measure(r *Rule) (depth, nodes int) {
	children := append(append([]Rule{}, r.All...), r.Any...)
	if r.Not != nil {
		children = append(children, *r.Not)
	}
	nodes = 1
	for i := range children {
		d, n := measure(&children[i])
		depth, nodes = max(depth, d), nodes+n
	}
	return depth + 1, nodes
}
