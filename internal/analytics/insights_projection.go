package analytics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/pkg/btyd"
)

// Defaults and bounds of retention projections.
const (
	DefaultProjectionPeriods      = 12
	MaxProjectionPeriods          = 200
	DefaultProjectionDiscountRate = 0.1
	MaxProjectionDiscountRate     = 10
	MaxSurvivors                  = 200
)

// ProjectionRequest asks for a shifted-beta-geometric projection of one survival series: given
// in Survivors, or taken from the acquisition cohort named by Cohort. Exactly one of them must
// be set.
type ProjectionRequest struct {
	// Survivors[t] counts the customers still active at the start of period t; Survivors[0]
	// is the cohort size.
	Survivors []int
	// Cohort names an acquisition cohort to take the series from.
	Cohort *CohortSelector
	// Periods is how many periods from the cohort's start to project (default 12).
	Periods *int
	// DiscountRate is the discount rate per period of the expected residual lifetime
	// (default 0.1; it must be positive).
	DiscountRate *float64
}

// CohortSelector names an acquisition cohort by its length and any instant of its first period.
type CohortSelector struct {
	Unit  CohortUnit
	Start time.Time
}

// RetentionProjection is the fitted shifted-beta-geometric model (Fader & Hardie 2007) and its
// projection.
type RetentionProjection struct {
	// Alpha and Beta are the fitted parameters of the Beta distribution of churn probabilities.
	Alpha, Beta float64
	// LogLikelihood is the log-likelihood at the estimate.
	LogLikelihood float64
	// Survivors is the series that was fitted.
	Survivors []int
	// Periods are the projected periods 0…Periods.
	Periods []ProjectedPeriod
	// ExpectedResidualLifetime is the discounted expected residual lifetime, in periods, of a
	// customer who has survived the whole observed series (len(Survivors)−1 renewals).
	ExpectedResidualLifetime float64
}

// ProjectedPeriod is the model's survival and retention in one period.
type ProjectedPeriod struct {
	// Period is the number of periods since acquisition.
	Period int
	// Survival is S(t), the share of the cohort still a customer.
	Survival float64
	// RetentionRate is S(t)/S(t−1); nil for period 0.
	RetentionRate *float64
	// Observed is the observed survival share, where the series reaches the period.
	Observed *float64
}

// ProjectRetention fits the shifted-beta-geometric model to a survival series and projects it.
//
// For a cohort, survival is defined for non-contractual data: a customer survives to period k
// when its last purchase fell k or more periods after acquisition, which makes the series
// non-increasing. The series ends at the latest period with a purchase on record, so the
// survival of its last periods is understated for customers who will buy again.
func (s *Insights) ProjectRetention(ctx context.Context, scope crm.Scope, req ProjectionRequest) (RetentionProjection, error) {
	periods, discount, err := req.validate()
	if err != nil {
		return RetentionProjection{}, err
	}
	survivors := req.Survivors
	if req.Cohort != nil {
		if survivors, err = s.cohortSurvivors(ctx, scope, *req.Cohort); err != nil {
			return RetentionProjection{}, err
		}
	}
	counts := make([]float64, len(survivors))
	for i, n := range survivors {
		counts[i] = float64(n)
	}
	model, diag, err := btyd.FitShiftedBetaGeometric(counts, btyd.FitOptions{})
	var fitErr *btyd.FitError
	if errors.As(err, &fitErr) {
		return RetentionProjection{}, crm.Errorf(crm.CodeInvalid,
			"The shifted-beta-geometric model could not be fitted to these survivors: %s. Try a longer series or a larger cohort.", fitErr.Reason)
	}
	if err != nil {
		return RetentionProjection{}, fmt.Errorf("fit retention: %w", err)
	}
	out := RetentionProjection{
		Alpha: model.Params().Alpha, Beta: model.Params().Beta, LogLikelihood: diag.LogLikelihood,
		Survivors: survivors, Periods: make([]ProjectedPeriod, periods+1),
	}
	for t := range out.Periods {
		p := ProjectedPeriod{Period: t}
		if p.Survival, err = model.Survival(t); err != nil {
			return RetentionProjection{}, fmt.Errorf("project survival: %w", err)
		}
		if t > 0 {
			r, err := model.Retention(t)
			if err != nil {
				return RetentionProjection{}, fmt.Errorf("project retention: %w", err)
			}
			p.RetentionRate = &r
		}
		if t < len(survivors) {
			observed := float64(survivors[t]) / float64(survivors[0])
			p.Observed = &observed
		}
		out.Periods[t] = p
	}
	erl, ok := residualLifetime(model, discount, len(survivors)-1)
	if !ok {
		return RetentionProjection{}, crm.Invalid(crm.FieldError{Pointer: "/discount_rate",
			Message: fmt.Sprintf("is too small for the expected residual lifetime of this cohort to converge within %d periods", maxLifetimeTerms)})
	}
	out.ExpectedResidualLifetime = erl
	return out, nil
}

// maxLifetimeTerms bounds the sum of the expected residual lifetime.
const maxLifetimeTerms = 10_000_000

