package btyd

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// Numerical settings of the hypergeometric evaluations.
const (
	// seriesTolerance is the relative truncation error the series stop at
	// (bounded by the geometric tail estimate, so the error is smaller).
	seriesTolerance = 1e-14
	// maxSeriesTerms bounds every series; reaching it is reported as an error.
	maxSeriesTerms = 1 << 20
	// directMaxZ is the largest argument at which E[Y] is summed directly;
	// above it the 1−z transformation (Abramowitz & Stegun 15.3.6) is used,
	// whose series then run in 1−z < 0.5.
	directMaxZ = 0.5
	// generalDirectMaxZ is the same limit for hyp2f1, which favours accuracy
	// over speed: the transformation can lose digits to cancellation when
	// 1 − (c−a−b) is small, so it is kept for z close to 1.
	generalDirectMaxZ = 0.9
	// degenerateGap is the distance from a pole below which a transformation
	// is considered ill-conditioned (it would lose about −log10(gap) digits).
	degenerateGap = 1e-3
	// maxCephesGap bounds |c − a − b| for mathext.Hypergeo's integer case, whose
	// work grows with it.
	maxCephesGap = 1e4
)

// numericalError is an error constant of the numerical routines.
type numericalError string

// Error returns the message.
func (e numericalError) Error() string { return string(e) }

// errSeries reports a hypergeometric series that did not converge.
const errSeries numericalError = "hypergeometric series did not converge"

// errPrecision reports a result lost to cancellation, which happens only for
// extreme parameters (e.g. r far above a + b).
const errPrecision numericalError = "hypergeometric evaluation lost precision"

// hyp2f1 returns the Gauss hypergeometric function ₂F₁(a, b; c; z) for real
// parameters and real z < 1 (z = 1 when c − a − b > 0).
//
// gonum's mathext.Hypergeo follows Cephes for |z| < 1 and needs care near
// z → 1 and for z ≤ −1; this function instead maps every argument into
// [0, 0.9] before summing: z < 0 by Pfaff's transformation
// ₂F₁(a,b;c;z) = (1−z)^(−a) ₂F₁(a, c−b; c; z/(z−1)); 0.9 < z < 1 by the
// 1−z transformation (A&S 15.3.6). When c − a − b is within
// [degenerateGap] of an integer, that transformation is ill-conditioned: the
// series is summed directly when all its terms are positive, and Cephes' own
// treatment of the integer case (mathext.Hypergeo) is used otherwise.
func hyp2f1(a, b, c, z float64) (float64, error) {
	if !isFinite(a) || !isFinite(b) || !isFinite(c) || math.IsNaN(z) {
		return 0, errors.New("hyp2f1: non-finite argument")
	}
	if c <= 0 && c == math.Trunc(c) {
		return 0, fmt.Errorf("hyp2f1: c = %v is a non-positive integer", c)
	}
	switch {
	case z == 0:
		return 1, nil
	case z < 0:
		w := z / (z - 1)
		f, err := hyp2f1(a, c-b, c, w)
		return math.Pow(1-z, -a) * f, err
	case z <= generalDirectMaxZ:
		return hypSeries(a, b, c, z)
	case z < 1:
		d := c - a - b
		if math.Abs(d-math.Round(d)) < degenerateGap {
			if a > 0 && b > 0 && c > 0 {
				// Every term of the series is positive: summing it directly loses nothing to
				// cancellation, and it ends (converged or not) within maxSeriesTerms, whereas
				// Cephes' integer case iterates about c−a−b times and stalls when that is huge.
				if v, err := hypSeries(a, b, c, z); err == nil {
					return v, nil
				}
			}
			if math.Abs(d) > maxCephesGap {
				return 0, fmt.Errorf("hyp2f1(%v, %v; %v; %v): %w", a, b, c, z, errSeries)
			}
			v := mathext.Hypergeo(a, b, c, z)
			if !isFinite(v) {
				return 0, fmt.Errorf("hyp2f1(%v, %v; %v; %v): %w", a, b, c, z, errSeries)
			}
			return v, nil
		}
		g1, g2, ok := oneMinusZCoefficients(a, b, c)
		if !ok {
			return 0, fmt.Errorf("hyp2f1(%v, %v; %v; %v): transformation coefficients overflow", a, b, c, z)
		}
		return oneMinusZ(a, b, c, g1, g2, 1-z, math.Log1p(-z))
	case z == 1 && c-a-b > 0:
		return lgammaSigned(c).mul(lgammaSigned(c - a - b)).div(lgammaSigned(c - a)).div(lgammaSigned(c - b)).exp(), nil
	}
	return 0, fmt.Errorf("hyp2f1: argument %v outside the domain z < 1", z)
}

