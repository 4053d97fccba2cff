package btyd

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"gonum.org/v1/gonum/mathext"
)

// GammaGammaParams are the parameters of the Gamma-Gamma spend model: the
// value of each transaction is Gamma(P, ν) distributed (shape P, rate ν)
// and ν is Gamma(Q, Gamma) distributed across customers.
type GammaGammaParams struct {
	P, Q, Gamma float64
}

// Validate reports an error unless every parameter is positive and finite
// and Q > 1 (for Q ≤ 1 the mean spend is infinite).
func (p GammaGammaParams) Validate() error {
	if !(p.P > 0) || !(p.Q > 0) || !(p.Gamma > 0) || math.IsInf(p.P, 0) || math.IsInf(p.Q, 0) || math.IsInf(p.Gamma, 0) {
		return fmt.Errorf("parameters must be positive and finite, got p=%v q=%v gamma=%v", p.P, p.Q, p.Gamma)
	}
	if !(p.Q > 1) {
		return fmt.Errorf("q must exceed 1 for a finite mean spend, got %v", p.Q)
	}
	return nil
}

// GammaGamma is the Gamma-Gamma model of monetary value (Fader & Hardie
// 2013; Fader, Hardie & Lee 2005, "RFM and CLV") with fixed parameters. It
// assumes that spend is independent of the purchase process and that every
// repeat occasion has positive value.
//
// A GammaGamma is immutable and safe for concurrent use.
type GammaGamma struct {
	params GammaGammaParams
}

// NewGammaGamma returns a Gamma-Gamma model; it requires q > 1.
func NewGammaGamma(p GammaGammaParams) (*GammaGamma, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("new gamma-gamma: %w", err)
	}
	return &GammaGamma{params: p}, nil
}

// Params returns the model parameters.
func (g *GammaGamma) Params() GammaGammaParams { return g.params }

// PopulationMean returns the mean spend per transaction across the
// population, p·γ/(q−1).
func (g *GammaGamma) PopulationMean() float64 {
	return g.params.P * g.params.Gamma / (g.params.Q - 1)
}

// ExpectedSpend returns the conditional expected spend per transaction
// E[M | x, zbar] = p(γ + x·zbar)/(p·x + q − 1), a weighted mean of the
// population mean and the customer's own mean repeat spend zbar
// (c.Monetary). For x = 0 it is the population mean. A negative or
// non-finite zbar is an error.
func (g *GammaGamma) ExpectedSpend(c Summary) (float64, error) {
	x, zbar := c.Frequency, c.Monetary
	if !(x >= 0) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("expected spend: frequency must be non-negative and finite, got %v", x)
	}
	if !(zbar >= 0) || math.IsInf(zbar, 0) {
		return 0, fmt.Errorf("expected spend: mean spend must be non-negative and finite, got %v", zbar)
	}
	p := &g.params
	if x == 0 {
		return g.PopulationMean(), nil
	}
	return p.P * (p.Gamma + x*zbar) / (p.P*x + p.Q - 1), nil
}

// LogLikelihood returns the log-likelihood of the mean spend zbar of a
// customer's x > 0 repeat transactions (FH13 eq. 3, as in lifetimes).
func (g *GammaGamma) LogLikelihood(c Summary) (float64, error) {
	x, zbar := c.Frequency, c.Monetary
	if !(x > 0) || !(zbar > 0) || math.IsInf(x, 0) || math.IsInf(zbar, 0) {
		return 0, errors.New("gamma-gamma log-likelihood: needs frequency > 0 and mean spend > 0")
	}
	p := &g.params
	px := p.P * x
	l1, _ := math.Lgamma(px + p.Q)
	l2, _ := math.Lgamma(px)
	l3, _ := math.Lgamma(p.Q)
	return l1 - l2 - l3 + p.Q*math.Log(p.Gamma) + (px-1)*math.Log(zbar) + px*math.Log(x) - (px+p.Q)*math.Log(p.Gamma+x*zbar), nil
}

// spendRow is a distinct (x, zbar) pair with its count; zbar is rescaled.
type spendRow struct {
	x, zbar, count float64
}

