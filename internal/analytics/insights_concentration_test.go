package analytics

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestConcentrationOf(t *testing.T) {
	t.Parallel()
	curve := func(shares ...float64) []LorenzPoint {
		out := make([]LorenzPoint, len(shares))
		for i, s := range shares {
			out[i] = LorenzPoint{CustomerShare: float64(i+1) / float64(len(shares)), ValueShare: s}
		}
		return out
	}
	tests := []struct {
		name   string
		values []float64
		points int
		want   Concentration
	}{
		{"empty", nil, 2, Concentration{Lorenz: curve(0, 0)}},
		{"everyone equal", []float64{5, 5, 5, 5}, 4, Concentration{Customers: 4, Top20Share: 0.25, Gini: 0, Lorenz: curve(0.25, 0.5, 0.75, 1)}},
		// One of n brings everything: G = (n−1)/n.
		{"one brings all", []float64{10, 0, 0, 0, 0}, 5, Concentration{Customers: 5, Top20Share: 1, Gini: 0.8, Lorenz: curve(1, 1, 1, 1, 1)}},
		// ⌈20% of 6⌉ = 2 customers; Lorenz points at 1.5, 3, 4.5 and 6 customers.
		{"rounding up the top 20%", []float64{6, 5, 4, 3, 2, 1}, 4, Concentration{Customers: 6, Top20Share: 11.0 / 21,
			Gini: 7.0/6 - 2*(6+10+12+12+10+6)/(6*21.0), Lorenz: curve((6+2.5)/21, 15.0/21, 19.0/21, 1)}},
		// Negative values count as zero.
		{"negative values", []float64{3, 1, -2, -4}, 2, Concentration{Customers: 4, Top20Share: 0.75, Gini: 5.0/4 - 2*(3+2)/(4*4.0), Lorenz: curve(1, 1)}},
		{"only losses", []float64{-1, -2}, 2, Concentration{Customers: 2, Lorenz: curve(0, 0)}},
		// More points than customers: the curve is linear across each customer.
		{"points between customers", []float64{3, 1}, 4, Concentration{Customers: 2, Top20Share: 0.75, Gini: 1.5 - 2*5/(2*4.0), Lorenz: curve(0.375, 0.75, 0.875, 1)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := concentrationOf(tc.values, tc.points)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
				t.Errorf("concentrationOf(%v, %d) (-want +got):\n%s", tc.values, tc.points, diff)
			}
		})
	}
}

// TestGiniMatchesDefinition checks the O(n) formula against the mean absolute difference.
func TestGiniMatchesDefinition(t *testing.T) {
	t.Parallel()
	values := []float64{900, 300, 300, 120, 80, 80, 50, 20, 7, 0.5, 0}
	var sum, diffs float64
	for _, x := range values {
		sum += x
		for _, y := range values {
			diffs += max(x-y, y-x)
		}
	}
	n := float64(len(values))
	want := diffs / (2 * n * n * (sum / n))
	if got := concentrationOf(values, 10).Gini; got-want > 1e-12 || want-got > 1e-12 {
		t.Errorf("Gini = %v, want %v", got, want)
	}
}
