package btyd

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"

	"github.com/centric-crm/centric/pkg/rfm"
)

// BetaGeoParams are the parameters of the BG/NBD and MBG/NBD models: the
// purchase rate λ is Gamma(R, Alpha) distributed across customers (shape R,
// rate Alpha, so Alpha is in the model's time unit) and the dropout
// probability p is Beta(A, B) distributed.
type BetaGeoParams struct {
	R, Alpha, A, B float64
}

// Validate reports an error unless every parameter is positive and finite.
func (p BetaGeoParams) Validate() error {
	for _, v := range [...]struct {
		name  string
		value float64
	}{{"r", p.R}, {"alpha", p.Alpha}, {"a", p.A}, {"b", p.B}} {
		if !(v.value > 0) || math.IsInf(v.value, 0) {
			return fmt.Errorf("parameter %s must be positive and finite, got %v", v.name, v.value)
		}
	}
	return nil
}

// PurchaseModel is a fitted model of the purchase process of a customer
// base, implemented by [*BGNBD] and [*MBGNBD] so that callers can switch
// models. Times are in the model's [rfm.TimeUnit]. Methods return an error
// for an invalid summary or time, never NaN.
type PurchaseModel interface {
	// Name identifies the model, e.g. "bg/nbd".
	Name() string
	// Params returns the population parameters.
	Params() BetaGeoParams
	// Unit returns the time unit of the data the model was fitted on.
	Unit() rfm.TimeUnit
	// ProbabilityAlive returns P(alive | x, t_x, T).
	ProbabilityAlive(c Summary) (float64, error)
	// ExpectedPurchases returns E[Y(t) | x, t_x, T], the expected number of
	// purchases of the customer in the next t time units.
	ExpectedPurchases(t float64, c Summary) (float64, error)
	// ExpectedPurchasesAt writes E[Y(t) | x, t_x, T] for every t in
	// horizons to out (which must be as long as horizons), sharing the
	// per-customer work across horizons.
	ExpectedPurchasesAt(c Summary, horizons, out []float64) error
	// LogLikelihood returns the log-likelihood of one customer's history.
	LogLikelihood(c Summary) (float64, error)
}

// transformCacheSize is the number of frequencies x = 0, 1, … for which the
// coefficients of the 1−z transformation are precomputed. Larger x use the
// direct series, which converges fast for them at any argument.
const transformCacheSize = 16

// transformCoef caches, for one frequency x, the coefficients of the 1−z
// transformation of ₂F₁(A, B; C; z) used by expectedGivenAlive.
type transformCoef struct {
	g1, g2 float64
	ok     bool
}

// betaGeo is the mathematics shared by BG/NBD and MBG/NBD. The two models
// differ only in whether a customer can drop out right after the first
// purchase (MBG/NBD), which amounts to shifting b by one in the dropout
// terms and applying them at x = 0 too.
type betaGeo struct {
	params   BetaGeoParams
	unit     rfm.TimeUnit
	modified bool
	// b0 is the second parameter of p's Beta distribution given that the
	// customer is alive after 0 repeat purchases: b (BG/NBD), b+1 (MBG/NBD).
	b0 float64
	// c0 = a + b0 − 1.
	c0 float64
	// logA = ln a.
	logA float64
	// llConst = ln Γ(a+b) − ln Γ(b) − ln Γ(r) + r ln α.
	llConst float64
	coef    [transformCacheSize]transformCoef
}

func newBetaGeo(p BetaGeoParams, unit rfm.TimeUnit, modified bool) (betaGeo, error) {
	if err := p.Validate(); err != nil {
		return betaGeo{}, err
	}
	if err := unit.Validate(); err != nil {
		return betaGeo{}, err
	}
	m := betaGeo{params: p, unit: unit, modified: modified, b0: p.B, logA: math.Log(p.A)}
	if modified {
		m.b0 = p.B + 1
	}
	m.c0 = p.A + m.b0 - 1
	lab, _ := math.Lgamma(p.A + p.B)
	lb, _ := math.Lgamma(p.B)
	lr, _ := math.Lgamma(p.R)
	m.llConst = lab - lb - lr + p.R*math.Log(p.Alpha)
	for x := range m.coef {
		A, B, C := m.seriesParams(p.A, float64(x))
		if m.degenerate(p.A, float64(x)) {
			continue
		}
		g1, g2, ok := oneMinusZCoefficients(A, B, C)
		m.coef[x] = transformCoef{g1: g1, g2: g2, ok: ok}
	}
	return m, nil
}

