package postgres

import (
	"slices"
	"testing"

	"github.com/google/uuid"
)

func FuzzTextArrayRoundTrip(f *testing.F) {
	for _, seed := range []string{"", "vip", `a"b`, `back\slash`, "{braces}", "comma,inside", "NULL", "ünïcödé"} {
		f.Add(seed, "second")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		in := textArray{a, b}
		v, err := in.Value()
		if err != nil {
			t.Fatalf("Value(%q): %v", in, err)
		}
		var out textArray
		if err := out.Scan(v); err != nil {
			t.Fatalf("Scan(%q): %v", v, err)
		}
		if !slices.Equal(in, out) {
			t.Fatalf("round trip of %q = %q via %q", in, out, v)
		}
	})
}

func TestTextArrayScansPostgresOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text string
		want textArray
	}{
		{"{}", textArray{}},
		{"{vip,eu}", textArray{"vip", "eu"}},
		{`{"a b","q\"uote","back\\slash",NULLISH}`, textArray{"a b", `q"uote`, `back\slash`, "NULLISH"}},
	}
	for _, tc := range tests {
		var got textArray
		if err := got.Scan(tc.text); err != nil {
			t.Errorf("Scan(%q): %v", tc.text, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Scan(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
	for _, bad := range []string{"", "vip", `{"open`} {
		var got textArray
		if err := got.Scan(bad); err == nil {
			t.Errorf("Scan(%q) = %q, want an error", bad, got)
		}
	}
}

func TestUUIDArrayRoundTrip(t *testing.T) {
	t.Parallel()
	in := uuidArray{uuid.New(), uuid.New()}
	v, _ := in.Value()
	var out uuidArray
	if err := out.Scan(v); err != nil || !slices.Equal(in, out) {
		t.Fatalf("round trip of %v = %v, %v", in, out, err)
	}
	if err := out.Scan("{}"); err != nil || len(out) != 0 {
		t.Fatalf("Scan({}) = %v, %v", out, err)
	}
	if err := out.Scan("{not-a-uuid}"); err == nil {
		t.Fatal("Scan of a bad uuid succeeded")
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(cursor{List: "l", Text: new(string), ID: uuid.New()}))
	f.Add("")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s, "l")
		if err == nil && s != "" && (c == nil || c.List != "l") {
			t.Fatalf("decodeCursor(%q) accepted a cursor of another list: %+v", s, c)
		}
	})
}
