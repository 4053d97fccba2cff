package btyd

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// FitOptions configures the maximum-likelihood fits. The zero value gives
// the defaults.
type FitOptions struct {
	// Penalty is the coefficient λ of an optional L2 penalty λ·Σθ² added to
	// the mean negative log-likelihood, where θ are the parameters in the
	// rescaled units the optimiser works in (time divided by the largest T,
	// spend divided by the mean spend), like lifetimes' penalizer_coef.
	// Default 0: plain maximum likelihood.
	Penalty float64
	// MaxIterations bounds the major iterations of each optimiser run.
	// Default 1000.
	MaxIterations int
	// GradientTolerance stops the optimiser once the largest absolute
	// component of the gradient of the mean negative log-likelihood with
	// respect to the log-parameters is below it. Default 1e-8.
	GradientTolerance float64
	// AcceptTolerance is the largest such gradient component accepted as
	// convergence when the optimiser stops for another reason (a stalled
	// line search near the optimum). Default 1e-5.
	AcceptTolerance float64
	// Workers is the number of goroutines that evaluate the likelihood.
	// Default runtime.GOMAXPROCS(0).
	Workers int
}

func (o FitOptions) withDefaults() (FitOptions, error) {
	if o.Penalty < 0 || !isFinite(o.Penalty) {
		return o, fmt.Errorf("penalty must be non-negative and finite, got %v", o.Penalty)
	}
	if o.MaxIterations < 0 || o.GradientTolerance < 0 || o.AcceptTolerance < 0 || o.Workers < 0 {
		return o, errors.New("fit options must not be negative")
	}
	if o.MaxIterations == 0 {
		o.MaxIterations = 1000
	}
	if o.GradientTolerance == 0 {
		o.GradientTolerance = 1e-8
	}
	if o.AcceptTolerance == 0 {
		o.AcceptTolerance = 1e-5
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o, nil
}

// Diagnostics describes how a fit went.
type Diagnostics struct {
	// Model names the fitted model.
	Model string
	// Method names the optimiser(s) run, e.g. "BFGS" or
	// "BFGS, NelderMead, BFGS" when the fallback was needed.
	Method string
	// Status is the termination status of the last optimiser run.
	Status string
	// Iterations, FuncEvaluations and GradEvaluations are summed over all
	// optimiser runs.
	Iterations, FuncEvaluations, GradEvaluations int
	// GradientNorm is the largest absolute component of the gradient of the
	// objective (mean negative log-likelihood plus penalty) with respect to
	// the log-parameters at the estimate.
	GradientNorm float64
	// LogLikelihood is the total log-likelihood at the estimate, in the
	// data's own units (without the penalty).
	LogLikelihood float64
	// Customers is the total count of the customers fitted.
	Customers float64
	// Rows is the number of distinct rows the likelihood was evaluated on.
	Rows int
	// Excluded is the number of customers left out of the fit (Gamma-Gamma:
	// those without repeat purchases or with non-positive mean spend).
	Excluded int
	// Duration is the wall time of the optimisation.
	Duration time.Duration
}

// FitError reports a fit that did not converge or produced non-finite or
// invalid parameters. It carries the diagnostics of the failed fit.
type FitError struct {
	// Model names the model whose fit failed.
	Model string
	// Reason says what went wrong.
	Reason string
	// Diagnostics describe the failed fit.
	Diagnostics Diagnostics
	// Err is the optimiser's error, if any.
	Err error
}

// Error describes the failure.
func (e *FitError) Error() string {
	d := e.Diagnostics
	msg := fmt.Sprintf("fit %s: %s (method %s, status %s, %d iterations, gradient norm %.3g)",
		e.Model, e.Reason, d.Method, d.Status, d.Iterations, d.GradientNorm)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the optimiser's error.
func (e *FitError) Unwrap() error { return e.Err }

// objectiveFunc evaluates an objective at log-parameters u and, when grad is
// not nil, writes the gradient with respect to u into it.
type objectiveFunc func(u, grad []float64) float64

// penalizedObjective turns a total log-likelihood over n parameters into the function a fit
// minimises: the mean negative log-likelihood over customers plus penalty·Σθ², in the
// log-parameters u = log θ. logLikelihood fills its gradient with respect to θ.
func penalizedObjective(n int, customers, penalty float64, logLikelihood func(theta, grad []float64) float64) objectiveFunc {
	theta := make([]float64, n)
	g := make([]float64, n)
	return func(u, grad []float64) float64 {
		for i := range theta {
			theta[i] = math.Exp(u[i])
		}
		f := -logLikelihood(theta, g) / customers
		for i, t := range theta {
			f += penalty * t * t
			if grad != nil {
				grad[i] = t * (-g[i]/customers + 2*penalty*t)
			}
		}
		return f
	}
}

// cachedObjective adapts an objective that computes value and gradient
// together to gonum's separate Func and Grad calls.
type cachedObjective struct {
	f     objectiveFunc
	x     []float64
	value float64
	grad  []float64
	valid bool
}

func (c *cachedObjective) eval(x []float64) {
	if c.valid && slices.Equal(c.x, x) {
		return
	}
	c.x = append(c.x[:0], x...)
	if len(c.grad) != len(x) {
		c.grad = make([]float64, len(x))
	}
	c.value = c.f(x, c.grad)
	if !isFinite(c.value) {
		// Treat non-finite values as +∞ so line searches step back.
		c.value = math.Inf(1)
		for i := range c.grad {
			c.grad[i] = 0
		}
	}
	c.valid = true
}

func (c *cachedObjective) problem() optimize.Problem {
	return optimize.Problem{
		Func: func(x []float64) float64 { c.eval(x); return c.value },
		Grad: func(grad, x []float64) { c.eval(x); copy(grad, c.grad) },
	}
}

// minimizeLogParams minimises an objective over log-parameters starting at
// u0: BFGS with the analytic gradient first; if that does not reach the
// acceptance tolerance, Nelder-Mead from the best point found followed by a
// BFGS polish. It returns the minimiser and diagnostics, or a *FitError.
func minimizeLogParams(model string, f objectiveFunc, u0 []float64, opts FitOptions) ([]float64, Diagnostics, error) {
	start := time.Now()
	obj := &cachedObjective{f: f}
	diag := Diagnostics{Model: model}
	var methods []string
	best := slices.Clone(u0)
	bestF := math.Inf(1)
	var lastErr error

	run := func(name string, method optimize.Method, from []float64, gradient bool) {
		methods = append(methods, name)
		p := obj.problem()
		if !gradient {
			p.Grad = nil
		}
		settings := &optimize.Settings{
			GradientThreshold: opts.GradientTolerance,
			MajorIterations:   opts.MaxIterations,
			FuncEvaluations:   50 * opts.MaxIterations,
			Converger:         &optimize.FunctionConverge{Absolute: 1e-15, Relative: 1e-15, Iterations: 20},
		}
		res, err := optimize.Minimize(p, from, settings, method)
		if res == nil {
			lastErr = err
			return
		}
		diag.Iterations += res.Stats.MajorIterations
		diag.FuncEvaluations += res.Stats.FuncEvaluations
		diag.GradEvaluations += res.Stats.GradEvaluations
		diag.Status = res.Status.String()
		lastErr = err
		if res.F < bestF && isFinite(res.F) {
			bestF = res.F
			copy(best, res.X)
		}
	}
	gradNorm := func(u []float64) float64 {
		g := make([]float64, len(u))
		v := f(u, g)
		if !isFinite(v) {
			return math.Inf(1)
		}
		var n float64
		for _, x := range g {
			n = math.Max(n, math.Abs(x))
		}
		if math.IsNaN(n) {
			return math.Inf(1)
		}
		return n
	}

	run("BFGS", &optimize.BFGS{}, u0, true)
	diag.GradientNorm = gradNorm(best)
	if !(diag.GradientNorm <= opts.AcceptTolerance) {
		run("NelderMead", &optimize.NelderMead{}, best, false)
		run("BFGS", &optimize.BFGS{}, best, true)
		diag.GradientNorm = gradNorm(best)
	}
	diag.Method = joinMethods(methods)
	diag.Duration = time.Since(start)
	if !(diag.GradientNorm <= opts.AcceptTolerance) {
		return nil, diag, &FitError{Model: model, Reason: "did not converge", Diagnostics: diag, Err: lastErr}
	}
	for _, v := range best {
		if !isFinite(v) || math.Abs(v) > 700 {
			return nil, diag, &FitError{Model: model, Reason: "parameters are not finite", Diagnostics: diag}
		}
	}
	return best, diag, nil
}

func joinMethods(methods []string) string {
	out := ""
	for i, m := range methods {
		if i > 0 {
			out += ", "
		}
		out += m
	}
	return out
}

// logParamCovariance returns the covariance matrix of the maximum-likelihood
// estimate in log-parameter space, the inverse of the observed information
// −∇²ℓ(u), where the Hessian is obtained by central differences of the
// analytic gradient of the total log-likelihood gradLL.
func logParamCovariance(u []float64, gradLL func(u, grad []float64)) (*mat.SymDense, error) {
	n := len(u)
	hess := mat.NewDense(n, n, nil)
	plus := make([]float64, n)
	minus := make([]float64, n)
	x := slices.Clone(u)
	for j := range n {
		h := 1e-5 * math.Max(1, math.Abs(u[j]))
		x[j] = u[j] + h
		gradLL(x, plus)
		x[j] = u[j] - h
		gradLL(x, minus)
		x[j] = u[j]
		for i := range n {
			hess.Set(i, j, -(plus[i]-minus[i])/(2*h))
		}
	}
	info := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			info.SetSym(i, j, (hess.At(i, j)+hess.At(j, i))/2)
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(info) {
		return nil, errors.New("observed information is not positive definite")
	}
	cov := mat.NewSymDense(n, nil)
	if err := chol.InverseTo(cov); err != nil {
		return nil, fmt.Errorf("invert observed information: %w", err)
	}
	return cov, nil
}
