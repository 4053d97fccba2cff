package analytics

import (
	"fmt"
	"math"
	"math/big"
)

// Money in insights is exact where it is measured and rounded once, at the end, to cents with
// halves rounded away from zero (so 1.005 becomes "1.01" and −1.005 becomes "-1.01").

// parseDecimal parses a decimal string as an exact rational; "" is zero.
func parseDecimal(s string) (*big.Rat, error) {
	if s == "" {
		return new(big.Rat), nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return nil, fmt.Errorf("parse decimal %q", s)
	}
	return r, nil
}

// formatCents formats r with two decimals, rounding halves away from zero; an amount that
// rounds to zero is "0.00", never "-0.00".
func formatCents(r *big.Rat) string {
	if s := r.FloatString(2); s != "-0.00" {
		return s
	}
	return "0.00"
}

// roundCents rounds a finite float estimate to an exact number of cents, halves away from zero
// on the float's exact binary value.
func roundCents(x float64) (*big.Rat, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil, fmt.Errorf("value %v is not finite", x)
	}
	r, _ := new(big.Rat).SetString(new(big.Rat).SetFloat64(x).FloatString(2))
	return r, nil
}