// seriesParams returns the parameters of ₂F₁(A, B; C; z) in
// E[Y(t) | alive] = C·(1 − (1−z)^B ₂F₁(A, B; C; z))/B (Euler's transformation
// of the hypergeometric term of FHL05 eq. 10), for dropout parameter a.
func (m *betaGeo) seriesParams(a, x float64) (A, B, C float64) {
	c0 := a + m.b0 - 1
	return c0 - m.params.R, a - 1, c0 + x
}

// poleDistance returns how close dropout parameter a and frequency x bring
// the 1−z transformation to its singular cases: B = a−1 = 0, C = 0, or
// C − A − B = x + r + 1 − a an integer.
func (m *betaGeo) poleDistance(a, x float64) float64 {
	A, B, C := m.seriesParams(a, x)
	d := C - A - B
	return min(math.Abs(B), math.Abs(C), math.Abs(d-math.Round(d)))
}

// degenerate reports whether the 1−z transformation is ill-conditioned for
// dropout parameter a and frequency x.
func (m *betaGeo) degenerate(a, x float64) bool {
	return m.poleDistance(a, x) < degenerateGap
}

// validateTime checks a forecast horizon.
func validateTime(t float64) error {
	if !(t >= 0) || math.IsInf(t, 0) {
		return fmt.Errorf("time must be non-negative and finite, got %v", t)
	}
	return nil
}

// probabilityAlive returns P(alive | x, t_x, T) = 1/(1 + δ·a/(b0+x−1)·((α+T)/(α+t_x))^(r+x)),
// computed as a logistic function of the log-odds so that large x and T give
// exactly 0 without overflow. δ is 0 for BG/NBD at x = 0 and 1 otherwise.
func (m *betaGeo) probabilityAlive(c Summary) (float64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	return m.pAlive(c), nil
}

func (m *betaGeo) pAlive(c Summary) float64 {
	x := c.Frequency
	if x == 0 && !m.modified {
		return 1
	}
	p := &m.params
	logOdds := m.logA - math.Log(m.b0+x-1) + (p.R+x)*math.Log1p((c.T-c.Recency)/(p.Alpha+c.Recency))
	return 1 / (1 + math.Exp(logOdds))
}

// sharedPoints is the number of horizons whose direct series are summed
// together, sharing the coefficients (one division per term for all of
// them).
const sharedPoints = 32

// expectedPurchasesAt is PurchaseModel.ExpectedPurchasesAt.
func (m *betaGeo) expectedPurchasesAt(c Summary, horizons, out []float64) error {
	if len(out) != len(horizons) {
		return fmt.Errorf("expected purchases: %d horizons but room for %d results", len(horizons), len(out))
	}
	if err := c.Validate(); err != nil {
		return err
	}
	for _, t := range horizons {
		if err := validateTime(t); err != nil {
			return err
		}
	}
	return m.expectedAt(c, m.pAlive(c), horizons, out)
}

