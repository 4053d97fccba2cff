package analytics

import (
	"math"
	"testing"
)

func TestCents(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"0": "0.00", "1.005": "1.01", "-1.005": "-1.01", "1.0049999": "1.00", "2.5": "2.50",
		"123456789012345.6789": "123456789012345.68", "-0.004": "0.00", "": "0.00",
	} {
		r, err := parseDecimal(in)
		if err != nil {
			t.Fatalf("parseDecimal(%q): %v", in, err)
		}
		if got := formatCents(r); got != want {
			t.Errorf("formatCents(%q) = %q, want %q", in, got, want)
		}
	}
	if _, err := parseDecimal("12,50"); err == nil {
		t.Error("parseDecimal(\"12,50\") succeeded")
	}
	for in, want := range map[float64]string{399.99999999999994: "400.00", 321.42857142857133: "321.43", 0.125: "0.13", -0.125: "-0.13"} {
		r, err := roundCents(in)
		if err != nil || formatCents(r) != want {
			t.Errorf("roundCents(%v) = %v, %v; want %s", in, r, err, want)
		}
	}
	if _, err := roundCents(math.Inf(1)); err == nil {
		t.Error("roundCents(+Inf) succeeded")
	}
}
