package httpapi

import (
	"context"

	"github.com/oapi-codegen/nullable"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/crm"
)

// CreateModelRun queues a fit of the models.
func (s *Server) CreateModelRun(ctx context.Context, req api.CreateModelRunRequestObject) (api.CreateModelRunResponseObject, error) {
	if req.Body == nil {
		return nil, errEmptyBody
	}
	b := req.Body
	settings := analytics.RunSettings{
		CalibrationEnd: deref(b.CalibrationEnd),
		Currency:       deref(b.Currency),
		Penalty:        deref(b.Penalty),
		CLV:            clvSettingsFromAPI(b.Clv),
	}
	if b.Model != nil {
		settings.Model = analytics.Model(*b.Model)
	}
	if b.TimeUnit != nil {
		settings.Unit = analytics.TimeUnit(*b.TimeUnit)
	}
	run, err := s.Analytics.StartRun(ctx, settings)
	if err != nil {
		return nil, err
	}
	location := "/v1/analytics/model-runs/" + run.ID.String()
	return api.CreateModelRun202JSONResponse{Body: modelRunToAPI(run), Headers: api.CreateModelRun202ResponseHeaders{Location: &location}}, nil
}

// clvSettingsFromAPI fills the unset CLV settings with their defaults.
func clvSettingsFromAPI(c *api.CLVSettings) analytics.CLVSettings {
	out := analytics.DefaultCLVSettings
	if c == nil {
		return out
	}
	if c.HorizonMonths != nil {
		out.HorizonMonths = *c.HorizonMonths
	}
	if c.AnnualDiscountRate != nil {
		out.AnnualDiscountRate = *c.AnnualDiscountRate
	}
	if c.Margin != nil {
		out.Margin = *c.Margin
	}
	return out
}

// ListModelRuns returns one page of runs, newest first.
func (s *Server) ListModelRuns(ctx context.Context, req api.ListModelRunsRequestObject) (api.ListModelRunsResponseObject, error) {
	runs, next, err := s.Analytics.ListRuns(ctx, crm.PageRequest{Limit: deref(req.Params.Limit), Cursor: deref(req.Params.Cursor)})
	if err != nil {
		return nil, err
	}
	out := api.ListModelRuns200JSONResponse{Data: make([]api.ModelRun, len(runs)), HasMore: next != "", NextCursor: nullableString(next)}
	for i := range runs {
		out.Data[i] = modelRunToAPI(&runs[i])
	}
	return out, nil
}

// GetLatestModelRun returns the latest successful run.
func (s *Server) GetLatestModelRun(ctx context.Context, _ api.GetLatestModelRunRequestObject) (api.GetLatestModelRunResponseObject, error) {
	run, err := s.Analytics.LatestRun(ctx)
	if err != nil {
		return nil, err
	}
	return api.GetLatestModelRun200JSONResponse(modelRunToAPI(run)), nil
}

// GetModelRun returns one run.
func (s *Server) GetModelRun(ctx context.Context, req api.GetModelRunRequestObject) (api.GetModelRunResponseObject, error) {
	run, err := s.Analytics.Run(ctx, req.RunId)
	if err != nil {
		return nil, err
	}
	return api.GetModelRun200JSONResponse(modelRunToAPI(run)), nil
}

// GetCustomerScores returns a customer's scores in detail.
func (s *Server) GetCustomerScores(ctx context.Context, req api.GetCustomerScoresRequestObject) (api.GetCustomerScoresResponseObject, error) {
	sc, err := s.Analytics.CustomerScores(ctx, scopeOf(ctx), req.CustomerId)
	if err != nil {
		return nil, err
	}
	run := sc.Run
	p := run.Result.Params
	return api.GetCustomerScores200JSONResponse{
		CustomerId: sc.CustomerID, ModelRunId: run.ID, Model: api.PurchaseModelName(run.Model),
		TimeUnit: api.TimeUnit(run.Unit), Currency: sc.Currency, ObservationEnd: sc.ObservationEnd, ComputedAt: sc.ComputedAt,
		Frequency: sc.Frequency, Recency: sc.Recency, T: sc.T, Monetary: sc.Monetary, Purchases: sc.Purchases,
		FirstPurchaseAt: sc.FirstPurchaseAt, LastPurchaseAt: sc.LastPurchaseAt,
		Revenue: sc.Revenue, Refunds: sc.Refunds, Cost: sc.Cost, NetValue: sc.NetValue,
		PAlive: sc.PAlive, ChurnRisk: sc.ChurnRisk, ChurnBand: api.ChurnBand(sc.ChurnBand),
		ExpectedPurchases30d: sc.Expected30, ExpectedPurchases90d: sc.Expected90, ExpectedPurchases365d: sc.Expected365,
		ExpectedSpend: sc.ExpectedSpend, Clv: sc.CLV, ClvSettings: clvSettingsToAPI(run.CLV),
		Rfm: api.RFMScore{
			Recency: sc.RFM.R, Frequency: sc.RFM.F, Monetary: sc.RFM.M, Score: sc.RFM.String(), Segment: sc.Segment,
		},
		Parameters: api.ModelParameters{R: p.R, Alpha: p.Alpha, A: p.A, B: p.B, P: p.P, Q: p.Q, Gamma: p.Gamma},
	}, nil
}