// expectedAt computes E[Y(t)] = P(alive)·E[Y(t) | alive] for valid inputs.
// Horizons are processed in chunks of sharedPoints; within a chunk the
// points summed by the direct series share one series, and the points that
// use the cached 1−z transformation share its two series.
func (m *betaGeo) expectedAt(c Summary, alive float64, horizons, out []float64) error {
	aT := m.params.Alpha + c.T
	logAT := math.Log(aT)
	x := c.Frequency
	xi := int(x)
	var direct, transform pointSet
	for lo := 0; lo < len(horizons); lo += sharedPoints {
		hi := min(lo+sharedPoints, len(horizons))
		direct.n, transform.n = 0, 0
		for i := lo; i < hi; i++ {
			t := horizons[i]
			out[i] = 0
			if alive == 0 || t == 0 {
				continue
			}
			k := t / aT
			z := k / (1 + k)
			switch {
			case m.directSeries(x, z):
				direct.add(i, z, 0)
			case xi < transformCacheSize && m.coef[xi].ok && !(m.params.A > largeDropoutShape && x+m.params.R < m.params.A-1):
				// ln(1−z) = ln(α+T) − ln(α+T+t).
				transform.add(i, 1/(1+k), logAT-math.Log(aT+t))
			default:
				q, err := m.expectedGivenAlive(x, k)
				if err != nil {
					return err
				}
				out[i] = alive * q
			}
		}
		var vals [sharedPoints]float64
		var precise uint64
		for _, set := range []*pointSet{&direct, &transform} {
			if set.n == 0 {
				continue
			}
			if set == &direct {
				precise = m.expectedSeriesShared(m.params.A, x, set.args[:set.n], vals[:set.n])
			} else {
				precise = m.expectedTransformShared(x, set.args[:set.n], set.logW[:set.n], vals[:set.n])
			}
			for j := range set.n {
				q := vals[j]
				if precise&(1<<j) == 0 {
					// Ill-conditioned here: evaluate this point alone.
					var err error
					if q, err = m.expectedGivenAlive(x, horizons[set.index[j]]/aT); err != nil {
						return err
					}
				}
				out[set.index[j]] = alive * q
			}
		}
	}
	return nil
}

// pointSet collects the horizons of a chunk that share a series: their
// index, argument (z or w = 1−z) and ln(1−z).
type pointSet struct {
	n     int
	index [sharedPoints]int
	args  [sharedPoints]float64
	logW  [sharedPoints]float64
}

func (p *pointSet) add(i int, arg, logW float64) {
	p.index[p.n], p.args[p.n], p.logW[p.n] = i, arg, logW
	p.n++
}

// expectedTransformShared evaluates E[Y | alive] with the cached 1−z
// transformation at several w = 1−z at once, sharing the coefficients of
// both series. It returns a bit mask of the points whose value is
// trustworthy (no excessive cancellation).
func (m *betaGeo) expectedTransformShared(x float64, ws, logWs, out []float64) (precise uint64) {
	coef := &m.coef[int(x)]
	A, B, C := m.seriesParams(m.params.A, x)
	d := C - A - B
	a1, b1, c1 := A, B, 1-d     // ₂F₁(A, B; 1−D; w)
	a2, b2, c2 := C-A, C-B, 1+d // ₂F₁(C−A, C−B; 1+D; w)
	var pows, sum1, sum2 [sharedPoints]float64
	top := 0
	for i, w := range ws {
		pows[i], sum1[i], sum2[i] = 1, 1, 1
		if w > ws[top] {
			top = i
		}
	}
	wmax := ws[top]
	lower := max(0, -a1, -b1, -c1, -a2, -b2, -c2) + 2
	t1, t2 := 1.0, 1.0
	done1, done2 := false, false
	for n := 0; n < maxSeriesTerms && !(done1 && done2); n++ {
		fn := float64(n)
		r1 := (a1 + fn) * (b1 + fn) / ((c1 + fn) * (fn + 1))
		r2 := (a2 + fn) * (b2 + fn) / ((c2 + fn) * (fn + 1))
		t1 *= r1
		t2 *= r2
		for i, w := range ws {
			pows[i] *= w
			sum1[i] += t1 * pows[i]
			sum2[i] += t2 * pows[i]
		}
		if fn > lower {
			rho1, rho2 := max(math.Abs(r1)*wmax, wmax), max(math.Abs(r2)*wmax, wmax)
			done1 = done1 || (rho1 < 1 && math.Abs(t1*pows[top])*rho1/(1-rho1) <= seriesTolerance*math.Abs(sum1[top]))
			done2 = done2 || (rho2 < 1 && math.Abs(t2*pows[top])*rho2/(1-rho2) <= seriesTolerance*math.Abs(sum2[top]))
		}
	}
	if !(done1 && done2) {
		return 0
	}
	for i := range ws {
		v1 := coef.g1 * sum1[i]
		v2 := coef.g2 * math.Exp(d*logWs[i]) * sum2[i]
		f := v1 + v2
		if !(f > 0) || math.Abs(v1)+math.Abs(v2) > transformMaxCancellation*f {
			continue
		}
		// E = C·(1 − (1−z)^B·F)/B.
		v := C * -math.Expm1(B*logWs[i]+math.Log(f)) / B
		out[i] = v
		if isFinite(v) && v >= 0 {
			precise |= 1 << i
		}
	}
	return precise
}

