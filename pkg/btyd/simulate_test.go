package btyd

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/centric-crm/centric/pkg/rfm"
)

// simulatePopulation simulates n customers acquired uniformly over
// [0, horizon) and observed at horizon, with histories collapsed to whole
// periods of the given length (1 = same-day collapse on a daily history; 0 =
// continuous time).
func simulatePopulation(t testing.TB, model interface {
	SimulateHistory(*rand.Rand, float64, float64) (History, error)
}, spend *GammaGamma, n int, horizon, period float64, seed uint64) []Summary {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]Summary, n)
	for i := range out {
		start := rng.Float64() * horizon
		if period > 0 {
			start = math.Floor(start/period) * period
		}
		h, err := model.SimulateHistory(rng, start, horizon)
		if err != nil {
			t.Fatal(err)
		}
		if spend != nil {
			if err := spend.SimulateSpend(rng, &h); err != nil {
				t.Fatal(err)
			}
		}
		if out[i], err = h.Summarize(horizon, period); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestParameterRecovery simulates populations with known parameters, fits
// them back and requires every estimate within 4 standard errors of the
// truth (standard errors from the observed information of the fit itself).
// Each estimate is then off by more than 4 SE with probability 6e-5 under
// asymptotic normality, so a failure means a biased likelihood or optimiser,
// not bad luck; the seeds are fixed, so the test is deterministic. The
// standard errors must also be small (below 15% of each parameter), so the
// bound is meaningful.
func TestParameterRecovery(t *testing.T) {
	t.Parallel()
	truth := BetaGeoParams{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	tests := []struct {
		name     string
		modified bool
		seed     uint64
	}{
		{"bg/nbd", false, 1},
		{"mbg/nbd", true, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var sim interface {
				SimulateHistory(*rand.Rand, float64, float64) (History, error)
			}
			if tc.modified {
				m, err := NewMBGNBD(truth, rfm.Week)
				if err != nil {
					t.Fatal(err)
				}
				sim = m
			} else {
				m, err := NewBGNBD(truth, rfm.Week)
				if err != nil {
					t.Fatal(err)
				}
				sim = m
			}
			// 30,000 customers acquired over 78 weeks, continuous time.
			customers := simulatePopulation(t, sim, nil, 30000, 78, 0, tc.seed)
			d, err := Compress(customers, rfm.Week)
			if err != nil {
				t.Fatal(err)
			}
			var got, se BetaGeoParams
			if tc.modified {
				m, _, err := FitMBGNBD(d, FitOptions{})
				if err != nil {
					t.Fatal(err)
				}
				got = m.Params()
				if se, err = m.StandardErrors(d); err != nil {
					t.Fatal(err)
				}
			} else {
				m, _, err := FitBGNBD(d, FitOptions{})
				if err != nil {
					t.Fatal(err)
				}
				got = m.Params()
				if se, err = m.StandardErrors(d); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("fit %+v, standard errors %+v, truth %+v (%d distinct rows)", got, se, truth, len(d.Rows))
			for _, c := range []struct {
				name           string
				got, se, truth float64
			}{
				{"r", got.R, se.R, truth.R}, {"alpha", got.Alpha, se.Alpha, truth.Alpha},
				{"a", got.A, se.A, truth.A}, {"b", got.B, se.B, truth.B},
			} {
				if math.Abs(c.got-c.truth) > 4*c.se {
					t.Errorf("%s = %.4f ± %.4f (SE), truth %.4f: off by %.1f SE", c.name, c.got, c.se, c.truth, math.Abs(c.got-c.truth)/c.se)
				}
				if !(c.se > 0) || c.se > 0.15*c.truth {
					t.Errorf("%s standard error %.4f is not in (0, 15%% of %.4f]", c.name, c.se, c.truth)
				}
			}
		})
	}
}

// TestGammaGammaRecovery simulates spend under known Gamma-Gamma parameters
// and fits them back, with the same 4-standard-error criterion as
// TestParameterRecovery.
func TestGammaGammaRecovery(t *testing.T) {
	t.Parallel()
	truth := GammaGammaParams{P: 6.25, Q: 3.74, Gamma: 15.44}
	gg, err := NewGammaGamma(truth)
	if err != nil {
		t.Fatal(err)
	}
	bg, err := NewBGNBD(BetaGeoParams{R: 0.8, Alpha: 4.414, A: 0.793, B: 2.426}, rfm.Week)
	if err != nil {
		t.Fatal(err)
	}
	customers := simulatePopulation(t, bg, gg, 20000, 78, 0, 3)
	got, diag, err := FitGammaGamma(customers, FitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if int(diag.Customers)+diag.Excluded != len(customers) || diag.Customers < 8000 {
		t.Fatalf("fitted %v + excluded %d of %d customers", diag.Customers, diag.Excluded, len(customers))
	}
	se, err := got.StandardErrors(customers)
	if err != nil {
		t.Fatal(err)
	}
	p := got.Params()
	t.Logf("fit %+v, standard errors %+v, truth %+v, %v repeat customers", p, se, truth, diag.Customers)
	for _, c := range []struct {
		name           string
		got, se, truth float64
	}{{"p", p.P, se.P, truth.P}, {"q", p.Q, se.Q, truth.Q}, {"gamma", p.Gamma, se.Gamma, truth.Gamma}} {
		if math.Abs(c.got-c.truth) > 4*c.se {
			t.Errorf("%s = %.3f ± %.3f (SE), truth %.3f", c.name, c.got, c.se, c.truth)
		}
		if !(c.se > 0) || c.se > 0.15*c.truth {
			t.Errorf("%s standard error %.4f is not in (0, 15%% of %.4f]", c.name, c.se, c.truth)
		}
	}
}

func TestHistorySummarize(t *testing.T) {
	t.Parallel()
	h := History{Purchases: []float64{2.5, 2.9, 4.1, 7.0, 12}, Amounts: []float64{10, 5, 20, 30, 99}}
	tests := []struct {
		end, period float64
		want        Summary
	}{
		{10, 0, Summary{Frequency: 3, Recency: 4.5, T: 7.5, Monetary: 55.0 / 3}},
		{10, 1, Summary{Frequency: 2, Recency: 5, T: 8, Monetary: 25}},
		{2.5, 1, Summary{Frequency: 0, Recency: 0, T: 0, Monetary: 0}},
	}
	for _, tc := range tests {
		got, err := h.Summarize(tc.end, tc.period)
		if err != nil {
			t.Fatal(err)
		}
		if !approx(got.Frequency, tc.want.Frequency, 0) || !approx(got.Recency, tc.want.Recency, 1e-12) ||
			!approx(got.T, tc.want.T, 1e-12) || !approx(got.Monetary, tc.want.Monetary, 1e-12) {
			t.Errorf("Summarize(%v, %v) = %+v, want %+v", tc.end, tc.period, got, tc.want)
		}
	}
	if _, err := h.Summarize(1, 0); err == nil {
		t.Error("Summarize before the first purchase: error = nil")
	}
}