// gammaGammaProblem is the Gamma-Gamma likelihood prepared for repeated
// evaluation: the gamma-function terms are summed per distinct x, the
// terms in ln zbar are constants, and each row costs one log and one
// division.
type gammaGammaProblem struct {
	scale                     float64
	customers                 float64
	xs, xCounts               []float64
	sumLogZ, sumXLogZ, sumXLX float64
	rows                      []spendRow
	penalty                   float64
	workers                   int
	partials                  []spendPartial
}

type spendPartial struct {
	sumLog, sumXLog, sumInv, sumXInv float64
	_                                [4]float64 // separate cache lines
}

func newGammaGammaProblem(customers []Summary, penalty float64, workers int) (*gammaGammaProblem, int, error) {
	p := &gammaGammaProblem{penalty: penalty}
	excluded := 0
	var total float64
	rows := make([]spendRow, 0, len(customers)/2)
	for i, c := range customers {
		if !isFinite(c.Frequency) || !isFinite(c.Monetary) || c.Frequency < 0 {
			return nil, 0, fmt.Errorf("customer %d: frequency and mean spend must be finite, frequency non-negative", i)
		}
		if c.Frequency == 0 || c.Monetary <= 0 {
			excluded++
			continue
		}
		rows = append(rows, spendRow{x: c.Frequency, zbar: c.Monetary, count: 1})
		total += c.Monetary
	}
	if len(rows) == 0 {
		return nil, excluded, errors.New("no customer with repeat purchases and positive mean spend")
	}
	p.customers = float64(len(rows))
	p.scale = total / p.customers
	// Distinct (x, zbar) rows with counts, grouped by x.
	slices.SortFunc(rows, func(a, b spendRow) int {
		if c := cmp.Compare(a.x, b.x); c != 0 {
			return c
		}
		return cmp.Compare(a.zbar, b.zbar)
	})
	for _, r := range rows {
		if n := len(p.rows); n > 0 && p.rows[n-1].x == r.x && p.rows[n-1].zbar == r.zbar {
			p.rows[n-1].count++
			continue
		}
		p.rows = append(p.rows, r)
	}
	for i := range p.rows {
		r := &p.rows[i]
		r.zbar /= p.scale
		lz := math.Log(r.zbar)
		p.sumLogZ += r.count * lz
		p.sumXLogZ += r.count * r.x * lz
		p.sumXLX += r.count * r.x * math.Log(r.x)
		if j := len(p.xs) - 1; j >= 0 && p.xs[j] == r.x {
			p.xCounts[j] += r.count
		} else {
			p.xs = append(p.xs, r.x)
			p.xCounts = append(p.xCounts, r.count)
		}
	}
	p.workers = 1
	if len(p.rows) >= 16384 {
		p.workers = max(1, min(workers, len(p.rows)/4096+1))
	}
	p.partials = make([]spendPartial, p.workers)
	return p, excluded, nil
}

// logLikelihood returns the total log-likelihood at rescaled (p, q, γ) and
// its gradient.
func (g *gammaGammaProblem) logLikelihood(theta, grad []float64) float64 {
	p, q, gamma := theta[0], theta[1], theta[2]
	n := g.customers
	lq, _ := math.Lgamma(q)
	ll := n*(q*math.Log(gamma)-lq) + p*g.sumXLogZ - g.sumLogZ + p*g.sumXLX
	gp := g.sumXLogZ + g.sumXLX
	gq := n * (math.Log(gamma) - mathext.Digamma(q))
	for i, x := range g.xs {
		c := g.xCounts[i]
		px := p * x
		l1, _ := math.Lgamma(px + q)
		l2, _ := math.Lgamma(px)
		ll += c * (l1 - l2)
		d1 := mathext.Digamma(px + q)
		gp += c * x * (d1 - mathext.Digamma(px))
		gq += c * d1
	}
	g.rowTerms(gamma)
	var sumLog, sumXLog, sumInv, sumXInv float64
	for _, s := range g.partials {
		sumLog += s.sumLog
		sumXLog += s.sumXLog
		sumInv += s.sumInv
		sumXInv += s.sumXInv
	}
	// Σ count·(p·x + q)·ln(γ + x·zbar) and its derivatives.
	ll -= p*sumXLog + q*sumLog
	gp -= sumXLog
	gq -= sumLog
	gg := n*q/gamma - (p*sumXInv + q*sumInv)
	if grad != nil {
		grad[0], grad[1], grad[2] = gp, gq, gg
	}
	return ll
}

