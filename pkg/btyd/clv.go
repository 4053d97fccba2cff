package btyd

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// DaysPerMonth is the length of the month CLV horizons are measured in.
const DaysPerMonth = 365.25 / 12

// CLVOptions configures the discounted-cash-flow customer lifetime value.
// Start from [DefaultCLVOptions]; the zero value is invalid.
type CLVOptions struct {
	// HorizonMonths is the horizon in months of 365.25/12 days; the value
	// is summed over monthly steps. Default 12.
	HorizonMonths int
	// AnnualDiscountRate is the yearly discount rate d; a cash flow at the
	// end of month k is divided by (1+d)^(k/12), i.e. the monthly rate is
	// (1+d)^(1/12) − 1. Default 0.10.
	AnnualDiscountRate float64
	// Margin is the profit margin applied to expected revenue. Default 1,
	// which makes CLV a revenue value.
	Margin float64
}

// DefaultCLVOptions returns the defaults: a 12-month horizon, a 10% annual
// discount rate and a margin of 1 (revenue CLV).
func DefaultCLVOptions() CLVOptions {
	return CLVOptions{HorizonMonths: 12, AnnualDiscountRate: 0.10, Margin: 1}
}

// Validate checks the options.
func (o CLVOptions) Validate() error {
	if o.HorizonMonths < 1 || o.HorizonMonths > 1200 {
		return fmt.Errorf("horizon must be 1 to 1200 months, got %d", o.HorizonMonths)
	}
	if !(o.AnnualDiscountRate >= 0) || math.IsInf(o.AnnualDiscountRate, 0) {
		return fmt.Errorf("annual discount rate must be non-negative and finite, got %v", o.AnnualDiscountRate)
	}
	if !(o.Margin > 0) || math.IsInf(o.Margin, 0) {
		return fmt.Errorf("margin must be positive and finite, got %v", o.Margin)
	}
	return nil
}

// CLV computes discounted customer lifetime value from a purchase model and
// a spend model:
//
//	CLV = Σ_{k=1..H} (E[Y(t_k)] − E[Y(t_{k−1})])·E[M]·margin/(1+d)^(k/12),
//
// where t_k is the end of month k in the purchase model's time unit
// (k·365.25/12 days divided by the unit's days), E[Y] the conditional
// expected purchases, E[M] the conditional expected spend per purchase and d
// the annual discount rate. This is lifetimes' customer_lifetime_value with
// the units made explicit: the horizon is in months whatever the model's
// unit, and the discount rate is annual.
//
// A CLV is immutable and safe for concurrent use.
type CLV struct {
	model PurchaseModel
	// core is the model's shared implementation when it is one of this
	// package's models, so scoring calls it directly (without an interface
	// call that would move stack buffers to the heap).
	core      *betaGeo
	spend     *GammaGamma
	opts      CLVOptions
	steps     []float64 // t_k in model time units
	discounts []float64 // margin/(1+d)^(k/12)
}

// NewCLV returns a CLV calculator.
func NewCLV(model PurchaseModel, spend *GammaGamma, opts CLVOptions) (*CLV, error) {
	if model == nil || spend == nil {
		return nil, errors.New("new clv: purchase and spend models are required")
	}
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("new clv: %w", err)
	}
	monthUnits := DaysPerMonth / model.Unit().Days()
	c := &CLV{model: model, core: coreOf(model), spend: spend, opts: opts,
		steps: make([]float64, opts.HorizonMonths), discounts: make([]float64, opts.HorizonMonths)}
	for k := range c.steps {
		months := float64(k + 1)
		c.steps[k] = months * monthUnits
		c.discounts[k] = opts.Margin * math.Pow(1+opts.AnnualDiscountRate, -months/12)
	}
	return c, nil
}

// Options returns the options the calculator was built with.
func (c *CLV) Options() CLVOptions { return c.opts }

// Value returns the customer's CLV; the spend model uses c.Monetary.
func (c *CLV) Value(s Summary) (float64, error) {
	spend, err := c.spend.ExpectedSpend(s)
	if err != nil {
		return 0, fmt.Errorf("clv: %w", err)
	}
	return c.value(s, spend)
}

