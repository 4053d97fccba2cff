package btyd

import (
	"fmt"

	"github.com/centric-crm/centric/pkg/rfm"
)

// MBGNBD is an MBG/NBD model with fixed parameters (Batislam, Denizel &
// Filiztekin 2007): as BG/NBD, except that a customer can also drop out
// right after the first purchase, so a customer with no repeat purchase has
// P(alive) < 1. The parameters have the same meaning as in [BGNBD].
//
// An MBGNBD is immutable and safe for concurrent use.
type MBGNBD struct {
	m betaGeo
}

// NewMBGNBD returns an MBG/NBD model with the given parameters, whose times
// are in unit.
func NewMBGNBD(params BetaGeoParams, unit rfm.TimeUnit) (*MBGNBD, error) {
	m, err := newBetaGeo(params, unit, true)
	if err != nil {
		return nil, fmt.Errorf("new mbg/nbd: %w", err)
	}
	return &MBGNBD{m: m}, nil
}

// Name returns "mbg/nbd".
func (*MBGNBD) Name() string { return "mbg/nbd" }

// Params returns the model parameters.
func (b *MBGNBD) Params() BetaGeoParams { return b.m.params }

// Unit returns the model's time unit.
func (b *MBGNBD) Unit() rfm.TimeUnit { return b.m.unit }

// ProbabilityAlive returns P(alive | x, t_x, T) =
// 1/(1 + a/(b+x)·((α+T)/(α+t_x))^(r+x)), which is below 1 even at x = 0.
func (b *MBGNBD) ProbabilityAlive(c Summary) (float64, error) { return b.m.probabilityAlive(c) }

// ExpectedPurchases returns E[Y(t) | x, t_x, T] =
// (a+b+x)/(a−1)·(1 − ((α+T)/(α+T+t))^(r+x) ₂F₁(r+x, b+x+1; a+b+x; t/(α+T+t)))·P(alive).
func (b *MBGNBD) ExpectedPurchases(t float64, c Summary) (float64, error) {
	var out [1]float64
	err := b.m.expectedPurchasesAt(c, []float64{t}, out[:])
	return out[0], err
}

// ExpectedPurchasesAt implements [PurchaseModel].
func (b *MBGNBD) ExpectedPurchasesAt(c Summary, horizons, out []float64) error {
	return b.m.expectedPurchasesAt(c, horizons, out)
}

// LogLikelihood returns the log-likelihood of one customer.
func (b *MBGNBD) LogLikelihood(c Summary) (float64, error) { return b.m.logLikelihood(c) }

// ExpectedPurchasesNew returns E[X(t)] for a customer just acquired:
// b/(a−1)·(1 − (α/(α+t))^r ₂F₁(r, b+1; a+b; t/(α+t))).
func (b *MBGNBD) ExpectedPurchasesNew(t float64) (float64, error) {
	return b.ExpectedPurchases(t, Summary{})
}

// ProbabilityOfPurchases returns P(X(t) = n) for a customer just acquired.
func (b *MBGNBD) ProbabilityOfPurchases(n int, t float64) (float64, error) {
	return b.m.probabilityOfPurchases(n, t)
}
