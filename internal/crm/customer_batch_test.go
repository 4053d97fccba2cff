package crm

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/oapi-codegen/nullable"
)

func TestCheckUpsertItem(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	ref := &ExternalRef{Source: "erp", ExternalID: "1"}
	withParent := CustomerPatch{ParentID: nullable.NewNullableWithValue(uuid.New())}
	tests := []struct {
		name    string
		item    CustomerUpsert
		pointer string // empty: valid
	}{
		{"by id", CustomerUpsert{ID: &id}, ""},
		{"by reference with if_match", CustomerUpsert{Ref: ref, IfMatch: `"3"`}, ""},
		{"if_match any", CustomerUpsert{Ref: ref, IfMatch: "*"}, ""},
		{"no key", CustomerUpsert{}, ""},
		{"both keys", CustomerUpsert{ID: &id, Ref: ref}, "/external_ref"},
		{"both parents", CustomerUpsert{ID: &id, ParentRef: ref, Patch: withParent}, "/parent_ref"},
		{"unquoted if_match", CustomerUpsert{ID: &id, IfMatch: "3"}, "/if_match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkUpsertItem(&tc.item)
			switch {
			case tc.name == "no key":
				if err == nil || err.Fields[0].Pointer != "" {
					t.Errorf("err = %v, want one pointing at the item", err)
				}
			case tc.pointer == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tc.pointer != "" && (err == nil || err.Fields[0].Pointer != tc.pointer):
				t.Errorf("err = %v, want one at %s", err, tc.pointer)
			}
		})
	}
}

func TestUpsertMerge(t *testing.T) {
	t.Parallel()
	s := NewCustomerBatchService(nil, NewValidator(), time.Now)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ref := ExternalRef{Source: "erp", ExternalID: "1"}
	stored := &Customer{
		ID: uuid.New(), Kind: KindConsumer, Name: ptr("Ada"), Tags: []string{"a", "b"},
		Attributes: map[string]any{"tier": 1.0}, ExternalRefs: []ExternalRef{ref}, Ancestors: []uuid.UUID{},
		Version: 4, CreatedAt: now.Add(-time.Hour), UpdatedAt: now.Add(-time.Hour),
	}

	// The same values in another order change nothing.
	same := CustomerUpsert{Ref: &ref, Patch: CustomerPatch{Tags: nullable.NewNullableWithValue([]string{"b", "a", "a"}), Attributes: nullable.NewNullableWithValue(map[string]any{"tier": 1.0})}}
	if c, changed, err := s.merge(Scope{}, &same, stored, now); err != nil || changed || c.Version != 4 {
		t.Errorf("same values: changed %v, version %d, err %v", changed, c.Version, err)
	}
	// A new value bumps the version and the time, and keeps the matching reference.
	rename := CustomerUpsert{Ref: &ref, IfMatch: `"4"`, Patch: CustomerPatch{Name: nullable.NewNullableWithValue("Ada L."), ExternalRefs: nullable.NewNullNullable[[]ExternalRef]()}}
	c, changed, err := s.merge(Scope{}, &rename, stored, now)
	if err != nil || !changed || c.Version != 5 || !c.UpdatedAt.Equal(now) || *c.Name != "Ada L." || len(c.ExternalRefs) != 1 {
		t.Errorf("rename: %+v, changed %v, err %v", c, changed, err)
	}
	if *stored.Name != "Ada" || stored.Version != 4 {
		t.Error("merge changed the stored customer")
	}
	// A stale if_match, a missing kind on create, and dropping the matching reference fail.
	stale := CustomerUpsert{Ref: &ref, IfMatch: `"3"`}
	if _, _, err := s.merge(Scope{}, &stale, stored, now); err == nil || err.Code != CodePreconditionFailed {
		t.Errorf("stale if_match: %v", err)
	}
	create := CustomerUpsert{Ref: &ExternalRef{Source: "erp", ExternalID: "2"}, NewID: uuid.New()}
	if _, _, err := s.merge(Scope{}, &create, nil, now); err == nil || err.Fields[0].Pointer != "/kind" {
		t.Errorf("create without kind: %v", err)
	}
	drop := CustomerUpsert{Ref: &ref, Patch: CustomerPatch{ExternalRefs: nullable.NewNullableWithValue([]ExternalRef{{Source: "erp", ExternalID: "other"}})}}
	if _, _, err := s.merge(Scope{}, &drop, stored, now); err == nil || err.Fields[0].Pointer != "/external_refs" {
		t.Errorf("dropping the matching reference: %v", err)
	}
}