// clvChunk is the number of monthly steps evaluated per call of
// ExpectedPurchasesAt, with a stack buffer.
const clvChunk = 32

func (c *CLV) value(s Summary, spend float64) (float64, error) {
	if c.core == nil {
		cum := make([]float64, len(c.steps))
		if err := c.model.ExpectedPurchasesAt(s, c.steps, cum); err != nil {
			return 0, fmt.Errorf("clv: %w", err)
		}
		return c.discount(cum) * spend, nil
	}
	if err := s.Validate(); err != nil {
		return 0, fmt.Errorf("clv: %w", err)
	}
	alive := c.core.pAlive(s)
	var buf [clvChunk]float64
	var total, prev float64
	for lo := 0; lo < len(c.steps); lo += clvChunk {
		hi := min(lo+clvChunk, len(c.steps))
		out := buf[:hi-lo]
		if err := c.core.expectedAt(s, alive, c.steps[lo:hi], out); err != nil {
			return 0, fmt.Errorf("clv: %w", err)
		}
		for i, cum := range out {
			total += (cum - prev) * c.discounts[lo+i]
			prev = cum
		}
	}
	return total * spend, nil
}

// discount returns Σ_k (cum[k] − cum[k−1])·discounts[k] for cumulative
// expected purchases cum at the month ends.
func (c *CLV) discount(cum []float64) float64 {
	var total, prev float64
	for k, v := range cum {
		total += (v - prev) * c.discounts[k]
		prev = v
	}
	return total
}

// coreOf returns the shared implementation of this package's purchase
// models, or nil for other implementations of PurchaseModel.
func coreOf(model PurchaseModel) *betaGeo {
	switch m := model.(type) {
	case *BGNBD:
		return &m.m
	case *MBGNBD:
		return &m.m
	}
	return nil
}

// RetentionMultiplier returns r/(1+d−r), the expected discounted number of
// future periods of a customer retained with probability r per period at
// discount rate d per period (the textbook "expected loyal years" factor,
// with the first cash flow one period ahead).
func RetentionMultiplier(retention, discount float64) (float64, error) {
	if !(retention >= 0 && retention <= 1) {
		return 0, fmt.Errorf("retention must lie in [0, 1], got %v", retention)
	}
	if !(discount >= 0) || math.IsInf(discount, 0) {
		return 0, fmt.Errorf("discount rate must be non-negative and finite, got %v", discount)
	}
	if retention == 1 && discount == 0 {
		return 0, errors.New("retention 1 with no discount gives an infinite value")
	}
	return retention / (1 + discount - retention), nil
}

// SimpleCLV returns the textbook CLV annualRevenue·margin·r/(1+d−r) with
// annual retention r and annual discount rate d.
func SimpleCLV(annualRevenue, margin, retention, discount float64) (float64, error) {
	if !isFinite(annualRevenue) || !isFinite(margin) {
		return 0, errors.New("simple clv: revenue and margin must be finite")
	}
	m, err := RetentionMultiplier(retention, discount)
	if err != nil {
		return 0, fmt.Errorf("simple clv: %w", err)
	}
	return annualRevenue * margin * m, nil
}

// ScorerOptions configures a [Scorer].
type ScorerOptions struct {
	// HorizonsDays are the horizons, in days, of the expected-purchases
	// scores. Default 30, 90 and 365 days.
	HorizonsDays []float64
	// CLV configures the lifetime value. Default [DefaultCLVOptions].
	CLV *CLVOptions
}

// Scorer computes all per-customer scores of a purchase model and a spend
// model in one pass. It is immutable and safe for concurrent use; scoring
// one customer is O(1) and does not allocate.
type Scorer struct {
	model    PurchaseModel
	clv      *CLV
	horizons []float64 // in model time units
	points   []float64 // horizons followed by the CLV month ends
}

