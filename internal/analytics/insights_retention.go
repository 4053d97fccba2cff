package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/centric-crm/centric/internal/crm"
)

// Defaults and bounds of the retention matrix.
const (
	DefaultCohortUnit       = CohortMonth
	DefaultRetentionPeriods = 12
	MaxRetentionPeriods     = 120
)

// RetentionQuery asks for the acquisition-cohort matrix. Zero fields take their defaults.
type RetentionQuery struct {
	// Unit is the length of cohorts and periods; default month.
	Unit CohortUnit
	// From keeps only cohorts whose customers' first purchase is at or after it.
	From *time.Time
	// To keeps only cohorts whose customers' first purchase is before it.
	To *time.Time
	// Periods is how many periods after acquisition to report (1–120, default 12), so each
	// cohort has at most Periods+1 columns, period 0 being the acquisition period.
	Periods int
}

// Retention is the acquisition-cohort retention matrix and the period rates across cohorts.
//
// A customer belongs to the cohort of the period (UTC) of its first purchase, in any currency,
// and is active in a period when it made at least one purchase in it. A period counts as
// reached when it starts no later than the period of the latest purchase on record in scope,
// so a historical import is not padded with empty periods up to today; that latest period may
// still be running.
type Retention struct {
	Unit     CohortUnit
	Currency string
	Cohorts  []CohortRow
	Rates    []PeriodRate
}

// CohortRow is one acquisition cohort of the matrix.
type CohortRow struct {
	// Start is the start of the cohort's period.
	Start time.Time
	// Size counts the customers whose first purchase fell in the period.
	Size int
	// Active[k] counts the customers of the cohort who purchased k periods after acquisition,
	// for every reached period up to the query's Periods.
	Active []int
	// Retention[k] is Active[k] / Size.
	Retention []float64
}

// PeriodRate is the retention from one period after acquisition to the next, pooled over the
// cohorts that reached the next period. Periods no active customer reached are left out.
type PeriodRate struct {
	// Period is the period after acquisition the rate starts from.
	Period int
	// Customers counts the customers active in Period, over the cohorts counted.
	Customers int
	// Retained counts those of Customers active in Period+1 too.
	Retained int
	// RetentionRate is Retained / Customers.
	RetentionRate float64
	// ChurnRate is 1 − RetentionRate.
	ChurnRate float64
}

// withDefaults fills the zero fields of q and validates it.
func (q RetentionQuery) withDefaults() (RetentionQuery, error) {
	if q.Unit == "" {
		q.Unit = DefaultCohortUnit
	}
	if q.Periods == 0 {
		q.Periods = DefaultRetentionPeriods
	}
	var fields []crm.FieldError
	if !q.Unit.valid() {
		fields = append(fields, crm.FieldError{Pointer: "query:cohort", Message: "must be one of week, month, quarter"})
	}
	if q.Periods < 1 || q.Periods > MaxRetentionPeriods {
		fields = append(fields, crm.FieldError{Pointer: "query:periods", Message: fmt.Sprintf("must be between 1 and %d", MaxRetentionPeriods)})
	}
	if q.From != nil && q.To != nil && !q.From.Before(*q.To) {
		fields = append(fields, crm.FieldError{Pointer: "query:to", Message: "must be after from"})
	}
	if fields != nil {
		return q, crm.Invalid(fields...)
	}
	return q, nil
}

// Retention returns the acquisition-cohort retention matrix. Purchases in every currency count
// as activity, so its currency is informational: the analytics default (the latest succeeded
// model run's, else the most used purchase currency, else NoCurrency).
func (s *Insights) Retention(ctx context.Context, scope crm.Scope, q RetentionQuery) (Retention, error) {
	q, err := q.withDefaults()
	if err != nil {
		return Retention{}, err
	}
	currency, err := s.currency(ctx, scope, "")
	if err != nil {
		return Retention{}, err
	}
	cells, err := s.store.CohortActivity(ctx, scope, q)
	if err != nil {
		return Retention{}, fmt.Errorf("read cohort activity: %w", err)
	}
	cohorts, rates := cohortMatrix(cells, q.Periods)
	return Retention{Unit: q.Unit, Currency: currency, Cohorts: cohorts, Rates: rates}, nil
}

// cohortMatrix assembles the matrix and the pooled period rates from the store's cells, which
// are ordered by cohort start and period; periods without a cell had no active customer.
func cohortMatrix(cells []CohortCell, periods int) ([]CohortRow, []PeriodRate) {
	cohorts := []CohortRow{}
	customers := make([]int, periods)
	retained := make([]int, periods)
	for i := 0; i < len(cells); {
		first := cells[i]
		columns := min(first.Reached, periods) + 1
		row := CohortRow{Start: first.Start, Active: make([]int, columns), Retention: make([]float64, columns)}
		for ; i < len(cells) && cells[i].Start.Equal(first.Start); i++ {
			c := cells[i]
			if c.Period >= columns {
				continue
			}
			row.Active[c.Period] = c.Active
			if c.Period < periods && c.Period < first.Reached {
				customers[c.Period] += c.Active
				retained[c.Period] += c.Retained
			}
		}
		row.Size = row.Active[0]
		for k, a := range row.Active {
			if row.Size > 0 {
				row.Retention[k] = float64(a) / float64(row.Size)
			}
		}
		cohorts = append(cohorts, row)
	}
	rates := []PeriodRate{}
	for k := range customers {
		if customers[k] == 0 {
			continue
		}
		r := float64(retained[k]) / float64(customers[k])
		rates = append(rates, PeriodRate{Period: k, Customers: customers[k], Retained: retained[k], RetentionRate: r, ChurnRate: 1 - r})
	}
	return cohorts, rates
}