// directSeries reports whether E[Y | alive] at argument z is summed with the
// direct Euler series (see expectedGivenAlive).
func (m *betaGeo) directSeries(x, z float64) bool {
	a := m.params.A
	if a > largeDropoutShape && x+m.params.R < a-1 && z*(a-1) > 20 {
		return false
	}
	return z <= directMaxZ || x >= transformCacheSize
}

// expectedTolerance is the relative truncation error at which the shared
// E[Y] series stop: far below anything a score needs, and cheaper than
// seriesTolerance.
const expectedTolerance = 1e-12

// expectedSeriesShared sums the direct series of expectedSeries for several
// arguments at once, without any transcendental function: with
// L = ln(1−z), both −L·exprel(BL) = (1 − (1−z)^B)/B = Σ_{n≥1} q_n zⁿ
// (q_1 = 1, q_{n+1} = q_n(n−B)/(n+1), the binomial series divided by −B)
// and (1−z)^B = 1 − B·Σ q_n zⁿ are power series in z, so
//
//	E = C·Σ q_n zⁿ − (1 − B·Σ q_n zⁿ)·Σ u_n zⁿ.
//
// The coefficients are shared by all points (two divisions per term for all
// of them) and points leave the loop as they converge, the smallest z
// first. It returns a bit mask of the points whose value is trustworthy
// (see expectedSeries); the others, and all points if the series does not
// converge, must be evaluated alone.
func (m *betaGeo) expectedSeriesShared(a, x float64, zs, out []float64) (precise uint64) {
	A, B, C := m.seriesParams(a, x)
	n := len(zs)
	// Sort the points by increasing z (insertion sort of at most
	// sharedPoints values); the active ones are [first, n).
	var order [sharedPoints]int
	var z, pows, sumQ, sumU, largest [sharedPoints]float64
	for i := range n {
		j := i
		for ; j > 0 && z[j-1] > zs[i]; j-- {
			z[j], order[j] = z[j-1], order[j-1]
		}
		z[j], order[j] = zs[i], i
	}
	for j := range n {
		pows[j] = z[j]
		sumQ[j] = z[j]
		sumU[j] = A * z[j]
		largest[j] = math.Abs(sumU[j])
	}
	lower := max(0, -A, -C, B) + 2
	q, u := 1.0, A
	first := 0
	trackLargest := A < 0 // partial sums can exceed the result only if terms change sign
	for k := 1; k < maxSeriesTerms; k++ {
		fk := float64(k)
		inv := 1 / (fk + 1)
		q *= (fk - B) * inv
		u *= (A + fk) * (a + fk - 1) * inv / (C + fk)
		zz, pp, sq, su := z[first:n], pows[first:n], sumQ[first:n], sumU[first:n]
		pp = pp[:len(zz)]
		sq = sq[:len(zz)]
		su = su[:len(zz)]
		for j, zj := range zz {
			p := pp[j] * zj
			pp[j] = p
			sq[j] += q * p
			su[j] += u * p
		}
		if trackLargest {
			for j := first; j < n; j++ {
				largest[j] = max(largest[j], math.Abs(sumU[j]))
			}
		}
		if fk <= lower || k%4 != 0 {
			continue
		}
		// Beyond lower every later term ratio of both series is at most
		// z·max(1, (a+k−1)/(k+1)). Retire the converged points, smallest z
		// first.
		growth := max(1, (a+fk-1)*inv)
		for first < n {
			rho := z[first] * growth
			tail := (math.Abs(u) + C*math.Abs(q)) * pows[first] * rho / (1 - rho)
			if !(rho < 1) || tail > expectedTolerance*max(C*math.Abs(sumQ[first]), math.Abs(sumU[first])) {
				break
			}
			i := order[first]
			v := C*sumQ[first] - (1-B*sumQ[first])*sumU[first]
			out[i] = v
			if isFinite(v) && v >= 0 && !((1-B*sumQ[first])*largest[first]*1e-16*math.Sqrt(fk) > 1e-9*v) {
				precise |= 1 << i
			}
			first++
		}
		if first == n {
			return precise
		}
	}
	return precise
}