// residualLifetime returns the discounted expected residual lifetime (Fader & Hardie 2010) of a
// customer who has made the given number of renewals, at discount rate d > 0 per period:
// DERL = Σ_{t≥n} S(t)/S(n−1)·(1+d)^−(t−n) with n = renewals+1, summed directly. Each term is
// the previous one times the retention rate r_t < 1 and 1/(1+d), so the tail after a term is
// at most term/d, and the sum stops once that is below 1e-12 of the sum; ok is false if that
// takes more than maxLifetimeTerms terms. It agrees with btyd's closed form, which is not used
// because its ₂F₁ evaluation can run for minutes when α is large and close to an integer.
func residualLifetime(m *btyd.ShiftedBetaGeometric, d float64, renewals int) (erl float64, ok bool) {
	n := renewals + 1
	term := 1 + d // so that the first term is r_n
	for t := n; t < n+maxLifetimeTerms; t++ {
		r, err := m.Retention(t)
		if err != nil {
			return 0, false
		}
		term *= r / (1 + d)
		erl += term
		if term <= 1e-12*d*erl {
			return erl, true
		}
	}
	return 0, false
}

// validate checks the request and returns the projection length and discount rate to use.
func (req ProjectionRequest) validate() (int, float64, error) {
	periods, discount := DefaultProjectionPeriods, DefaultProjectionDiscountRate
	if req.Periods != nil {
		periods = *req.Periods
	}
	if req.DiscountRate != nil {
		discount = *req.DiscountRate
	}
	var fields []crm.FieldError
	switch {
	case req.Survivors == nil && req.Cohort == nil:
		fields = append(fields, crm.FieldError{Pointer: "/survivors", Message: "is required unless cohort names an acquisition cohort"})
	case req.Survivors != nil && req.Cohort != nil:
		fields = append(fields, crm.FieldError{Pointer: "/cohort", Message: "must not be given together with survivors"})
	case req.Survivors != nil:
		fields = append(fields, survivorErrors(req.Survivors)...)
	case !req.Cohort.Unit.valid():
		fields = append(fields, crm.FieldError{Pointer: "/cohort/unit", Message: "must be one of week, month, quarter"})
	}
	if periods < 1 || periods > MaxProjectionPeriods {
		fields = append(fields, crm.FieldError{Pointer: "/periods", Message: fmt.Sprintf("must be between 1 and %d", MaxProjectionPeriods)})
	}
	if !(discount > 0 && discount <= MaxProjectionDiscountRate) {
		fields = append(fields, crm.FieldError{Pointer: "/discount_rate", Message: fmt.Sprintf("must be greater than 0 and at most %d: without discounting the expected residual lifetime can be infinite", MaxProjectionDiscountRate)})
	}
	if fields != nil {
		return 0, 0, crm.Invalid(fields...)
	}
	return periods, discount, nil
}

// survivorErrors checks that a given series has 2 to 200 counts, starts positive and never
// increases.
func survivorErrors(survivors []int) []crm.FieldError {
	if len(survivors) < 2 || len(survivors) > MaxSurvivors {
		return []crm.FieldError{{Pointer: "/survivors", Message: fmt.Sprintf("must have 2 to %d counts", MaxSurvivors)}}
	}
	var fields []crm.FieldError
	if survivors[0] <= 0 {
		fields = append(fields, crm.FieldError{Pointer: "/survivors/0", Message: "must be positive: it is the cohort's size"})
	}
	for i := 1; i < len(survivors); i++ {
		switch {
		case survivors[i] < 0:
			fields = append(fields, crm.FieldError{Pointer: fmt.Sprintf("/survivors/%d", i), Message: "must not be negative"})
		case survivors[i] > survivors[i-1]:
			fields = append(fields, crm.FieldError{Pointer: fmt.Sprintf("/survivors/%d", i), Message: fmt.Sprintf("must not exceed the previous count %d: survivors never increase", survivors[i-1])})
		}
	}
	return fields
}

// cohortSurvivors returns the survival series of an acquisition cohort.
func (s *Insights) cohortSurvivors(ctx context.Context, scope crm.Scope, sel CohortSelector) ([]int, error) {
	last, err := s.store.CohortSurvival(ctx, scope, sel.Unit, sel.Start)
	if err != nil {
		return nil, fmt.Errorf("read cohort survival: %w", err)
	}
	if len(last.LastPeriod) == 0 {
		return nil, crm.Invalid(crm.FieldError{Pointer: "/cohort/start", Message: fmt.Sprintf("names a %s in which no customer made a first purchase", sel.Unit)})
	}
	if last.Reached < 1 {
		return nil, crm.Invalid(crm.FieldError{Pointer: "/cohort/start", Message: fmt.Sprintf("names the latest %s with purchases: the cohort has no later period to fit yet", sel.Unit)})
	}
	survivors := make([]int, len(last.LastPeriod))
	alive := 0
	for k := len(last.LastPeriod) - 1; k >= 0; k-- {
		alive += last.LastPeriod[k]
		survivors[k] = alive
	}
	return survivors, nil
}