// hypSeries sums the hypergeometric series of ₂F₁(a, b; c; z) for |z| < 1.
func hypSeries(a, b, c, z float64) (float64, error) {
	sum, term := 1.0, 1.0
	az := math.Abs(z)
	// Beyond lower every factor of the term ratio is positive and the ratio
	// tends monotonically to z.
	lower := max(0, -a, -b, -c) + 2
	for n := 0; n < maxSeriesTerms; n++ {
		fn := float64(n)
		ratio := (a + fn) * (b + fn) / ((c + fn) * (fn + 1)) * z
		term *= ratio
		sum += term
		if term == 0 {
			return sum, nil
		}
		// Once the ratio has settled below 1 (it tends to z), the tail is
		// bounded by |term|·ρ/(1−ρ) with ρ = max(|ratio|, |z|).
		rho := max(math.Abs(ratio), az)
		if rho < 1 && fn > lower &&
			math.Abs(term)*rho/(1-rho) <= seriesTolerance*math.Abs(sum) {
			return sum, nil
		}
		if !isFinite(sum) {
			break
		}
	}
	return 0, fmt.Errorf("hyp2f1(%v, %v; %v; %v): %w", a, b, c, z, errSeries)
}

// oneMinusZCoefficients returns the coefficients of the 1−z transformation
// ₂F₁(a,b;c;z) = g1·₂F₁(a,b;a+b−c+1;1−z) + g2·(1−z)^(c−a−b)·₂F₁(c−a,c−b;c−a−b+1;1−z),
// g1 = Γ(c)Γ(c−a−b)/(Γ(c−a)Γ(c−b)), g2 = Γ(c)Γ(a+b−c)/(Γ(a)Γ(b)).
// ok is false when a coefficient is not finite.
func oneMinusZCoefficients(a, b, c float64) (g1, g2 float64, ok bool) {
	d := c - a - b
	gc := lgammaSigned(c)
	g1 = gc.mul(lgammaSigned(d)).div(lgammaSigned(c - a)).div(lgammaSigned(c - b)).exp()
	g2 = gc.mul(lgammaSigned(-d)).div(lgammaSigned(a)).div(lgammaSigned(b)).exp()
	return g1, g2, isFinite(g1) && isFinite(g2)
}

// oneMinusZ evaluates the 1−z transformation at w = 1−z (logW = ln w). It
// returns errPrecision when the two terms cancel so much (more than
// transformMaxCancellation) that the result would lose digits.
func oneMinusZ(a, b, c, g1, g2, w, logW float64) (float64, error) {
	d := c - a - b
	f1, err := hypSeries(a, b, 1-d, w)
	if err != nil {
		return 0, err
	}
	v := g1 * f1
	size := math.Abs(v)
	if g2 != 0 {
		f2, err := hypSeries(c-a, c-b, 1+d, w)
		if err != nil {
			return 0, err
		}
		t2 := g2 * math.Exp(d*logW) * f2
		v += t2
		size += math.Abs(t2)
	}
	if !isFinite(v) || size > transformMaxCancellation*math.Abs(v) {
		return 0, errPrecision
	}
	return v, nil
}

// transformMaxCancellation bounds the ratio of the magnitude of the two
// terms of the 1−z transformation to their sum (about the digits lost).
const transformMaxCancellation = 1e4

// signedLog is a real number stored as sign·exp(log); sign 0 is zero and
// an infinite log with sign ≠ 0 is infinity (used for 1/Γ at poles).
type signedLog struct {
	log  float64
	sign float64
}

// lgammaSigned returns Γ(x) as a signedLog. At the poles of Γ (non-positive
// integers) it returns +∞ magnitude, so that dividing by it yields zero.
func lgammaSigned(x float64) signedLog {
	if x <= 0 && x == math.Trunc(x) {
		return signedLog{log: math.Inf(1), sign: 1}
	}
	lg, s := math.Lgamma(x)
	return signedLog{log: lg, sign: float64(s)}
}

func (p signedLog) mul(q signedLog) signedLog {
	return signedLog{log: p.log + q.log, sign: p.sign * q.sign}
}

func (p signedLog) div(q signedLog) signedLog {
	if math.IsInf(q.log, 1) {
		if math.IsInf(p.log, 1) {
			return signedLog{log: math.NaN(), sign: 1}
		}
		return signedLog{sign: 0}
	}
	return signedLog{log: p.log - q.log, sign: p.sign * q.sign}
}

func (p signedLog) exp() float64 {
	if p.sign == 0 {
		return 0
	}
	return p.sign * math.Exp(p.log)
}

// exprel returns (eʸ − 1)/y, with the limit 1 at y = 0.
func exprel(y float64) float64 {
	if math.Abs(y) < 1e-8 {
		return 1 + y/2
	}
	return math.Expm1(y) / y
}