// expectedGivenAlive returns the expected number of purchases in the next t
// time units of a customer known to be alive with x repeat purchases, as a
// function of k = t/(α+T):
//
//	E = C·(1 − (1−z)^(a−1)·₂F₁(A, a−1; C; z))/(a−1),  z = k/(1+k),
//
// with A = c0 − r and C = c0 + x. This is FHL05 eq. 10 (and its MBG/NBD
// analogue) divided by P(alive), after Euler's transformation
// ₂F₁(r+x, b0+x; C; z) = (1−z)^(a−1−r−x)·₂F₁(A, a−1; C; z), which turns the
// divergent factor into a convergent one. For z ≤ 0.5 (and for large x) the
// series is summed with the factor a−1 divided out analytically, so a = 1 is
// no special case; for z > 0.5 the 1−z transformation is used with cached
// coefficients, and where that is ill-conditioned (a ≈ 1, C ≈ 0 or r − a
// near an integer) the value is Richardson-extrapolated from evaluations at
// a ± h, a ± 2h, where it is well-conditioned (relative error about 1e-10).
func (m *betaGeo) expectedGivenAlive(x, k float64) (float64, error) {
	z := k / (1 + k)
	logW := -math.Log1p(k) // ln(1 − z)
	v, err := m.expectedEuler(x, z, logW)
	if errors.Is(err, errPrecision) && math.Abs(m.params.A-1) > degenerateGap {
		// Extreme parameters (r ≫ a + b) make the Euler form cancel; the
		// original series has positive terms.
		return m.expectedOriginal(x, z, logW)
	}
	return v, err
}

// expectedEuler evaluates E[Y | alive] from the Euler-transformed form,
// choosing between the direct series, the 1−z transformation and
// Richardson extrapolation as described at expectedGivenAlive.
func (m *betaGeo) expectedEuler(x, z, logW float64) (float64, error) {
	a := m.params.A
	if a > largeDropoutShape && x+m.params.R < a-1 && z*(a-1) > 20 {
		return m.expectedOriginal(x, z, logW)
	}
	if z <= directMaxZ || x >= transformCacheSize {
		return m.expectedSeries(a, x, z, logW)
	}
	if c := &m.coef[int(x)]; c.ok {
		if v, err := m.expectedTransform(a, x, c.g1, c.g2, logW); err == nil {
			return v, nil
		}
		// Ill-conditioned here: the direct series is exact, only slower.
		return m.expectedSeries(a, x, z, logW)
	}
	return m.expectedRichardson(x, z, logW)
}

// largeDropoutShape is the dropout shape a above which the Euler-transformed
// series, whose terms grow like (1−z)^−(a−1) before they converge, is
// replaced by the original one when that converges faster.
const largeDropoutShape = 8

// expectedOriginal evaluates E[Y | alive] = C·(1 − (1−z)^(r+x)·₂F₁(r+x, b0+x; C; z))/(a−1)
// with the series of FHL05 eq. 10 as written. It is used for large a when
// r + x < a − 1: its terms then decay like n^(r+x−a) even at z → 1, and
// a − 1 is far from 0, so nothing cancels.
func (m *betaGeo) expectedOriginal(x, z, logW float64) (float64, error) {
	p := &m.params
	_, B, C := m.seriesParams(p.A, x)
	f, err := hypSeries(p.R+x, m.b0+x, C, z)
	if err != nil {
		return 0, fmt.Errorf("expected purchases (x=%v): %w", x, err)
	}
	logF := math.Log(f)
	logH := (p.R+x)*logW + logF
	v := C * -math.Expm1(logH) / B
	// 1 − H loses digits when ln H is a small difference of large terms.
	lost := 1e-16 * (math.Abs((p.R+x)*logW) + math.Abs(logF)) / math.Max(math.Abs(logH), 1e-300)
	if !isFinite(v) || v < 0 || lost > 1e-9 {
		return 0, fmt.Errorf("expected purchases (x=%v): %w", x, errSeries)
	}
	return v, nil
}