// NewScorer returns a scorer.
func NewScorer(model PurchaseModel, spend *GammaGamma, opts ScorerOptions) (*Scorer, error) {
	days := opts.HorizonsDays
	if days == nil {
		days = []float64{30, 90, 365}
	}
	clvOpts := DefaultCLVOptions()
	if opts.CLV != nil {
		clvOpts = *opts.CLV
	}
	clv, err := NewCLV(model, spend, clvOpts)
	if err != nil {
		return nil, fmt.Errorf("new scorer: %w", err)
	}
	s := &Scorer{model: model, clv: clv, horizons: make([]float64, len(days))}
	for i, d := range days {
		if err := validateTime(d); err != nil {
			return nil, fmt.Errorf("new scorer: horizon %d: %w", i, err)
		}
		s.horizons[i] = d / model.Unit().Days()
	}
	s.points = append(append(s.points, s.horizons...), clv.steps...)
	return s, nil
}

// Horizons returns the number of expected-purchase horizons.
func (s *Scorer) Horizons() int { return len(s.horizons) }

// Score holds one customer's scores.
type Score struct {
	// ProbabilityAlive is P(alive | x, t_x, T); churn risk is 1 minus it.
	ProbabilityAlive float64
	// ExpectedPurchases holds E[Y(t)] for each horizon of the scorer; the
	// caller provides it with length Horizons() and may reuse it.
	ExpectedPurchases []float64
	// ExpectedSpend is the Gamma-Gamma conditional expected spend.
	ExpectedSpend float64
	// CLV is the discounted lifetime value over the CLV horizon.
	CLV float64
}

// Score scores one customer into out.
func (s *Scorer) Score(c Summary, out *Score) error {
	if len(out.ExpectedPurchases) != len(s.horizons) {
		return fmt.Errorf("score: ExpectedPurchases has length %d, want %d", len(out.ExpectedPurchases), len(s.horizons))
	}
	alive, err := s.model.ProbabilityAlive(c)
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	spend, err := s.clv.spend.ExpectedSpend(c)
	if err != nil {
		return fmt.Errorf("score: %w", err)
	}
	core := s.clv.core
	if core == nil || len(s.points) > scorePoints {
		if err := s.model.ExpectedPurchasesAt(c, s.horizons, out.ExpectedPurchases); err != nil {
			return fmt.Errorf("score: %w", err)
		}
		value, err := s.clv.value(c, spend)
		if err != nil {
			return fmt.Errorf("score: %w", err)
		}
		out.ProbabilityAlive, out.ExpectedSpend, out.CLV = alive, spend, value
		return nil
	}
	// One pass over the horizons and the CLV month ends together, so that
	// they share the hypergeometric series.
	var buf [scorePoints]float64
	points := buf[:len(s.points)]
	if err := core.expectedAt(c, alive, s.points, points); err != nil {
		return fmt.Errorf("score: %w", err)
	}
	nh := len(s.horizons)
	copy(out.ExpectedPurchases, points[:nh])
	out.ProbabilityAlive, out.ExpectedSpend = alive, spend
	out.CLV = s.clv.discount(points[nh:]) * spend
	return nil
}

// scorePoints is the largest number of horizons plus CLV months scored in
// one pass with a stack buffer; longer CLV horizons take the general path.
const scorePoints = 128

// ScoreTable holds the scores of many customers column by column.
type ScoreTable struct {
	// ProbabilityAlive holds P(alive) per customer.
	ProbabilityAlive []float64
	// ExpectedPurchases has one column per horizon of the scorer.
	ExpectedPurchases [][]float64
	// ExpectedSpend holds the conditional expected spend per customer.
	ExpectedSpend []float64
	// CLV holds the discounted lifetime value per customer.
	CLV []float64
}

// NewScoreTable allocates a table for n customers.
func (s *Scorer) NewScoreTable(n int) *ScoreTable {
	t := &ScoreTable{
		ProbabilityAlive:  make([]float64, n),
		ExpectedPurchases: make([][]float64, len(s.horizons)),
		ExpectedSpend:     make([]float64, n),
		CLV:               make([]float64, n),
	}
	for i := range t.ExpectedPurchases {
		t.ExpectedPurchases[i] = make([]float64, n)
	}
	return t
}