func clvSettingsToAPI(c analytics.CLVSettings) api.CLVSettings {
	return api.CLVSettings{HorizonMonths: &c.HorizonMonths, AnnualDiscountRate: &c.AnnualDiscountRate, Margin: &c.Margin}
}

func modelRunToAPI(r *analytics.Run) api.ModelRun {
	out := api.ModelRun{
		Id: r.ID, Status: api.ModelRunStatus(r.Status), Model: api.PurchaseModelName(r.Model), TimeUnit: api.TimeUnit(r.Unit),
		CalibrationEnd: r.CalibrationEnd, Currency: r.Currency, Penalty: r.Penalty, Clv: clvSettingsToAPI(r.CLV),
		RequestedAt: r.RequestedAt, StartedAt: nullableOf(r.StartedAt), FinishedAt: nullableOf(r.FinishedAt),
		Result: nullable.NewNullNullable[api.ModelRunResult](), Error: nullable.NewNullNullable[api.ModelRunError](),
	}
	if r.Error != nil {
		out.Error.Set(api.ModelRunError{Code: r.Error.Code, Message: r.Error.Message})
	}
	// A run stores its result with its scores, before it finishes; it is shown once it has.
	if res := r.Result; res != nil && r.Status == analytics.RunSucceeded {
		result := api.ModelRunResult{
			Parameters: api.ModelParameters{
				R: res.Params.R, Alpha: res.Params.Alpha, A: res.Params.A, B: res.Params.B,
				P: res.Params.P, Q: res.Params.Q, Gamma: res.Params.Gamma,
			},
			LogLikelihood: res.Fit.LogLikelihood, SpendLogLikelihood: res.SpendFit.LogLikelihood,
			Customers: res.Customers, RepeatCustomers: res.RepeatCustomers, SpendExcluded: res.SpendExcluded,
			DistinctRows: res.DistinctRows, FirstPurchaseAt: res.FirstPurchaseAt, LastPurchaseAt: res.LastPurchaseAt,
			ScoredCustomers: res.ScoredCustomers, Fit: fitToAPI(res.Fit), SpendFit: fitToAPI(res.SpendFit),
			RepeatPurchases: make([]api.RepeatPurchaseBin, len(res.RepeatPurchases)),
		}
		result.TimingsMs.Summary, result.TimingsMs.Fit, result.TimingsMs.Score = int(res.SummaryMillis), int(res.FitMillis), int(res.ScoreMillis)
		for i, b := range res.RepeatPurchases {
			result.RepeatPurchases[i] = api.RepeatPurchaseBin{RepeatPurchases: b.Label, Observed: b.Observed, Expected: b.Expected}
		}
		out.Result.Set(result)
	}
	return out
}

func fitToAPI(d analytics.FitDiagnostics) api.FitDiagnostics {
	return api.FitDiagnostics{Method: d.Method, Status: d.Status, Iterations: d.Iterations, FunctionEvaluations: d.Evaluations, GradientNorm: d.GradientNorm}
}

func scoreSummaryToAPI(s *crm.ScoreSummary) nullable.Nullable[api.ScoreSummary] {
	if s == nil {
		return nullable.NewNullNullable[api.ScoreSummary]()
	}
	return nullable.NewNullableWithValue(api.ScoreSummary{
		ModelRunId: s.ModelRunID, PAlive: s.PAlive, ChurnRisk: s.ChurnRisk, ChurnBand: api.ChurnBand(s.ChurnBand),
		ExpectedPurchases90d: s.ExpectedPurchases90d, Clv: s.CLV, Currency: s.Currency, ComputedAt: s.ComputedAt,
	})
}
