package btyd

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"gonum.org/v1/gonum/mathext"
)

// betaGeoRow is a distinct history that needs the dropout term of the
// likelihood, with indices into the tables of distinct frequencies and times.
type betaGeoRow struct {
	x, t, recency int32
	count         float64
}

// betaGeoProblem is the BG/NBD or MBG/NBD likelihood prepared for fast
// repeated evaluation. Terms that depend only on x are summed per distinct
// x, terms that depend only on T per distinct time, so that a likelihood
// evaluation costs one exp and one log1p per row with a dropout term plus
// one log per distinct time value.
type betaGeoProblem struct {
	modified bool
	// scale is the time rescaling (the largest T); times are divided by it.
	scale float64
	// customers is the total count; repeatTotal is Σ count·x.
	customers, repeatTotal float64
	xs, xCounts            []float64
	// times are the distinct rescaled values of T and t_x; timeCounts and
	// timeRepeats are Σ count and Σ count·x over the rows with T at that time.
	times, timeCounts, timeRepeats []float64
	rows                           []betaGeoRow
	penalty                        float64
	workers                        int

	// Scratch space of an evaluation.
	logTime, invTime []float64
	cz, rx, invB     []float64
	partials         []betaGeoPartial
}

// betaGeoPartial accumulates one worker's share of the row terms.
type betaGeoPartial struct {
	ll, gr, galpha, gw, gb float64
	_                      [3]float64 // keep workers' partials on separate cache lines
}

func newBetaGeoProblem(d Data, modified bool, penalty float64, workers int) (*betaGeoProblem, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	p := &betaGeoProblem{modified: modified, penalty: penalty, workers: workers}
	for _, r := range d.Rows {
		p.scale = math.Max(p.scale, r.T)
	}
	if !(p.scale > 0) {
		return nil, fmt.Errorf("every T is 0: there is no observation time to fit on")
	}
	xIndex := make(map[float64]int32)
	tIndex := make(map[float64]int32)
	timeOf := func(v float64) int32 {
		v /= p.scale
		if i, ok := tIndex[v]; ok {
			return i
		}
		i := int32(len(p.times))
		tIndex[v] = i
		p.times = append(p.times, v)
		p.timeCounts = append(p.timeCounts, 0)
		p.timeRepeats = append(p.timeRepeats, 0)
		return i
	}
	for i, r := range d.Rows {
		c := d.Counts[i]
		xi, ok := xIndex[r.Frequency]
		if !ok {
			xi = int32(len(p.xs))
			xIndex[r.Frequency] = xi
			p.xs = append(p.xs, r.Frequency)
			p.xCounts = append(p.xCounts, 0)
		}
		p.xCounts[xi] += c
		p.customers += c
		p.repeatTotal += c * r.Frequency
		ti := timeOf(r.T)
		p.timeCounts[ti] += c
		p.timeRepeats[ti] += c * r.Frequency
		if r.Frequency > 0 || modified {
			p.rows = append(p.rows, betaGeoRow{x: xi, t: ti, recency: timeOf(r.Recency), count: c})
		}
	}
	p.logTime = make([]float64, len(p.times))
	p.invTime = make([]float64, len(p.times))
	p.cz = make([]float64, len(p.xs))
	p.rx = make([]float64, len(p.xs))
	p.invB = make([]float64, len(p.xs))
	if len(p.rows) < 16384 {
		p.workers = 1
	}
	p.workers = max(1, min(p.workers, len(p.rows)/4096+1))
	p.partials = make([]betaGeoPartial, p.workers)
	return p, nil
}

