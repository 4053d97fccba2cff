package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/centric-crm/centric/internal/crm"
)

// CohortUnit is the length of acquisition cohorts and of the periods after acquisition.
type CohortUnit string

// The cohort lengths. Weeks start on Monday; every period starts at midnight UTC.
const (
	CohortWeek    CohortUnit = "week"
	CohortMonth   CohortUnit = "month"
	CohortQuarter CohortUnit = "quarter"
)

// valid reports whether u is a known cohort length.
func (u CohortUnit) valid() bool {
	return u == CohortWeek || u == CohortMonth || u == CohortQuarter
}

// NoCurrency is the ISO 4217 code for "no currency" (XXX). Insights report it when no currency
// was asked for and none can be inferred because no purchase was ever recorded.
const NoCurrency = "XXX"

// InsightStore reads the set-based aggregates the insights are computed from. Every method
// honours the scope and reads live customers only.
type InsightStore interface {
	// DefaultCurrency returns the currency of the latest succeeded model run, else the most
	// used purchase currency (ties broken alphabetically), else "".
	DefaultCurrency(ctx context.Context, scope crm.Scope) (string, error)
	// CohortActivity returns, per acquisition cohort and period after acquisition up to
	// q.Periods, how many of the cohort's customers purchased in that period and how many of
	// those purchased in the next period too, ordered by cohort start and period.
	CohortActivity(ctx context.Context, scope crm.Scope, q RetentionQuery) ([]CohortCell, error)
	// CohortSurvival returns, for the acquisition cohort of the given length whose period
	// contains start, how many customers made their last purchase in each period after
	// acquisition.
	CohortSurvival(ctx context.Context, scope crm.Scope, unit CohortUnit, start time.Time) (CohortLastPurchases, error)
	// RankedValues returns the value of every ranked customer in the currency, largest first.
	RankedValues(ctx context.Context, scope crm.Scope, basis ValueBasis, currency string) (RankedValues, error)
	// AcquisitionGroups returns the acquired customers' counts, acquisition spend and CLV
	// scores in the currency, per group, ordered by group.
	AcquisitionGroups(ctx context.Context, scope crm.Scope, q AcquisitionQuery, currency string) ([]AcquisitionRow, error)
	// AnnualActivity returns the purchase activity of the two 365-day years before now and
	// the net value of the last one in the currency.
	AnnualActivity(ctx context.Context, scope crm.Scope, currency string, now time.Time) (AnnualActivity, error)
}

// CohortCell is the activity of one acquisition cohort in one period after acquisition.
type CohortCell struct {
	// Start is the start of the cohort's period.
	Start time.Time
	// Reached is how many periods after acquisition the data reaches for this cohort: the
	// number of periods from its start to the period of the latest purchase on record.
	Reached int
	// Period is the number of periods since acquisition (0 is the acquisition period).
	Period int
	// Active counts the cohort's customers with a purchase in the period.
	Active int
	// Retained counts those of Active with a purchase in the next period too.
	Retained int
}

// CohortLastPurchases describes how long the customers of one acquisition cohort kept buying.
type CohortLastPurchases struct {
	// Reached is how many periods after acquisition the data reaches for this cohort.
	Reached int
	// LastPeriod[k] counts the customers whose last purchase fell k periods after acquisition;
	// it has Reached+1 entries, or none when the cohort is empty.
	LastPeriod []int
}

// RankedValues are customers' values, largest first, with their exact total.
type RankedValues struct {
	// Values are the customers' values, in descending order.
	Values []float64
	// Total is the exact sum of the values as a decimal string ("0" without values).
	Total string
}

// AcquisitionRow is what the store knows about one group of acquired customers.
type AcquisitionRow struct {
	// Cohort is the start of the acquisition cohort, when grouping by cohort.
	Cohort time.Time
	// Channel is the acquisition channel ("" when unset), when grouping by channel.
	Channel string
	// Customers counts the group's acquired customers.
	Customers int
	// Cost is the exact acquisition spend as a decimal string.
	Cost string
	// Scored counts the group's customers with a CLV score in the currency.
	Scored int
	// CLV is the exact sum of those scores as a decimal string.
	CLV string
}

// AnnualActivity is the purchase activity behind the what-if analysis.
type AnnualActivity struct {
	// Previous counts customers with a purchase in (now−730 days, now−365 days].
	Previous int
	// Retained counts those of Previous with a purchase in (now−365 days, now] too.
	Retained int
	// Customers counts customers whose net value in (now−365 days, now] is positive.
	Customers int
	// NetValue is the exact sum of those positive net values, as a decimal string.
	NetValue string
}

// Insights answers the retention, concentration, acquisition and what-if questions.
type Insights struct {
	store InsightStore
	now   func() time.Time
}

// NewInsights returns the insights service reading from store, with now as its clock.
func NewInsights(store InsightStore, now func() time.Time) *Insights {
	return &Insights{store: store, now: now}
}

// currency returns the requested currency, else the store's default, else NoCurrency.
func (s *Insights) currency(ctx context.Context, scope crm.Scope, requested string) (string, error) {
	if requested != "" {
		return requested, nil
	}
	c, err := s.store.DefaultCurrency(ctx, scope)
	if err != nil {
		return "", fmt.Errorf("default currency: %w", err)
	}
	if c == "" {
		return NoCurrency, nil
	}
	return c, nil
}
