package analytics

import (
	"time"

	"github.com/google/uuid"

	"github.com/centric-crm/centric/pkg/btyd"
	"github.com/centric-crm/centric/pkg/rfm"
)

// Model names a purchase model.
type Model string

// The purchase models.
const (
	ModelBGNBD  Model = "bgnbd"
	ModelMBGNBD Model = "mbgnbd"
)

// TimeUnit names the time unit of a run.
type TimeUnit string

// The time units.
const (
	UnitDay   TimeUnit = "day"
	UnitWeek  TimeUnit = "week"
	UnitMonth TimeUnit = "month"
)

// units maps time unit names to their length.
var units = map[TimeUnit]rfm.TimeUnit{UnitDay: rfm.Day, UnitWeek: rfm.Week, UnitMonth: rfm.Month}

// Days returns the unit's length in days, or 0 for an unknown unit.
func (u TimeUnit) Days() float64 { return units[u].Days() }

// CLVSettings say how predicted CLV is computed.
type CLVSettings struct {
	HorizonMonths      int
	AnnualDiscountRate float64
	Margin             float64
}

// DefaultCLVSettings are a 12-month horizon, a 10% annual discount rate and a margin of 1
// (revenue CLV).
var DefaultCLVSettings = CLVSettings{HorizonMonths: 12, AnnualDiscountRate: 0.10, Margin: 1}

// RunSettings say what a model run fits.
type RunSettings struct {
	Model          Model
	Unit           TimeUnit
	CalibrationEnd time.Time
	Currency       string
	Penalty        float64
	CLV            CLVSettings
}

// RunStatus is the state of a model run.
type RunStatus string

// The states of a model run.
const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
)

// Run is one fit of the purchase and spend models and the scoring of every customer with it.
type Run struct {
	ID uuid.UUID
	RunSettings
	Status      RunStatus
	RequestedAt time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
	Result      *RunResult
	Error       *RunError
}

// Params are the fitted parameters of both models.
type Params struct {
	R, Alpha, A, B float64
	P, Q, Gamma    float64
}

// FitDiagnostics describe how an optimisation went.
type FitDiagnostics struct {
	Method        string
	Status        string
	Iterations    int
	Evaluations   int
	GradientNorm  float64
	LogLikelihood float64
}

// RepeatBin counts customers with a number of repeat purchases, observed and expected.
type RepeatBin struct {
	Label    string
	Observed int
	Expected float64
}

// RunResult is what a successful run fitted and scored.
type RunResult struct {
	Params          Params
	Customers       int
	RepeatCustomers int
	SpendExcluded   int
	DistinctRows    int
	ScoredCustomers int
	FirstPurchaseAt time.Time
	LastPurchaseAt  time.Time
	Fit             FitDiagnostics
	SpendFit        FitDiagnostics
	SummaryMillis   int64
	FitMillis       int64
	ScoreMillis     int64
	RepeatPurchases []RepeatBin
	// RFMEdges are the quartile edges of the scored population, reused by live rescoring.
	RFMEdges rfm.Edges
}

// RunError says why a run failed.
type RunError struct {
	Code    string
	Message string
}

// models rebuilds the fitted models of a successful run.
func (r *Run) models() (btyd.PurchaseModel, *btyd.GammaGamma, error) {
	p := r.Result.Params
	bg := btyd.BetaGeoParams{R: p.R, Alpha: p.Alpha, A: p.A, B: p.B}
	var model btyd.PurchaseModel
	var err error
	if r.Model == ModelMBGNBD {
		model, err = btyd.NewMBGNBD(bg, units[r.Unit])
	} else {
		model, err = btyd.NewBGNBD(bg, units[r.Unit])
	}
	if err != nil {
		return nil, nil, err
	}
	spend, err := btyd.NewGammaGamma(btyd.GammaGammaParams{P: p.P, Q: p.Q, Gamma: p.Gamma})
	if err != nil {
		return nil, nil, err
	}
	return model, spend, nil
}