func (g *gammaGammaProblem) rowTerms(gamma float64) {
	run := func(rows []spendRow) spendPartial {
		var s spendPartial
		for _, r := range rows {
			v := gamma + r.x*r.zbar
			l := r.count * math.Log(v)
			inv := r.count / v
			s.sumLog += l
			s.sumXLog += r.x * l
			s.sumInv += inv
			s.sumXInv += r.x * inv
		}
		return s
	}
	if g.workers == 1 {
		g.partials[0] = run(g.rows)
		return
	}
	var wg sync.WaitGroup
	chunk := (len(g.rows) + g.workers - 1) / g.workers
	for w := range g.workers {
		lo := min(w*chunk, len(g.rows))
		hi := min(lo+chunk, len(g.rows))
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.partials[w] = run(g.rows[lo:hi])
		}()
	}
	wg.Wait()
}

// objective returns the function minimised: the mean negative log-likelihood of the repeat
// customers plus the penalty, over log-parameters.
func (g *gammaGammaProblem) objective() objectiveFunc {
	return penalizedObjective(3, g.customers, g.penalty, g.logLikelihood)
}

// FitGammaGamma fits the Gamma-Gamma model by maximum likelihood on the
// customers with at least one repeat purchase and a positive mean repeat
// spend (c.Monetary); the others are excluded and counted in
// Diagnostics.Excluded. Spend is rescaled by its mean during the fit. A fit
// with q ≤ 1 (infinite mean spend) is returned as a *FitError.
func FitGammaGamma(customers []Summary, opts FitOptions) (*GammaGamma, Diagnostics, error) {
	const name = "gamma-gamma"
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, Diagnostics{Model: name}, fmt.Errorf("fit %s: %w", name, err)
	}
	prob, excluded, err := newGammaGammaProblem(customers, opts.Penalty, opts.Workers)
	if err != nil {
		return nil, Diagnostics{Model: name, Excluded: excluded}, fmt.Errorf("fit %s: %w", name, err)
	}
	u, diag, err := minimizeLogParams(name, prob.objective(), []float64{0, 0, 0}, opts)
	diag.Customers, diag.Rows, diag.Excluded = prob.customers, len(prob.rows), excluded
	if err != nil {
		var fe *FitError
		if errors.As(err, &fe) {
			fe.Diagnostics = diag
		}
		return nil, diag, err
	}
	theta := []float64{math.Exp(u[0]), math.Exp(u[1]), math.Exp(u[2])}
	// Rescaling spend by s changes the density of zbar by 1/s per customer.
	diag.LogLikelihood = prob.logLikelihood(theta, nil) - prob.customers*math.Log(prob.scale)
	params := GammaGammaParams{P: theta[0], Q: theta[1], Gamma: theta[2] * prob.scale}
	m, err := NewGammaGamma(params)
	if err != nil {
		return nil, diag, &FitError{Model: name, Reason: "estimate is invalid", Diagnostics: diag, Err: err}
	}
	return m, diag, nil
}

// StandardErrors returns asymptotic standard errors of the model's
// parameters on the customers (those a fit would use), from the inverse
// observed information (the Hessian is taken by central differences of the
// analytic gradient).
func (g *GammaGamma) StandardErrors(customers []Summary) (GammaGammaParams, error) {
	prob, _, err := newGammaGammaProblem(customers, 0, 1)
	if err != nil {
		return GammaGammaParams{}, fmt.Errorf("gamma-gamma standard errors: %w", err)
	}
	p := g.params
	u := []float64{math.Log(p.P), math.Log(p.Q), math.Log(p.Gamma / prob.scale)}
	theta := make([]float64, 3)
	grad3 := make([]float64, 3)
	cov, err := logParamCovariance(u, func(x, grad []float64) {
		for i := range theta {
			theta[i] = math.Exp(x[i])
		}
		prob.logLikelihood(theta, grad3)
		for i := range grad {
			grad[i] = theta[i] * grad3[i]
		}
	})
	if err != nil {
		return GammaGammaParams{}, fmt.Errorf("gamma-gamma standard errors: %w", err)
	}
	return GammaGammaParams{
		P:     p.P * math.Sqrt(cov.At(0, 0)),
		Q:     p.Q * math.Sqrt(cov.At(1, 1)),
		Gamma: p.Gamma * math.Sqrt(cov.At(2, 2)),
	}, nil
}
