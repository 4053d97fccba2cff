package btyd

import (
	"fmt"

	"github.com/centric-crm/centric/pkg/rfm"
)

// BGNBD is a BG/NBD model with fixed parameters (Fader, Hardie & Lee 2005):
// while alive a customer buys as a Poisson process with rate λ, and after
// each repeat purchase drops out with probability p; λ ~ Gamma(r, α) and
// p ~ Beta(a, b) across customers. A customer with no repeat purchase is
// alive with probability exactly 1 under this model; use [MBGNBD] when
// one-time buyers must be allowed to churn.
//
// A BGNBD is immutable and safe for concurrent use.
type BGNBD struct {
	m betaGeo
}

// NewBGNBD returns a BG/NBD model with the given parameters, whose times are
// in unit.
func NewBGNBD(params BetaGeoParams, unit rfm.TimeUnit) (*BGNBD, error) {
	m, err := newBetaGeo(params, unit, false)
	if err != nil {
		return nil, fmt.Errorf("new bg/nbd: %w", err)
	}
	return &BGNBD{m: m}, nil
}

// Name returns "bg/nbd".
func (*BGNBD) Name() string { return "bg/nbd" }

// Params returns the model parameters.
func (b *BGNBD) Params() BetaGeoParams { return b.m.params }

// Unit returns the model's time unit.
func (b *BGNBD) Unit() rfm.TimeUnit { return b.m.unit }

// ProbabilityAlive returns P(alive | x, t_x, T) (FHL05 eq. 11). It is exactly
// 1 when x = 0 and exactly 0, never NaN, when the odds overflow.
func (b *BGNBD) ProbabilityAlive(c Summary) (float64, error) { return b.m.probabilityAlive(c) }

// ExpectedPurchases returns E[Y(t) | x, t_x, T] (FHL05 eq. 10).
func (b *BGNBD) ExpectedPurchases(t float64, c Summary) (float64, error) {
	var out [1]float64
	err := b.m.expectedPurchasesAt(c, []float64{t}, out[:])
	return out[0], err
}

// ExpectedPurchasesAt implements [PurchaseModel].
func (b *BGNBD) ExpectedPurchasesAt(c Summary, horizons, out []float64) error {
	return b.m.expectedPurchasesAt(c, horizons, out)
}

// LogLikelihood returns the log-likelihood of one customer (FHL05 eq. 6).
func (b *BGNBD) LogLikelihood(c Summary) (float64, error) { return b.m.logLikelihood(c) }

// ExpectedPurchasesNew returns E[X(t)], the expected number of repeat
// purchases in the first t time units of a customer just acquired (FHL05
// eq. 9): (a+b−1)/(a−1)·(1 − (α/(α+t))^r ₂F₁(r, b; a+b−1; t/(α+t))).
func (b *BGNBD) ExpectedPurchasesNew(t float64) (float64, error) {
	return b.ExpectedPurchases(t, Summary{})
}

// ProbabilityOfPurchases returns P(X(t) = n), the probability that a
// customer just acquired makes n repeat purchases in the first t time units
// (FHL05 eq. 8).
func (b *BGNBD) ProbabilityOfPurchases(n int, t float64) (float64, error) {
	return b.m.probabilityOfPurchases(n, t)
}
