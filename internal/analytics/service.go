package analytics

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/pkg/btyd"
	"github.com/centric-crm/centric/pkg/rfm"
)

// Churn-risk band thresholds: below bandMedium is low, from bandHigh on is high.
const (
	bandMedium = 0.3
	bandHigh   = 0.7
)

// ChurnBand returns the band of a churn risk.
func ChurnBand(risk float64) string {
	switch {
	case risk >= bandHigh:
		return "high"
	case risk >= bandMedium:
		return "medium"
	}
	return "low"
}

// SummaryRow is one customer's purchase summary, as the store computes it in SQL: purchases on
// the same calendar day (UTC) are one occasion whose amount is that day's purchases minus its
// refunds; refunds on days without a purchase count against the repeat spend.
type SummaryRow struct {
	CustomerID uuid.UUID
	// Frequency is the number of repeat occasions.
	Frequency int
	// RecencyDays is the number of days from the first to the last occasion.
	RecencyDays int
	// TDays is the number of days from the first occasion to the observation end.
	TDays int
	// Monetary is the mean net amount of the repeat occasions (0 without any).
	Monetary float64
	// Total is the net amount of all occasions, the first included.
	Total float64
}

// ScoreRow is what scoring computed for one customer.
type ScoreRow struct {
	CustomerID       uuid.UUID
	ProbabilityAlive float64
	Band             string
	Expected30       float64
	Expected90       float64
	Expected365      float64
	ExpectedSpend    float64
	CLV              float64
	RFM              rfm.Score
	Segment          string
}

// RefreshQuery says which summaries to compute and how to store the scores.
type RefreshQuery struct {
	Run            *Run
	ObservationEnd time.Time
	// CustomerIDs limits the refresh to these customers; nil refreshes everyone and removes
	// the scores of customers no longer scored. A full refresh stores Run.Result, when set,
	// with the scores: readers of a score learn its run's parameters before the run finishes.
	CustomerIDs []uuid.UUID
	ComputedAt  time.Time
}

// RefreshStats describe the data a refresh read.
type RefreshStats struct {
	Customers       int
	FirstPurchaseAt time.Time
	LastPurchaseAt  time.Time
	SummaryDuration time.Duration
	// ChangedCustomers are, after a full refresh, the customers whose transactions changed
	// while it ran: their new scores rest on the data as the refresh began.
	ChangedCustomers []uuid.UUID
}

// Store persists model runs and scores.
type Store interface {
	// CreateRun stores a queued run, or returns a Conflict error while another run is queued
	// or running.
	CreateRun(ctx context.Context, r *Run) error
	// ClaimRun marks the oldest queued run running and returns it, or nil when none is queued.
	ClaimRun(ctx context.Context, at time.Time) (*Run, error)
	// FinishRun stores the outcome of a run.
	FinishRun(ctx context.Context, r *Run) error
	// FailInterruptedRuns fails the runs left running by a process that stopped.
	FailInterruptedRuns(ctx context.Context, at time.Time) error
	// Run returns one run or a NotFound error.
	Run(ctx context.Context, id uuid.UUID) (*Run, error)
	// LatestRun returns the latest successful run, or a NotFound error.
	LatestRun(ctx context.Context) (*Run, error)
	// ListRuns returns one page of runs, newest first.
	ListRuns(ctx context.Context, page crm.PageRequest) ([]Run, string, error)
	// MostUsedCurrency returns the currency of most purchases, or "" without purchases.
	MostUsedCurrency(ctx context.Context) (string, error)
	// RefreshScores computes the summaries of q in SQL, passes them to score, and stores the
	// scores it returns, all in one transaction.
	RefreshScores(ctx context.Context, q RefreshQuery, score func([]SummaryRow) ([]ScoreRow, error)) (RefreshStats, error)
	// CustomerScores returns a live customer's scores within scope, or a NotFound error.
	CustomerScores(ctx context.Context, scope crm.Scope, customerID uuid.UUID) (*CustomerScores, error)
	// CustomersScoredByOtherRuns returns the customers whose stored scores another run than
	// runID produced.
	CustomersScoredByOtherRuns(ctx context.Context, runID uuid.UUID) ([]uuid.UUID, error)
}

// CustomerScores are a customer's stored scores.
type CustomerScores struct {
	CustomerID      uuid.UUID
	Run             *Run
	Currency        string
	ObservationEnd  time.Time
	ComputedAt      time.Time
	Frequency       int
	Recency         float64
	T               float64
	Monetary        string
	Purchases       int
	FirstPurchaseAt time.Time
	LastPurchaseAt  time.Time
	Revenue         string
	Refunds         string
	Cost            string
	NetValue        string
	PAlive          float64
	ChurnRisk       float64
	ChurnBand       string
	Expected30      float64
	Expected90      float64
	Expected365     float64
	ExpectedSpend   string
	CLV             string
	RFM             rfm.Score
	Segment         string
}