// logLikelihood returns the total log-likelihood at rescaled parameters
// θ = (r, α/scale, a, b) and, when grad is not nil, its gradient with
// respect to θ.
func (p *betaGeoProblem) logLikelihood(theta, grad []float64) float64 {
	r, alpha, a, b := theta[0], theta[1], theta[2], theta[3]
	b0 := b
	if p.modified {
		b0 = b + 1
	}
	n := p.customers
	for k, t := range p.times {
		p.logTime[k] = math.Log(alpha + t)
		p.invTime[k] = 1 / (alpha + t)
	}
	lab, _ := math.Lgamma(a + b)
	lb, _ := math.Lgamma(b)
	lr, _ := math.Lgamma(r)
	logAlpha, logA := math.Log(alpha), math.Log(a)
	ll := n * (lab - lb - lr + r*logAlpha)
	dab := mathext.Digamma(a + b)
	gr := n * (logAlpha - mathext.Digamma(r))
	galpha := n * r / alpha
	ga := n * dab
	gb := n * (dab - mathext.Digamma(b))
	for i, x := range p.xs {
		c := p.xCounts[i]
		lrx, _ := math.Lgamma(r + x)
		lbx, _ := math.Lgamma(b0 + x)
		labx, _ := math.Lgamma(a + b0 + x)
		ll += c * (lrx + lbx - labx)
		dabx := mathext.Digamma(a + b0 + x)
		gr += c * mathext.Digamma(r+x)
		ga -= c * dabx
		gb += c * (mathext.Digamma(b0+x) - dabx)
		if x > 0 || p.modified {
			p.cz[i] = logA - math.Log(b0+x-1)
			p.invB[i] = 1 / (b0 + x - 1)
		}
		p.rx[i] = r + x
	}
	for k, lt := range p.logTime {
		cr := p.timeCounts[k]
		if cr == 0 {
			continue
		}
		w := r*cr + p.timeRepeats[k]
		ll -= w * lt
		gr -= cr * lt
		galpha -= w * p.invTime[k]
	}
	p.rowTerms()
	for _, part := range p.partials {
		ll += part.ll
		gr += part.gr
		galpha += part.galpha
		ga += part.gw / a
		gb -= part.gb
	}
	if grad != nil {
		grad[0], grad[1], grad[2], grad[3] = gr, galpha, ga, gb
	}
	return ll
}

// rowTerms adds the dropout terms ln(1 + e^z) of the rows, split across
// workers.
func (p *betaGeoProblem) rowTerms() {
	if p.workers == 1 {
		p.partials[0] = p.rowRange(p.rows)
		return
	}
	var wg sync.WaitGroup
	chunk := (len(p.rows) + p.workers - 1) / p.workers
	for w := range p.workers {
		lo := min(w*chunk, len(p.rows))
		hi := min(lo+chunk, len(p.rows))
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.partials[w] = p.rowRange(p.rows[lo:hi])
		}()
	}
	wg.Wait()
}

func (p *betaGeoProblem) rowRange(rows []betaGeoRow) betaGeoPartial {
	var s betaGeoPartial
	logTime, invTime, cz, rx, invB := p.logTime, p.invTime, p.cz, p.rx, p.invB
	// softplus(z) = max(z, 0) + ln(1 + e^−|z|). The logs of rows with count
	// 1 are taken together as the log of a product of up to 32 factors in
	// [1, 2], which cannot overflow; this saves most of the log calls.
	product, factors := 1.0, 0
	for _, row := range rows {
		d := logTime[row.t] - logTime[row.recency]
		rxi := rx[row.x]
		z := cz[row.x] + rxi*d
		var e, w float64
		if z > 0 {
			e = math.Exp(-z)
			w = 1 / (1 + e)
			s.ll += row.count * z
		} else {
			e = math.Exp(z)
			w = e / (1 + e)
		}
		if row.count == 1 {
			product *= 1 + e
			factors++
			if factors == 32 {
				s.ll += math.Log(product)
				product, factors = 1, 0
			}
		} else {
			s.ll += row.count * math.Log1p(e)
		}
		cw := row.count * w
		s.gr += cw * d
		s.galpha += cw * rxi * (invTime[row.t] - invTime[row.recency])
		s.gw += cw
		s.gb += cw * invB[row.x]
	}
	s.ll += math.Log(product)
	return s
}

// objective returns the function minimised: the mean negative
// log-likelihood plus the penalty, over log-parameters.
func (p *betaGeoProblem) objective() objectiveFunc {
	return penalizedObjective(4, p.customers, p.penalty, p.logLikelihood)
}

// params converts log-parameters in rescaled time to model parameters.
func (p *betaGeoProblem) params(u []float64) BetaGeoParams {
	return BetaGeoParams{R: math.Exp(u[0]), Alpha: math.Exp(u[1]) * p.scale, A: math.Exp(u[2]), B: math.Exp(u[3])}
}

// logParams converts model parameters to log-parameters in rescaled time.
func (p *betaGeoProblem) logParams(q BetaGeoParams) []float64 {
	return []float64{math.Log(q.R), math.Log(q.Alpha / p.scale), math.Log(q.A), math.Log(q.B)}
}