// expectedSeries sums E[Y | alive] directly:
//
//	E = −C·L·exprel((a−1)L) − (1−z)^(a−1)·Σ_{n≥1} u_n,  L = ln(1−z),
//
// with u_1 = A·z and u_{n+1} = u_n·(A+n)(a+n−1)z/((C+n)(n+1)); C·(a−1) has
// been divided out of the series, so the sum is regular at a = 1 and C = 0.
func (m *betaGeo) expectedSeries(a, x, z, logW float64) (float64, error) {
	A, B, C := m.seriesParams(a, x)
	y := B * logW
	head := -C * logW * exprel(y)
	u := A * z
	sum := u
	largest := math.Abs(u)
	lower := max(0, -A, -C) + 2
	for n := 1; n < maxSeriesTerms; n++ {
		fn := float64(n)
		u *= (A + fn) * (a + fn - 1) * z / ((C + fn) * (fn + 1))
		sum += u
		largest = max(largest, math.Abs(sum))
		if fn > lower {
			// Beyond lower every later ratio is at most z·max(1, (a+n−1)/(n+1)).
			rho := z * max(1, (a+fn-1)/(fn+1))
			if rho < 1 && math.Abs(u)*rho/(1-rho) <= seriesTolerance*max(math.Abs(head), math.Abs(sum)) {
				v := head - math.Exp(y)*sum
				// Rounding in the partial sums is amplified by cancellation
				// when they grew much larger than the result (A ≪ 0, i.e.
				// r ≫ a + b); report it instead of returning a wrong value.
				if !isFinite(v) || v < 0 || math.Exp(y)*largest*1e-16*math.Sqrt(fn) > 1e-9*v {
					return 0, fmt.Errorf("expected purchases (x=%v, z=%v): %w", x, z, errPrecision)
				}
				return v, nil
			}
		}
	}
	return 0, fmt.Errorf("expected purchases (x=%v, z=%v): %w", x, z, errSeries)
}

// expectedTransform evaluates E[Y | alive] with the 1−z transformation of
// ₂F₁(A, a−1; C; z), given its coefficients.
func (m *betaGeo) expectedTransform(a, x, g1, g2, logW float64) (float64, error) {
	A, B, C := m.seriesParams(a, x)
	f, err := oneMinusZ(A, B, C, g1, g2, math.Exp(logW), logW)
	if err != nil {
		return 0, err
	}
	// E = C·(1 − (1−z)^B·F)/B.
	v := C * -math.Expm1(B*logW+math.Log(f)) / B
	if f <= 0 {
		v = C * (1 - math.Exp(B*logW)*f) / B
	}
	if !isFinite(v) || v < 0 {
		return 0, fmt.Errorf("expected purchases (x=%v): %w", x, errPrecision)
	}
	return v, nil
}

// Richardson extrapolation settings: the first step, and the distance to a
// pole that the perturbed evaluations keep (the transformation then loses
// about 4 digits, and the h⁴ extrapolation error is of the same order).
const (
	richardsonStep   = 2e-4
	richardsonMargin = 1e-4
)

// expectedRichardson extrapolates E[Y | alive] at the model's a from
// evaluations at a ± h and a ± 2h, where the 1−z transformation is
// well-conditioned; E is analytic in a, so the symmetric means cancel the
// odd terms and the extrapolation the h² term, leaving O(h⁴).
func (m *betaGeo) expectedRichardson(x, z, logW float64) (float64, error) {
	a := m.params.A
	h := richardsonStep
	for ; h < a/4; h *= 1.25 {
		if min(m.poleDistance(a+h, x), m.poleDistance(a-h, x),
			m.poleDistance(a+2*h, x), m.poleDistance(a-2*h, x)) >= richardsonMargin {
			break
		}
	}
	if h >= a/4 {
		// a is too small to perturb; the direct series converges for any z < 1.
		return m.expectedSeries(a, x, z, logW)
	}
	var v [4]float64
	for i, ap := range [4]float64{a + h, a - h, a + 2*h, a - 2*h} {
		A, B, C := m.seriesParams(ap, x)
		g1, g2, ok := oneMinusZCoefficients(A, B, C)
		var err error
		if ok {
			v[i], err = m.expectedTransform(ap, x, g1, g2, logW)
		}
		if !ok || err != nil {
			v[i], err = m.expectedSeries(ap, x, z, logW)
		}
		if err != nil {
			return 0, err
		}
	}
	s1 := (v[0] + v[1]) / 2
	s2 := (v[2] + v[3]) / 2
	extrapolated := (4*s1 - s2) / 3
	// The four values differ by O(h); if they do not, the transformation
	// was not trustworthy at the perturbed points: sum directly instead.
	spread := math.Max(math.Abs(v[2]-v[3]), math.Max(math.Abs(v[0]-v[1]), math.Abs(s1-s2)))
	if !(extrapolated > 0) || spread > 0.01*extrapolated {
		return m.expectedSeries(a, x, z, logW)
	}
	return extrapolated, nil
}

