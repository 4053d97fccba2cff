package btyd

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// History is a simulated customer's purchase history: the times of all
// purchases, the first being the acquisition, in ascending order, and
// optionally the amount of each purchase.
type History struct {
	Purchases []float64
	// Amounts holds one amount per purchase when spend was simulated.
	Amounts []float64
}

// SimulateHistory draws a customer from the BG/NBD population (λ ~ Gamma(r, α),
// p ~ Beta(a, b)) acquired at start and simulates purchases until the time
// until: a Poisson process with rate λ, and dropout with probability p
// after every repeat purchase.
func (b *BGNBD) SimulateHistory(rng *rand.Rand, start, until float64) (History, error) {
	return b.m.simulate(rng, start, until)
}

// SimulateHistory draws a customer from the MBG/NBD population acquired at
// start and simulates purchases until the time until; as BG/NBD, but the
// customer can also drop out right after the first purchase.
func (b *MBGNBD) SimulateHistory(rng *rand.Rand, start, until float64) (History, error) {
	return b.m.simulate(rng, start, until)
}

func (m *betaGeo) simulate(rng *rand.Rand, start, until float64) (History, error) {
	if rng == nil {
		return History{}, errors.New("simulate: a random source is required")
	}
	if !isFinite(start) || !isFinite(until) || until < start {
		return History{}, fmt.Errorf("simulate: need finite start ≤ until, got %v and %v", start, until)
	}
	p := &m.params
	rate := gammaVariate(rng, p.R, p.Alpha)
	dropout := betaVariate(rng, p.A, p.B)
	h := History{Purchases: []float64{start}}
	if m.modified && rng.Float64() < dropout {
		return h, nil
	}
	if rate == 0 {
		return h, nil
	}
	for t := start; ; {
		t += rng.ExpFloat64() / rate
		if t > until {
			return h, nil
		}
		h.Purchases = append(h.Purchases, t)
		if rng.Float64() < dropout {
			return h, nil
		}
	}
}

// SimulateSpend draws a customer from the Gamma-Gamma population
// (ν ~ Gamma(q, γ)) and sets the amount of every purchase of h to an
// independent Gamma(p, ν) draw.
func (g *GammaGamma) SimulateSpend(rng *rand.Rand, h *History) error {
	if rng == nil || h == nil {
		return errors.New("simulate spend: a random source and a history are required")
	}
	p := &g.params
	nu := gammaVariate(rng, p.Q, p.Gamma)
	h.Amounts = h.Amounts[:0]
	for range h.Purchases {
		h.Amounts = append(h.Amounts, gammaVariate(rng, p.P, nu))
	}
	return nil
}

// Summarize returns the summary of the history observed at end. With
// period > 0 purchases in the same period (⌊t/period⌋) are one occasion,
// whose amount is the sum of its purchases, and times are measured between
// period starts (period 1 on a history in days gives daily data with
// same-day purchases collapsed); with period 0 times are used as they are.
// Purchases after end are ignored; a history starting after end is an error.
func (h History) Summarize(end, period float64) (Summary, error) {
	if len(h.Purchases) == 0 {
		return Summary{}, errors.New("summarize history: no purchases")
	}
	if !(period >= 0) || !isFinite(period) || !isFinite(end) {
		return Summary{}, fmt.Errorf("summarize history: invalid end %v or period %v", end, period)
	}
	if len(h.Amounts) != 0 && len(h.Amounts) != len(h.Purchases) {
		return Summary{}, errors.New("summarize history: amounts and purchases differ in number")
	}
	bucket := func(t float64) float64 {
		if period == 0 {
			return t
		}
		return math.Floor(t/period) * period
	}
	first := bucket(h.Purchases[0])
	endAt := bucket(end)
	if h.Purchases[0] > end {
		return Summary{}, fmt.Errorf("summarize history: first purchase at %v is after the end %v", h.Purchases[0], end)
	}
	var occasions int
	var last, repeatTotal float64
	for i, t := range h.Purchases {
		if t > end {
			break
		}
		var amount float64
		if len(h.Amounts) != 0 {
			amount = h.Amounts[i]
		}
		b := bucket(t)
		if occasions == 0 || b != last {
			occasions++
			last = b
		}
		if occasions > 1 {
			repeatTotal += amount
		}
	}
	s := Summary{Frequency: float64(occasions - 1), Recency: last - first, T: endAt - first}
	if occasions > 1 {
		s.Monetary = repeatTotal / float64(occasions-1)
	}
	return s, nil
}

// gammaVariate draws from Gamma(shape, rate) by Marsaglia & Tsang's method
// (boosted by U^(1/shape) for shape < 1).
func gammaVariate(rng *rand.Rand, shape, rate float64) float64 {
	boost := 1.0
	if shape < 1 {
		boost = math.Pow(rng.Float64(), 1/shape)
		shape++
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return boost * d * v / rate
		}
	}
}

// betaVariate draws from Beta(a, b) as X/(X+Y) with X ~ Gamma(a), Y ~ Gamma(b).
func betaVariate(rng *rand.Rand, a, b float64) float64 {
	x := gammaVariate(rng, a, 1)
	y := gammaVariate(rng, b, 1)
	if x+y == 0 {
		if rng.Float64() < a/(a+b) {
			return 1
		}
		return 0
	}
	return x / (x + y)
}
