package analytics

import (
	"context"
	"fmt"
	"math"
	"math/big"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/pkg/btyd"
)

// Defaults and bounds of what-if analyses.
const (
	DefaultRetentionPoints    = 5
	MaxRetentionPoints        = 50
	DefaultWhatIfDiscountRate = 0.1
	DefaultWhatIfMargin       = 1
	DefaultWhatIfHorizonYears = 5
	MaxWhatIfHorizonYears     = 50
)

// WhatIfQuery asks what a change in annual retention is worth. Nil fields take their defaults.
type WhatIfQuery struct {
	// RetentionPoints is the change in annual retention in percentage points (−50…50,
	// default 5).
	RetentionPoints *float64
	// AnnualDiscountRate is the annual discount rate d (0…1, default 0.1).
	AnnualDiscountRate *float64
	// Margin is the profit margin applied to net value (0…1, default 1).
	Margin *float64
	// HorizonYears is the horizon of the profit figures (1…50, default 5).
	HorizonYears *int
	// Currency is the currency to analyse; default the latest model run's, else the most used
	// purchase currency.
	Currency string
}

// WhatIf is the value of a change in annual retention.
//
// Today's annual retention r is the share of the customers with a purchase (in any currency)
// in (now−730 days, now−365 days] who purchased again in (now−365 days, now]. A customer's
// annual margin m is its net value (purchases minus refunds in the currency) in
// (now−365 days, now] times the margin; only customers with a positive m count. The scenario
// retention is r plus the change, clamped to [0, 1]. Values are float estimates rounded to
// cents with halves away from zero; the changes are the differences of the rounded figures.
type WhatIf struct {
	Currency string
	// Customers counts the customers with a positive margin in the last 365 days.
	Customers                            int
	BaselineRetention, ScenarioRetention float64
	AnnualDiscountRate, Margin           float64
	HorizonYears                         int
	// BaselineValue and ScenarioValue are Σ m · r/(1+d−r) at each retention.
	BaselineValue, ScenarioValue, ValueChange string
	// BaselineProfit and ScenarioProfit are Σ m · Σ_{t=1…H} r^t/(1+d)^t at each retention.
	BaselineProfit, ScenarioProfit, ProfitChange string
}

// WhatIf values today's annual retention and a changed one. It returns an Invalid error when
// no customer purchased in the year before last, and when a retention of 100% without
// discounting would make the value infinite.
func (s *Insights) WhatIf(ctx context.Context, scope crm.Scope, q WhatIfQuery) (WhatIf, error) {
	points, discount, margin, horizon := derefOr(q.RetentionPoints, DefaultRetentionPoints),
		derefOr(q.AnnualDiscountRate, DefaultWhatIfDiscountRate), derefOr(q.Margin, DefaultWhatIfMargin),
		derefOr(q.HorizonYears, DefaultWhatIfHorizonYears)
	var fields []crm.FieldError
	if !(math.Abs(points) <= MaxRetentionPoints) {
		fields = append(fields, crm.FieldError{Pointer: "query:retention_points", Message: fmt.Sprintf("must be between -%d and %d", MaxRetentionPoints, MaxRetentionPoints)})
	}
	if !(discount >= 0 && discount <= 1) {
		fields = append(fields, crm.FieldError{Pointer: "query:annual_discount_rate", Message: "must be between 0 and 1"})
	}
	if !(margin >= 0 && margin <= 1) {
		fields = append(fields, crm.FieldError{Pointer: "query:margin", Message: "must be between 0 and 1"})
	}
	if horizon < 1 || horizon > MaxWhatIfHorizonYears {
		fields = append(fields, crm.FieldError{Pointer: "query:horizon_years", Message: fmt.Sprintf("must be between 1 and %d", MaxWhatIfHorizonYears)})
	}
	if fields != nil {
		return WhatIf{}, crm.Invalid(fields...)
	}
	currency, err := s.currency(ctx, scope, q.Currency)
	if err != nil {
		return WhatIf{}, err
	}
	activity, err := s.store.AnnualActivity(ctx, scope, currency, s.now().UTC())
	if err != nil {
		return WhatIf{}, fmt.Errorf("read annual activity: %w", err)
	}
	if activity.Previous == 0 {
		return WhatIf{}, crm.Errorf(crm.CodeInvalid, "Not enough history: no customer purchased between 730 and 365 days ago, so today's annual retention is unknown.")
	}
	netValue, err := parseDecimal(activity.NetValue)
	if err != nil {
		return WhatIf{}, fmt.Errorf("net value: %w", err)
	}
	annualMargin, _ := netValue.Float64()
	annualMargin *= margin
	baseline := float64(activity.Retained) / float64(activity.Previous)
	scenario := min(max(baseline+points/100, 0), 1)
	out := WhatIf{
		Currency: currency, Customers: activity.Customers, BaselineRetention: baseline, ScenarioRetention: scenario,
		AnnualDiscountRate: discount, Margin: margin, HorizonYears: horizon,
	}
	baseValue, baseProfit, err := retentionValue(annualMargin, baseline, discount, horizon)
	if err != nil {
		return WhatIf{}, err
	}
	scenValue, scenProfit, err := retentionValue(annualMargin, scenario, discount, horizon)
	if err != nil {
		return WhatIf{}, err
	}
	out.BaselineValue, out.ScenarioValue, out.ValueChange = formatCents(baseValue), formatCents(scenValue), formatCents(new(big.Rat).Sub(scenValue, baseValue))
	out.BaselineProfit, out.ScenarioProfit, out.ProfitChange = formatCents(baseProfit), formatCents(scenProfit), formatCents(new(big.Rat).Sub(scenProfit, baseProfit))
	return out, nil
}

// retentionValue returns, rounded to cents, the value m·r/(1+d−r) of an annual margin m
// retained with probability r at discount rate d, and its discounted profit over the horizon.
func retentionValue(m, r, d float64, horizon int) (value, profit *big.Rat, err error) {
	if r == 1 && d == 0 {
		return nil, nil, crm.Invalid(crm.FieldError{Pointer: "query:annual_discount_rate",
			Message: "must be positive when retention reaches 100%: without discounting a customer kept forever has an infinite value"})
	}
	multiplier, err := btyd.RetentionMultiplier(r, d)
	if err != nil {
		return nil, nil, fmt.Errorf("retention multiplier: %w", err)
	}
	var sum float64
	step := r / (1 + d)
	for t, f := 1, step; t <= horizon; t, f = t+1, f*step {
		sum += f
	}
	if value, err = roundCents(m * multiplier); err != nil {
		return nil, nil, fmt.Errorf("value: %w", err)
	}
	if profit, err = roundCents(m * sum); err != nil {
		return nil, nil, fmt.Errorf("profit: %w", err)
	}
	return value, profit, nil
}

// derefOr returns *p, or def when p is nil.
func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