// ScoreAll scores every customer into table (from [Scorer.NewScoreTable]),
// splitting the work across GOMAXPROCS goroutines. Customers with the same
// purchase history (x, t_x, T) share the purchase model's work, which is
// most of it; the scores are the same as [Scorer.Score]'s. It returns the
// error of the first invalid customer, if any.
func (s *Scorer) ScoreAll(customers []Summary, table *ScoreTable) error {
	n := len(customers)
	if len(table.ProbabilityAlive) != n || len(table.ExpectedSpend) != n || len(table.CLV) != n ||
		len(table.ExpectedPurchases) != len(s.horizons) {
		return errors.New("score all: table does not match the customers and horizons")
	}
	for _, col := range table.ExpectedPurchases {
		if len(col) != n {
			return errors.New("score all: table does not match the customers")
		}
	}
	if s.clv.core == nil || len(s.points) > scorePoints {
		return inParallel(n, func(lo, hi int) error {
			score := Score{ExpectedPurchases: make([]float64, len(s.horizons))}
			for i := lo; i < hi; i++ {
				if err := s.Score(customers[i], &score); err != nil {
					return fmt.Errorf("customer %d: %w", i, err)
				}
				table.ProbabilityAlive[i] = score.ProbabilityAlive
				table.ExpectedSpend[i] = score.ExpectedSpend
				table.CLV[i] = score.CLV
				for h, v := range score.ExpectedPurchases {
					table.ExpectedPurchases[h][i] = v
				}
			}
			return nil
		})
	}

	// The distinct purchase histories, and each customer's.
	history := make([]int32, n)
	first := make([]int32, 0, n/2) // a customer with each history
	index := make(map[[3]float64]int32, n/2)
	for i, c := range customers {
		key := [3]float64{c.Frequency, c.Recency, c.T}
		h, ok := index[key]
		if !ok {
			h = int32(len(first))
			index[key] = h
			first = append(first, int32(i))
		}
		history[i] = h
	}
	nh := len(s.horizons)
	alive := make([]float64, len(first))
	expected := make([]float64, len(first)*nh)
	discounted := make([]float64, len(first)) // discounted expected purchases over the CLV horizon
	err := inParallel(len(first), func(lo, hi int) error {
		var buf [scorePoints]float64
		points := buf[:len(s.points)]
		for h := lo; h < hi; h++ {
			c := customers[first[h]]
			a, err := s.model.ProbabilityAlive(c)
			if err != nil {
				return fmt.Errorf("customer %d: score: %w", first[h], err)
			}
			if err := s.clv.core.expectedAt(c, a, s.points, points); err != nil {
				return fmt.Errorf("customer %d: score: %w", first[h], err)
			}
			alive[h] = a
			copy(expected[h*nh:(h+1)*nh], points[:nh])
			discounted[h] = s.clv.discount(points[nh:])
		}
		return nil
	})
	if err != nil {
		return err
	}
	return inParallel(n, func(lo, hi int) error {
		for i := lo; i < hi; i++ {
			spend, err := s.clv.spend.ExpectedSpend(customers[i])
			if err != nil {
				return fmt.Errorf("customer %d: score: %w", i, err)
			}
			h := int(history[i])
			table.ProbabilityAlive[i] = alive[h]
			table.ExpectedSpend[i] = spend
			table.CLV[i] = discounted[h] * spend
			for k := range nh {
				table.ExpectedPurchases[k][i] = expected[h*nh+k]
			}
		}
		return nil
	})
}

// inParallel calls work on consecutive ranges of [0, n) on up to GOMAXPROCS
// goroutines and returns the error of the lowest failing range.
func inParallel(n int, work func(lo, hi int) error) error {
	workers := max(1, min(runtime.GOMAXPROCS(0), n/1024))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := range workers {
		lo := min(w*chunk, n)
		hi := min(lo+chunk, n)
		wg.Go(func() { errs[w] = work(lo, hi) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
