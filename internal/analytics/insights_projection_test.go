package analytics

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/pkg/btyd"
)

// TestResidualLifetime checks the direct sum against btyd's closed form where that is safe.
func TestResidualLifetime(t *testing.T) {
	t.Parallel()
	for _, p := range []btyd.SBGParams{{Alpha: 0.704, Beta: 1.182}, {Alpha: 0.668, Beta: 3.806}, {Alpha: 3.2, Beta: 0.4}} {
		m, err := btyd.NewShiftedBetaGeometric(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []float64{0.01, 0.1, 1, 10} {
			for _, renewals := range []int{0, 1, 7, 50} {
				want, err := m.DiscountedExpectedResidualLifetime(d, renewals)
				if err != nil {
					t.Logf("%+v, d=%v, renewals=%d: no closed form: %v", p, d, renewals, err)
					continue
				}
				got, ok := residualLifetime(m, d, renewals)
				if !ok || math.Abs(got-want) > 1e-9*max(1, want) {
					t.Errorf("%+v, d=%v, renewals=%d: residual lifetime = %v (ok %v), want %v", p, d, renewals, got, ok, want)
				}
			}
		}
	}
	// A near-integer, large α is where the closed form is slow; the sum is instant.
	m, err := btyd.NewShiftedBetaGeometric(btyd.SBGParams{Alpha: 1e4, Beta: 1e4})
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := residualLifetime(m, 0.1, 3); !ok || math.Abs(got-0.5/(1-0.5/1.1)) > 1e-3 {
		t.Errorf("residual lifetime with α = β = 10⁴ = %v (ok %v), want about %v", got, ok, 0.5/(1-0.5/1.1))
	}
}

func TestProjectionRequestValidation(t *testing.T) {
	t.Parallel()
	zero, big := 0, 201
	tests := []struct {
		name     string
		req      ProjectionRequest
		pointers []string
	}{
		{"valid", ProjectionRequest{Survivors: []int{10, 5, 5, 0}}, nil},
		{"neither", ProjectionRequest{}, []string{"/survivors"}},
		{"both", ProjectionRequest{Survivors: []int{2, 1}, Cohort: &CohortSelector{Unit: CohortMonth}}, []string{"/cohort"}},
		{"too short", ProjectionRequest{Survivors: []int{2}}, []string{"/survivors"}},
		{"empty cohort and increase", ProjectionRequest{Survivors: []int{0, 1}}, []string{"/survivors/0", "/survivors/1"}},
		{"negative", ProjectionRequest{Survivors: []int{3, -1}}, []string{"/survivors/1"}},
		{"bad unit", ProjectionRequest{Cohort: &CohortSelector{Unit: "day"}}, []string{"/cohort/unit"}},
		{"bad periods", ProjectionRequest{Survivors: []int{2, 1}, Periods: &zero}, []string{"/periods"}},
		{"too many periods", ProjectionRequest{Survivors: []int{2, 1}, Periods: &big}, []string{"/periods"}},
		{"no discount", ProjectionRequest{Survivors: []int{2, 1}, DiscountRate: new(0.0)}, []string{"/discount_rate"}},
		{"not a number", ProjectionRequest{Survivors: []int{2, 1}, DiscountRate: new(math.NaN())}, []string{"/discount_rate"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := tc.req.validate()
			var got []string
			if e, ok := err.(*crm.Error); ok {
				for _, f := range e.Fields {
					got = append(got, f.Pointer)
				}
			} else if err != nil {
				t.Fatalf("validate() error = %v, want a *crm.Error", err)
			}
			if diff := cmp.Diff(tc.pointers, got); diff != "" {
				t.Errorf("pointers (-want +got):\n%s", diff)
			}
		})
	}
}
