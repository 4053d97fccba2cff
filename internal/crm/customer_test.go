package crm

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/oapi-codegen/nullable"
)

func ptr[T any](v T) *T { return &v }

func TestCustomerPatchApply(t *testing.T) {
	t.Parallel()
	parent := uuid.New()
	base := Customer{
		Kind: KindBusiness, Role: ptr(RoleDealer), ParentID: &parent, Name: ptr("Outlet"), Email: ptr("a@b.co"),
		Tags: []string{"a"}, Attributes: map[string]any{"keep": 1.0, "drop": "x"},
		ExternalRefs: []ExternalRef{{Source: "erp", ExternalID: "1"}},
	}
	tests := []struct {
		name  string
		patch CustomerPatch
		want  func(c *Customer)
	}{
		{"empty patch changes nothing", CustomerPatch{}, func(*Customer) {}},
		{"null clears", CustomerPatch{Email: nullable.NewNullNullable[string](), ParentID: nullable.NewNullNullable[uuid.UUID]()},
			func(c *Customer) { c.Email, c.ParentID = nil, nil }},
		{"value replaces", CustomerPatch{Name: nullable.NewNullableWithValue("Shop"), Tags: nullable.NewNullableWithValue([]string{"b", "c"})},
			func(c *Customer) { c.Name, c.Tags = ptr("Shop"), []string{"b", "c"} }},
		{"attributes merge key by key", CustomerPatch{Attributes: nullable.NewNullableWithValue(map[string]any{"drop": nil, "new": true})},
			func(c *Customer) { c.Attributes = map[string]any{"keep": 1.0, "new": true} }},
		{"null attributes clear them all", CustomerPatch{Attributes: nullable.NewNullNullable[map[string]any]()},
			func(c *Customer) { c.Attributes = map[string]any{} }},
		{"null arrays empty them", CustomerPatch{Tags: nullable.NewNullNullable[[]string](), ExternalRefs: nullable.NewNullNullable[[]ExternalRef]()},
			func(c *Customer) { c.Tags, c.ExternalRefs = nil, nil }},
		{"kind and role", CustomerPatch{Kind: ptr(KindConsumer), Role: nullable.NewNullNullable[Role]()},
			func(c *Customer) { c.Kind, c.Role = KindConsumer, nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := base
			got.Attributes = map[string]any{"keep": 1.0, "drop": "x"}
			want := got
			want.Attributes = map[string]any{"keep": 1.0, "drop": "x"}
			tc.want(&want)
			tc.patch.Apply(&got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Apply (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckIfMatch(t *testing.T) {
	t.Parallel()
	c := &Customer{Version: 3}
	for header, ok := range map[string]bool{
		"": true, "*": true, `"3"`: true, `"1", "3"`: true, `W/"3"`: false, `"2"`: false, "3": false,
	} {
		err := checkIfMatch(c, header)
		if (err == nil) != ok {
			t.Errorf("checkIfMatch(version 3, %q) = %v, want ok=%v", header, err, ok)
		}
		if err != nil && ErrorCodeOf(err) != CodePreconditionFailed {
			t.Errorf("checkIfMatch(%q) code = %s", header, ErrorCodeOf(err))
		}
	}
}

func TestValidatorPointers(t *testing.T) {
	t.Parallel()
	v := NewValidator()
	c := Customer{
		Kind:            KindConsumer,
		Role:            ptr(RoleDealer),
		Email:           ptr("nope"),
		Tags:            []string{"ok", "has space"},
		AcquisitionCost: &Money{Amount: "1.00001", Currency: "EUR"},
		ExternalRefs:    []ExternalRef{{Source: "erp", ExternalID: ""}},
	}
	var got []string
	for _, f := range v.Struct(&c, "/items/4") {
		got = append(got, f.Pointer)
	}
	want := []string{"/items/4/role", "/items/4/email", "/items/4/tags/1", "/items/4/acquisition_cost/amount", "/items/4/external_refs/0/external_id"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pointers (-want +got):\n%s", diff)
	}
	valid := Customer{Kind: KindBusiness, Role: ptr(RoleDistributor), Country: ptr("DE"), AcquiredAt: ptr(time.Now())}
	if fields := v.Struct(&valid, ""); fields != nil {
		t.Errorf("valid customer: %v", fields)
	}
}

func TestScopeConfine(t *testing.T) {
	t.Parallel()
	hq, dist, dealer, shop := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	confined := Scope{Root: &dist}
	for _, c := range []struct {
		name          string
		scope         Scope
		in            Customer
		wantParent    *uuid.UUID
		wantAncestors []uuid.UUID
	}{
		{"unconfined", Scope{}, Customer{ID: shop, ParentID: &dealer, Ancestors: []uuid.UUID{hq, dist, dealer}}, &dealer, []uuid.UUID{hq, dist, dealer}},
		{"the root", confined, Customer{ID: dist, ParentID: &hq, Ancestors: []uuid.UUID{hq}}, nil, []uuid.UUID{}},
		{"below the root", confined, Customer{ID: shop, ParentID: &dealer, Ancestors: []uuid.UUID{hq, dist, dealer}}, &dealer, []uuid.UUID{dist, dealer}},
	} {
		got := c.in
		c.scope.Confine(&got)
		if !equalPtr(got.ParentID, c.wantParent) || !slices.Equal(got.Ancestors, c.wantAncestors) || got.Ancestors == nil {
			t.Errorf("%s: parent %v, ancestors %v; want %v, %v", c.name, got.ParentID, got.Ancestors, c.wantParent, c.wantAncestors)
		}
	}
}

func equalPtr(a, b *uuid.UUID) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}