// Service runs model fits in the background and keeps scores current.
type Service struct {
	store  Store
	logger *slog.Logger
	now    func() time.Time
	wake   chan struct{}
	// refitEvery, when positive, queues a refit once the latest run is that old.
	refitEvery time.Duration
	// members, when set, is told about every change of scores.
	members MembershipUpdater
}

// NewService returns a Service. With refitEvery positive, Work queues a refit with the
// latest run's settings whenever that run is older than refitEvery.
func NewService(store Store, logger *slog.Logger, now func() time.Time, refitEvery time.Duration) *Service {
	return &Service{store: store, logger: logger, now: now, wake: make(chan struct{}, 1), refitEvery: refitEvery}
}

// StartRun validates the settings, fills in defaults, and queues a run.
func (s *Service) StartRun(ctx context.Context, in RunSettings) (*Run, error) {
	now := s.now().UTC().Truncate(time.Microsecond)
	if in.Model == "" {
		in.Model = ModelBGNBD
	}
	if in.Unit == "" {
		in.Unit = UnitWeek
	}
	if in.CalibrationEnd.IsZero() {
		in.CalibrationEnd = now
	}
	if in.CLV == (CLVSettings{}) {
		in.CLV = DefaultCLVSettings
	}
	var fields []crm.FieldError
	if in.Model != ModelBGNBD && in.Model != ModelMBGNBD {
		fields = append(fields, crm.FieldError{Pointer: "/model", Message: "must be bgnbd or mbgnbd"})
	}
	if units[in.Unit] == 0 {
		fields = append(fields, crm.FieldError{Pointer: "/time_unit", Message: "must be day, week or month"})
	}
	if in.CalibrationEnd.After(now) {
		fields = append(fields, crm.FieldError{Pointer: "/calibration_end", Message: "must not be in the future"})
	}
	if !(in.Penalty >= 0) || in.Penalty > 100 {
		fields = append(fields, crm.FieldError{Pointer: "/penalty", Message: "must be from 0 to 100"})
	}
	opts := btyd.CLVOptions{HorizonMonths: in.CLV.HorizonMonths, AnnualDiscountRate: in.CLV.AnnualDiscountRate, Margin: in.CLV.Margin}
	if err := opts.Validate(); err != nil {
		fields = append(fields, crm.FieldError{Pointer: "/clv", Message: err.Error()})
	}
	if fields != nil {
		return nil, crm.Invalid(fields...)
	}
	if in.Currency == "" {
		c, err := s.store.MostUsedCurrency(ctx)
		if err != nil {
			return nil, err
		}
		if c == "" {
			return nil, crm.Invalid(crm.FieldError{Pointer: "/currency", Message: "cannot default: there are no purchases yet"})
		}
		in.Currency = c
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	in.CalibrationEnd = in.CalibrationEnd.UTC()
	r := &Run{ID: id, RunSettings: in, Status: RunQueued, RequestedAt: now}
	if err := s.store.CreateRun(ctx, r); err != nil {
		return nil, err
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return r, nil
}

// Run returns one run.
func (s *Service) Run(ctx context.Context, id uuid.UUID) (*Run, error) { return s.store.Run(ctx, id) }

// LatestRun returns the latest successful run.
func (s *Service) LatestRun(ctx context.Context) (*Run, error) { return s.store.LatestRun(ctx) }

// ListRuns returns one page of runs, newest first.
func (s *Service) ListRuns(ctx context.Context, page crm.PageRequest) ([]Run, string, error) {
	return s.store.ListRuns(ctx, page)
}

// CustomerScores returns a customer's scores.
func (s *Service) CustomerScores(ctx context.Context, scope crm.Scope, id uuid.UUID) (*CustomerScores, error) {
	return s.store.CustomerScores(ctx, scope, id)
}

// Work executes queued runs, one at a time, until ctx ends; it also queues scheduled refits.
func (s *Service) Work(ctx context.Context) {
	if err := s.store.FailInterruptedRuns(ctx, s.now().UTC()); err != nil {
		s.logger.Error("fail interrupted model runs", "error", err)
	}
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		for {
			r, err := s.store.ClaimRun(ctx, s.now().UTC().Truncate(time.Microsecond))
			if err != nil {
				if ctx.Err() == nil {
					s.logger.Error("claim model run", "error", err)
				}
				break
			}
			if r == nil {
				break
			}
			s.execute(ctx, r)
		}
		s.scheduleRefit(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-tick.C:
		}
	}
}

// scheduleRefit queues a refit with the latest run's settings when that run is too old.
func (s *Service) scheduleRefit(ctx context.Context) {
	if s.refitEvery <= 0 {
		return
	}
	latest, err := s.store.LatestRun(ctx)
	if err != nil || latest.FinishedAt == nil || s.now().Sub(*latest.FinishedAt) < s.refitEvery {
		return
	}
	settings := latest.RunSettings
	settings.CalibrationEnd = time.Time{}
	if _, err := s.StartRun(ctx, settings); err != nil && crm.ErrorCodeOf(err) != crm.CodeConflict {
		s.logger.Error("queue scheduled refit", "error", err)
	}
}

// execute fits and scores one claimed run and stores its outcome.
func (s *Service) execute(ctx context.Context, r *Run) {
	start := s.now()
	result, changed, err := s.fitAndScore(ctx, r)
	finished := s.now().UTC().Truncate(time.Microsecond)
	r.FinishedAt = &finished
	if err != nil {
		r.Status, r.Result = RunFailed, nil
		r.Error = runErrorOf(err)
		s.logger.Warn("model run failed", "run_id", r.ID, "error", err)
	} else {
		if s.members != nil {
			s.members.ScoresRefreshed(ctx)
		}
		r.Status, r.Result = RunSucceeded, result
		s.logger.Info("model run succeeded", "run_id", r.ID, "customers", result.Customers, "duration", s.now().Sub(start))
	}
	if err := s.store.FinishRun(context.WithoutCancel(ctx), r); err != nil {
		s.logger.Error("store model run", "run_id", r.ID, "error", err)
		return
	}
	if r.Status == RunSucceeded {
		// Like the run's outcome, the catch-up is finished even when the worker is stopping:
		// it is small, and without it some customers would keep scores of the previous run.
		s.catchUp(context.WithoutCancel(ctx), r, changed)
	}
}

// catchUp rescores, with run r, the customers whose transactions changed while r's full
// refresh ran: those whose data changed before its scores were swapped in, and those a live
// rescore scored with the previous run after the swap, before r was marked succeeded.
func (s *Service) catchUp(ctx context.Context, r *Run, changed []uuid.UUID) {
	stale, err := s.store.CustomersScoredByOtherRuns(ctx, r.ID)
	if err != nil {
		s.logger.Error("find customers scored by other runs", "run_id", r.ID, "error", err)
	}
	ids := append(changed, stale...)
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	if err := s.rescoreWith(ctx, r, ids); err != nil {
		s.logger.Error("rescore customers changed during the run", "run_id", r.ID, "customers", len(ids), "error", err)
		return
	}
	if len(ids) > 0 {
		s.logger.Info("rescored customers changed during the run", "run_id", r.ID, "customers", len(ids))
	}
}

// errNoData is a run over no purchases.
var errNoData = errors.New("no customer has a purchase in the currency before the calibration end")

func runErrorOf(err error) *RunError {
	var fit *btyd.FitError
	switch {
	case errors.Is(err, errNoData):
		return &RunError{Code: "no_data", Message: err.Error()}
	case errors.As(err, &fit):
		return &RunError{Code: "not_converged", Message: err.Error()}
	}
	return &RunError{Code: "internal", Message: err.Error()}
}

// fitAndScore fits both models on the summaries at the calibration end and scores everyone.
// It also returns the customers whose transactions changed while it ran.
func (s *Service) fitAndScore(ctx context.Context, r *Run) (*RunResult, []uuid.UUID, error) {
	result := &RunResult{}
	var fitDuration time.Duration
	scoreStart := time.Time{}
	stats, err := s.store.RefreshScores(ctx, RefreshQuery{Run: r, ObservationEnd: r.CalibrationEnd, ComputedAt: s.now().UTC()},
		func(rows []SummaryRow) ([]ScoreRow, error) {
			if len(rows) == 0 {
				return nil, errNoData
			}
			fitStart := time.Now()
			summaries := summariesOf(rows, units[r.Unit])
			model, spend, err := fit(r, summaries, result)
			if err != nil {
				return nil, err
			}
			fitDuration = time.Since(fitStart)
			scoreStart = time.Now()
			edges, err := rfmEdges(rows)
			if err != nil {
				return nil, err
			}
			result.RFMEdges = edges
			// The scores about to be stored name this run, so its parameters are stored with
			// them, before the run is finished (see RefreshQuery).
			r.Result = result
			return score(r, model, spend, rows, summaries, edges)
		})
	if err != nil {
		return nil, nil, err
	}
	result.Customers = stats.Customers
	result.ScoredCustomers = stats.Customers
	result.FirstPurchaseAt, result.LastPurchaseAt = stats.FirstPurchaseAt, stats.LastPurchaseAt
	result.SummaryMillis = stats.SummaryDuration.Milliseconds()
	result.FitMillis = fitDuration.Milliseconds()
	if !scoreStart.IsZero() {
		result.ScoreMillis = time.Since(scoreStart).Milliseconds()
	}
	return result, stats.ChangedCustomers, nil
}

// summariesOf converts summary rows to model summaries in the unit. A negative mean repeat
// spend (refunds beyond purchases) counts as zero spend.
func summariesOf(rows []SummaryRow, unit rfm.TimeUnit) []btyd.Summary {
	out := make([]btyd.Summary, len(rows))
	d := unit.Days()
	for i, row := range rows {
		out[i] = btyd.Summary{
			Frequency: float64(row.Frequency),
			Recency:   float64(row.RecencyDays) / d,
			T:         float64(row.TDays) / d,
			Monetary:  max(row.Monetary, 0),
		}
	}
	return out
}

// fit fits the purchase and spend models and records their diagnostics in result.
func fit(r *Run, summaries []btyd.Summary, result *RunResult) (btyd.PurchaseModel, *btyd.GammaGamma, error) {
	data, err := btyd.Compress(summaries, units[r.Unit])
	if err != nil {
		return nil, nil, fmt.Errorf("compress summaries: %w", err)
	}
	opts := btyd.FitOptions{Penalty: r.Penalty}
	var model btyd.PurchaseModel
	var diag btyd.Diagnostics
	if r.Model == ModelMBGNBD {
		model, diag, err = btyd.FitMBGNBD(data, opts)
	} else {
		model, diag, err = btyd.FitBGNBD(data, opts)
	}
	if err != nil {
		return nil, nil, err
	}
	spend, spendDiag, err := btyd.FitGammaGamma(summaries, btyd.FitOptions{Penalty: r.Penalty})
	if err != nil {
		return nil, nil, err
	}
	bp, gp := model.Params(), spend.Params()
	result.Params = Params{R: bp.R, Alpha: bp.Alpha, A: bp.A, B: bp.B, P: gp.P, Q: gp.Q, Gamma: gp.Gamma}
	result.Fit, result.SpendFit = diagnosticsOf(diag), diagnosticsOf(spendDiag)
	result.DistinctRows = diag.Rows
	result.SpendExcluded = spendDiag.Excluded
	for _, s := range summaries {
		if s.Frequency > 0 {
			result.RepeatCustomers++
		}
	}
	bins, err := repeatPurchaseBins(model, data)
	if err != nil {
		return nil, nil, err
	}
	result.RepeatPurchases = bins
	return model, spend, nil
}

func diagnosticsOf(d btyd.Diagnostics) FitDiagnostics {
	return FitDiagnostics{
		Method: d.Method, Status: d.Status, Iterations: d.Iterations, Evaluations: d.FuncEvaluations,
		GradientNorm: d.GradientNorm, LogLikelihood: d.LogLikelihood,
	}
}

// newCustomerModel gives the probability of n purchases in (0, t] for a new customer.
type newCustomerModel interface {
	ProbabilityOfPurchases(n int, t float64) (float64, error)
}

// maxRepeatBin is the last bin of the repeat-purchase histogram, which holds it and more.
const maxRepeatBin = 7

// repeatPurchaseBins compares the observed number of customers with 0, 1, …, 6 and 7+ repeat
// purchases with the number the fitted model expects given each customer's time since the
// first purchase.
func repeatPurchaseBins(model btyd.PurchaseModel, data btyd.Data) ([]RepeatBin, error) {
	bins := make([]RepeatBin, maxRepeatBin+1)
	for k := range bins {
		bins[k].Label = strconv.Itoa(k)
	}
	bins[maxRepeatBin].Label = strconv.Itoa(maxRepeatBin) + "+"
	nm, ok := model.(newCustomerModel)
	if !ok {
		return nil, fmt.Errorf("model %s cannot give new-customer probabilities", model.Name())
	}
	customersByT := map[float64]float64{}
	for i, row := range data.Rows {
		k := min(int(row.Frequency), maxRepeatBin)
		bins[k].Observed += int(data.Counts[i])
		customersByT[row.T] += data.Counts[i]
	}
	for t, n := range customersByT {
		rest := 1.0
		for k := range maxRepeatBin {
			p, err := nm.ProbabilityOfPurchases(k, t)
			if err != nil {
				return nil, fmt.Errorf("expected repeat purchases: %w", err)
			}
			bins[k].Expected += n * p
			rest -= p
		}
		bins[maxRepeatBin].Expected += n * math.Max(rest, 0)
	}
	return bins, nil
}

// rfmEdges computes the quartile edges of the RFM values of the population.
func rfmEdges(rows []SummaryRow) (rfm.Edges, error) {
	values := make([]rfm.Values, len(rows))
	for i, row := range rows {
		values[i] = rfmValues(row)
	}
	edges, err := rfm.ComputeEdges(values)
	if err != nil {
		return rfm.Edges{}, fmt.Errorf("rfm edges: %w", err)
	}
	return edges, nil
}

// rfmValues are a customer's RFM inputs: days since the last occasion, occasions, and mean
// net amount per occasion, the first included.
func rfmValues(row SummaryRow) rfm.Values {
	occasions := float64(row.Frequency + 1)
	return rfm.Values{Recency: float64(row.TDays - row.RecencyDays), Frequency: occasions, Monetary: row.Total / occasions}
}

// score scores every customer with the fitted models and the RFM edges.
func score(r *Run, model btyd.PurchaseModel, spend *btyd.GammaGamma, rows []SummaryRow, summaries []btyd.Summary, edges rfm.Edges) ([]ScoreRow, error) {
	clv := btyd.CLVOptions{HorizonMonths: r.CLV.HorizonMonths, AnnualDiscountRate: r.CLV.AnnualDiscountRate, Margin: r.CLV.Margin}
	scorer, err := btyd.NewScorer(model, spend, btyd.ScorerOptions{HorizonsDays: []float64{30, 90, 365}, CLV: &clv})
	if err != nil {
		return nil, err
	}
	table := scorer.NewScoreTable(len(summaries))
	if err := scorer.ScoreAll(summaries, table); err != nil {
		return nil, fmt.Errorf("score customers: %w", err)
	}
	segmenter := rfm.DefaultSegmenter()
	out := make([]ScoreRow, len(rows))
	for i, row := range rows {
		rs := edges.Score(rfmValues(row))
		out[i] = ScoreRow{
			CustomerID:       row.CustomerID,
			ProbabilityAlive: table.ProbabilityAlive[i],
			Band:             ChurnBand(1 - table.ProbabilityAlive[i]),
			Expected30:       table.ExpectedPurchases[0][i],
			Expected90:       table.ExpectedPurchases[1][i],
			Expected365:      table.ExpectedPurchases[2][i],
			ExpectedSpend:    table.ExpectedSpend[i],
			CLV:              table.CLV[i],
			RFM:              rs,
			Segment:          segmenter.Segment(rs),
		}
	}
	return out, nil
}

// RefreshScores rescores customers whose transactions changed, logging a failure: scores are
// derived data, and the next rescore or model run repairs them.
func (s *Service) RefreshScores(ctx context.Context, customerIDs []uuid.UUID) {
	if err := s.Rescore(ctx, customerIDs); err != nil {
		s.logger.ErrorContext(ctx, "rescore customers", "customers", len(customerIDs), "error", err)
	}
}

// Rescore recomputes the scores of the given customers with the latest run, as of now. It
// does nothing before the first successful run.
func (s *Service) Rescore(ctx context.Context, customerIDs []uuid.UUID) error {
	if len(customerIDs) == 0 {
		return nil
	}
	latest, err := s.store.LatestRun(ctx)
	if crm.ErrorCodeOf(err) == crm.CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	return s.rescoreWith(ctx, latest, customerIDs)
}

// rescoreWith recomputes the scores of the given customers with run r, as of now.
func (s *Service) rescoreWith(ctx context.Context, r *Run, customerIDs []uuid.UUID) error {
	if len(customerIDs) == 0 {
		return nil
	}
	model, spend, err := r.models()
	if err != nil {
		return fmt.Errorf("rebuild models of run %s: %w", r.ID, err)
	}
	now := s.now().UTC()
	ids := slices.Clone(customerIDs)
	_, err = s.store.RefreshScores(ctx, RefreshQuery{Run: r, ObservationEnd: now, CustomerIDs: ids, ComputedAt: now},
		func(rows []SummaryRow) ([]ScoreRow, error) {
			return score(r, model, spend, rows, summariesOf(rows, units[r.Unit]), r.Result.RFMEdges)
		})
	if err != nil {
		return fmt.Errorf("rescore %d customers: %w", len(ids), err)
	}
	if s.members != nil {
		s.members.ScoresChanged(ctx, ids)
	}
	return nil
}