// originalLogLikelihood returns the total log-likelihood in the data's
// own time unit: rescaling time by s multiplies each of the x purchase-time
// densities by s, so ℓ = ℓ_rescaled − Σ count·x·ln s.
func (p *betaGeoProblem) originalLogLikelihood(u []float64) float64 {
	theta := make([]float64, 4)
	for i := range theta {
		theta[i] = math.Exp(u[i])
	}
	return p.logLikelihood(theta, nil) - p.repeatTotal*math.Log(p.scale)
}

// fitBetaGeo fits BG/NBD (modified false) or MBG/NBD (modified true).
func fitBetaGeo(name string, d Data, modified bool, opts FitOptions) (BetaGeoParams, Diagnostics, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return BetaGeoParams{}, Diagnostics{Model: name}, fmt.Errorf("fit %s: %w", name, err)
	}
	prob, err := newBetaGeoProblem(d, modified, opts.Penalty, opts.Workers)
	if err != nil {
		return BetaGeoParams{}, Diagnostics{Model: name}, fmt.Errorf("fit %s: %w", name, err)
	}
	u, diag, err := minimizeLogParams(name, prob.objective(), []float64{0, 0, 0, 0}, opts)
	diag.Customers = prob.customers
	diag.Rows = len(d.Rows)
	if err != nil {
		var fe *FitError
		if errors.As(err, &fe) {
			fe.Diagnostics = diag
		}
		return BetaGeoParams{}, diag, err
	}
	diag.LogLikelihood = prob.originalLogLikelihood(u)
	params := prob.params(u)
	if err := params.Validate(); err != nil || !isFinite(diag.LogLikelihood) {
		return BetaGeoParams{}, diag, &FitError{Model: name, Reason: "estimate is not finite", Diagnostics: diag, Err: err}
	}
	return params, diag, nil
}

// betaGeoStandardErrors returns asymptotic standard errors of the parameters
// at params from the observed information on data (numerical Hessian of the
// analytic gradient, delta method from log-parameters).
func betaGeoStandardErrors(params BetaGeoParams, d Data, modified bool) (BetaGeoParams, error) {
	prob, err := newBetaGeoProblem(d, modified, 0, 1)
	if err != nil {
		return BetaGeoParams{}, err
	}
	u := prob.logParams(params)
	theta := make([]float64, 4)
	g := make([]float64, 4)
	cov, err := logParamCovariance(u, func(x, grad []float64) {
		for i := range theta {
			theta[i] = math.Exp(x[i])
		}
		prob.logLikelihood(theta, g)
		for i := range grad {
			grad[i] = theta[i] * g[i]
		}
	})
	if err != nil {
		return BetaGeoParams{}, err
	}
	se := func(i int, v float64) float64 { return v * math.Sqrt(cov.At(i, i)) }
	return BetaGeoParams{R: se(0, params.R), Alpha: se(1, params.Alpha), A: se(2, params.A), B: se(3, params.B)}, nil
}

// FitBGNBD fits a BG/NBD model to d by maximum likelihood.
func FitBGNBD(d Data, opts FitOptions) (*BGNBD, Diagnostics, error) {
	params, diag, err := fitBetaGeo("bg/nbd", d, false, opts)
	if err != nil {
		return nil, diag, err
	}
	m, err := NewBGNBD(params, d.Unit)
	return m, diag, err
}

// FitMBGNBD fits an MBG/NBD model to d by maximum likelihood.
func FitMBGNBD(d Data, opts FitOptions) (*MBGNBD, Diagnostics, error) {
	params, diag, err := fitBetaGeo("mbg/nbd", d, true, opts)
	if err != nil {
		return nil, diag, err
	}
	m, err := NewMBGNBD(params, d.Unit)
	return m, diag, err
}

// StandardErrors returns asymptotic standard errors of the model's
// parameters on d, from the inverse observed information (the Hessian is
// taken by central differences of the analytic gradient).
func (b *BGNBD) StandardErrors(d Data) (BetaGeoParams, error) {
	se, err := betaGeoStandardErrors(b.m.params, d, false)
	if err != nil {
		return BetaGeoParams{}, fmt.Errorf("bg/nbd standard errors: %w", err)
	}
	return se, nil
}

// StandardErrors returns asymptotic standard errors of the model's
// parameters on d (see [BGNBD.StandardErrors]).
func (b *MBGNBD) StandardErrors(d Data) (BetaGeoParams, error) {
	se, err := betaGeoStandardErrors(b.m.params, d, true)
	if err != nil {
		return BetaGeoParams{}, fmt.Errorf("mbg/nbd standard errors: %w", err)
	}
	return se, nil
}