// logLikelihood returns the log-likelihood of one customer (FHL05 eq. 6, and
// its MBG/NBD analogue), in log space with the dropout term added by a
// log-sum-exp, so that ((α+T)/(α+t_x))^(r+x) never overflows.
func (m *betaGeo) logLikelihood(c Summary) (float64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	p := &m.params
	x := c.Frequency
	lrx, _ := math.Lgamma(p.R + x)
	lbx, _ := math.Lgamma(m.b0 + x)
	labx, _ := math.Lgamma(p.A + m.b0 + x)
	ll := m.llConst + lrx + lbx - labx - (p.R+x)*math.Log(p.Alpha+c.T)
	if x > 0 || m.modified {
		z := m.logA - math.Log(m.b0+x-1) + (p.R+x)*math.Log1p((c.T-c.Recency)/(p.Alpha+c.Recency))
		ll += softplus(z)
	}
	return ll, nil
}

// softplus returns ln(1 + eᶻ) without overflow.
func softplus(z float64) float64 {
	if z > 0 {
		return z + math.Log1p(math.Exp(-z))
	}
	return math.Log1p(math.Exp(z))
}

// probabilityOfPurchases returns P(X(t) = n) for a customer just acquired
// (FHL05 eq. 8; the MBG/NBD analogue of Batislam et al. 2007):
//
//	P = B(a, b0+n)/B(a,b)·NB(n; r, α/(α+t)) + δ·B(a+1, b0+n−1)/B(a,b)·P(NB ≥ n),
//
// where NB is the negative binomial count of the Poisson-gamma process and
// δ = 0 for BG/NBD at n = 0. The tail P(NB ≥ n) is the regularised
// incomplete beta function I_{t/(α+t)}(n, r), which avoids the cancellation
// of 1 − Σ_{j<n}.
func (m *betaGeo) probabilityOfPurchases(n int, t float64) (float64, error) {
	if n < 0 {
		return 0, fmt.Errorf("number of purchases must be non-negative, got %d", n)
	}
	if err := validateTime(t); err != nil {
		return 0, err
	}
	p := &m.params
	fn := float64(n)
	lbab := mathext.Lbeta(p.A, p.B)
	lr, _ := math.Lgamma(p.R)
	lrn, _ := math.Lgamma(p.R + fn)
	ln1, _ := math.Lgamma(fn + 1)
	logP0 := p.R * (math.Log(p.Alpha) - math.Log(p.Alpha+t)) // ln(α/(α+t))
	var logQ float64                                         // ln(t/(α+t))
	if t == 0 {
		logQ = math.Inf(-1)
	} else {
		logQ = math.Log(t) - math.Log(p.Alpha+t)
	}
	nbLog := lrn - lr - ln1 + logP0
	if n > 0 {
		nbLog += fn * logQ
	}
	prob := math.Exp(mathext.Lbeta(p.A, m.b0+fn) - lbab + nbLog)
	if n > 0 || m.modified {
		tail := 1.0
		if n > 0 {
			tail = 0
			if t > 0 {
				tail = mathext.RegIncBeta(fn, p.R, t/(p.Alpha+t))
			}
		}
		prob += math.Exp(mathext.Lbeta(p.A+1, m.b0+fn-1)-lbab) * tail
	}
	if !isFinite(prob) {
		return 0, errors.New("probability of purchases is not finite")
	}
	return prob, nil
}
