package analytics

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestCohortMatrix(t *testing.T) {
	t.Parallel()
	jan := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	feb := jan.AddDate(0, 1, 0)
	// January reached 3 periods: nobody bought in period 2, so it has no cell. February
	// reached 2, beyond the 1 period asked for in the second case.
	cells := []CohortCell{
		{Start: jan, Reached: 3, Period: 0, Active: 10, Retained: 4},
		{Start: jan, Reached: 3, Period: 1, Active: 4, Retained: 0},
		{Start: jan, Reached: 3, Period: 3, Active: 2},
		{Start: feb, Reached: 2, Period: 0, Active: 5, Retained: 1},
		{Start: feb, Reached: 2, Period: 1, Active: 1, Retained: 1},
	}
	t.Run("all periods", func(t *testing.T) {
		t.Parallel()
		cohorts, rates := cohortMatrix(cells, 12)
		wantCohorts := []CohortRow{
			{Start: jan, Size: 10, Active: []int{10, 4, 0, 2}, Retention: []float64{1, 0.4, 0, 0.2}},
			{Start: feb, Size: 5, Active: []int{5, 1, 0}, Retention: []float64{1, 0.2, 0}},
		}
		wantRates := []PeriodRate{
			{Period: 0, Customers: 15, Retained: 5, RetentionRate: 1.0 / 3, ChurnRate: 2.0 / 3},
			{Period: 1, Customers: 5, Retained: 1, RetentionRate: 0.2, ChurnRate: 0.8},
			// Period 2 had no active customer, so it has no rate.
		}
		if diff := cmp.Diff(wantCohorts, cohorts, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
			t.Errorf("cohorts (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantRates, rates, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
			t.Errorf("rates (-want +got):\n%s", diff)
		}
	})
	t.Run("one period", func(t *testing.T) {
		t.Parallel()
		cohorts, rates := cohortMatrix(cells, 1)
		if diff := cmp.Diff([][]int{{10, 4}, {5, 1}}, [][]int{cohorts[0].Active, cohorts[1].Active}); diff != "" {
			t.Errorf("active (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]PeriodRate{{Period: 0, Customers: 15, Retained: 5, RetentionRate: 1.0 / 3, ChurnRate: 2.0 / 3}}, rates, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
			t.Errorf("rates (-want +got):\n%s", diff)
		}
	})
	t.Run("no cells", func(t *testing.T) {
		t.Parallel()
		cohorts, rates := cohortMatrix(nil, 12)
		if cohorts == nil || rates == nil || len(cohorts)+len(rates) != 0 {
			t.Errorf("cohortMatrix(nil) = %v, %v; want empty, non-nil", cohorts, rates)
		}
	})
}
