package httpapi

import (
	"context"
	"time"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/analytics"
)

// GetRetention returns the acquisition-cohort retention matrix.
func (s *Server) GetRetention(ctx context.Context, req api.GetRetentionRequestObject) (api.GetRetentionResponseObject, error) {
	p := req.Params
	r, err := s.Insights.Retention(ctx, scopeOf(ctx), analytics.RetentionQuery{
		Unit: analytics.CohortUnit(deref(p.Cohort)), From: p.From, To: p.To, Periods: deref(p.Periods),
	})
	if err != nil {
		return nil, err
	}
	out := api.GetRetention200JSONResponse{
		Cohort: api.RetentionCohort(r.Unit), Currency: r.Currency,
		Cohorts: make([]api.Cohort, len(r.Cohorts)), PeriodRates: make([]api.PeriodRate, len(r.Rates)),
	}
	for i, c := range r.Cohorts {
		out.Cohorts[i] = api.Cohort{Start: c.Start, Size: c.Size, Active: c.Active, Retention: c.Retention}
	}
	for i, pr := range r.Rates {
		out.PeriodRates[i] = api.PeriodRate{Period: pr.Period, Customers: pr.Customers, RetentionRate: pr.RetentionRate, ChurnRate: pr.ChurnRate}
	}
	return out, nil
}

// ProjectRetention fits the shifted-beta-geometric model to a survival series and projects it.
func (s *Server) ProjectRetention(ctx context.Context, req api.ProjectRetentionRequestObject) (api.ProjectRetentionResponseObject, error) {
	if req.Body == nil {
		return nil, errEmptyBody
	}
	in := analytics.ProjectionRequest{Periods: req.Body.Periods, DiscountRate: req.Body.DiscountRate}
	if req.Body.Survivors != nil {
		in.Survivors = *req.Body.Survivors
	}
	if c := req.Body.Cohort; c != nil {
		in.Cohort = &analytics.CohortSelector{Unit: analytics.CohortUnit(c.Unit), Start: c.Start}
	}
	p, err := s.Insights.ProjectRetention(ctx, scopeOf(ctx), in)
	if err != nil {
		return nil, err
	}
	out := api.ProjectRetention200JSONResponse{
		Alpha: p.Alpha, Beta: p.Beta, LogLikelihood: p.LogLikelihood, Survivors: p.Survivors,
		ExpectedResidualLifetime: p.ExpectedResidualLifetime, Projection: make([]api.ProjectedPeriod, len(p.Periods)),
	}
	for i, pp := range p.Periods {
		out.Projection[i] = api.ProjectedPeriod{
			Period: pp.Period, Survival: pp.Survival,
			RetentionRate: nullableOf(pp.RetentionRate), Observed: nullableOf(pp.Observed),
		}
	}
	return out, nil
}

// GetConcentration reports how concentrated customer value is.
func (s *Server) GetConcentration(ctx context.Context, req api.GetConcentrationRequestObject) (api.GetConcentrationResponseObject, error) {
	p := req.Params
	c, err := s.Insights.Concentration(ctx, scopeOf(ctx), analytics.ConcentrationQuery{
		Basis: analytics.ValueBasis(deref(p.Basis)), Currency: deref(p.Currency), Points: deref(p.Points),
	})
	if err != nil {
		return nil, err
	}
	out := api.GetConcentration200JSONResponse{
		Basis: api.ConcentrationBasis(c.Basis), Currency: c.Currency, Customers: c.Customers, Total: c.Total,
		Top20PercentShare: c.Top20Share, Gini: c.Gini, Lorenz: make([]api.LorenzPoint, len(c.Lorenz)),
	}
	for i, l := range c.Lorenz {
		out.Lorenz[i] = api.LorenzPoint{CustomerShare: l.CustomerShare, ValueShare: l.ValueShare}
	}
	return out, nil
}

// GetAcquisition reports acquisition cost and value by cohort or channel.
func (s *Server) GetAcquisition(ctx context.Context, req api.GetAcquisitionRequestObject) (api.GetAcquisitionResponseObject, error) {
	p := req.Params
	a, err := s.Insights.Acquisition(ctx, scopeOf(ctx), analytics.AcquisitionQuery{
		GroupBy: analytics.AcquisitionGrouping(deref(p.GroupBy)), Unit: analytics.CohortUnit(deref(p.Cohort)), Currency: deref(p.Currency),
	})
	if err != nil {
		return nil, err
	}
	out := api.GetAcquisition200JSONResponse{GroupBy: api.AcquisitionGroupBy(a.GroupBy), Currency: a.Currency, Groups: make([]api.AcquisitionGroup, len(a.Groups))}
	for i, g := range a.Groups {
		key := g.Channel
		if a.GroupBy == analytics.GroupByCohort {
			key = g.Cohort.UTC().Format(time.RFC3339)
		}
		out.Groups[i] = api.AcquisitionGroup{
			Key: key, NewCustomers: g.NewCustomers, AcquisitionCost: g.Cost,
			Cac: nullableOf(g.CAC), AverageClv: nullableOf(g.AverageCLV), ClvToCac: nullableOf(g.CLVToCAC),
		}
	}
	return out, nil
}

// GetWhatIf values a change in annual retention.
func (s *Server) GetWhatIf(ctx context.Context, req api.GetWhatIfRequestObject) (api.GetWhatIfResponseObject, error) {
	p := req.Params
	w, err := s.Insights.WhatIf(ctx, scopeOf(ctx), analytics.WhatIfQuery{
		RetentionPoints: p.RetentionPoints, AnnualDiscountRate: p.AnnualDiscountRate, Margin: p.Margin,
		HorizonYears: p.HorizonYears, Currency: deref(p.Currency),
	})
	if err != nil {
		return nil, err
	}
	return api.GetWhatIf200JSONResponse{
		Currency: w.Currency, Customers: w.Customers,
		BaselineRetention: w.BaselineRetention, ScenarioRetention: w.ScenarioRetention,
		AnnualDiscountRate: w.AnnualDiscountRate, Margin: w.Margin, HorizonYears: w.HorizonYears,
		BaselineValue: w.BaselineValue, ScenarioValue: w.ScenarioValue, ValueChange: w.ValueChange,
		BaselineProfit: w.BaselineProfit, ScenarioProfit: w.ScenarioProfit, ProfitChange: w.ProfitChange,
	}, nil
}
