package btyd

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mathext"

	"github.com/centric-crm/centric/pkg/rfm"
)

// Reference values below were computed with mpmath (hyp2f1 at 40 significant
// digits), independently of this package.

func TestHyp2F1(t *testing.T) {
	t.Parallel()
	tests := []struct{ a, b, c, z, want float64 }{
		{1, 2, 3, 0.3, 1.2594431986384972967},
		{0.243, 2.426, 2.219, 0.9, 1.9476311698186018571},
		{1.5, 2.5, 3.5, -0.7, 0.55572066443896334228},
		{0.5, 0.25, 1.5, -20, 0.68171834525295947241},
		{1, 1.5, 2.2, 0.95, 5.4722332075903875549},
		{2, 3, 5, 0.99, 27.699347904322681524}, // c−a−b = 0: integer case
		{1, 3.806, 4.474, 0.9090909090909091, 5.922596407612762282},
		{1, 1.182, 1.886, 0.9090909090909091, 3.6951474055745736009},
		{0.25, 2.5, 2.3, 0.999, 11.362536038555948043},
		{3, -2, 1.5, 0.8, -0.15199999999999995026}, // polynomial
		{1, 2, 3, 0.75, 2.2623799506484999781},     // c−a−b = 0: integer case
	}
	for _, tc := range tests {
		got, err := hyp2f1(tc.a, tc.b, tc.c, tc.z)
		if err != nil {
			t.Errorf("hyp2f1(%v, %v; %v; %v): %v", tc.a, tc.b, tc.c, tc.z, err)
			continue
		}
		if rel := math.Abs(got-tc.want) / math.Abs(tc.want); rel > 1e-12 {
			t.Errorf("hyp2f1(%v, %v; %v; %v) = %.17g, want %.17g (relative error %.2g)", tc.a, tc.b, tc.c, tc.z, got, tc.want, rel)
		}
	}
	if _, err := hyp2f1(1, 2, -1, 0.5); err == nil {
		t.Error("hyp2f1 with c = −1: error = nil, want an error")
	}
	if _, err := hyp2f1(1, 2, 3, 1.5); err == nil {
		t.Error("hyp2f1 at z = 1.5: error = nil, want an error")
	}
}

// TestHyp2F1AgreesWithGonum checks the transformations against gonum's
// Cephes-based Hypergeo inside |z| < 0.9, where Cephes is reliable.
func TestHyp2F1AgreesWithGonum(t *testing.T) {
	t.Parallel()
	for _, a := range []float64{0.243, 1.3, 4.2} {
		for _, b := range []float64{0.5, 2.426, 7.1} {
			for _, c := range []float64{1.7, 3.219, 9.4} {
				for z := -0.85; z < 0.9; z += 0.1 {
					got, err := hyp2f1(a, b, c, z)
					if err != nil {
						t.Fatal(err)
					}
					want := mathext.Hypergeo(a, b, c, z)
					if rel := math.Abs(got-want) / math.Abs(want); rel > 1e-10 {
						t.Errorf("hyp2f1(%v, %v; %v; %.2f) = %.15g, gonum %.15g", a, b, c, z, got, want)
					}
				}
			}
		}
	}
}

func TestExpectedPurchasesReference(t *testing.T) {
	t.Parallel()
	tests := []struct {
		params   BetaGeoParams
		modified bool
		c        Summary
		t, want  float64
	}{
		{BetaGeoParams{0.243, 4.414, 0.793, 2.426}, false, Summary{Frequency: 2, Recency: 30.43, T: 38.86}, 39, 1.2260281747671444631},
		{BetaGeoParams{0.243, 4.414, 0.793, 2.426}, false, Summary{Frequency: 0, Recency: 0, T: 38.86}, 500, 1.4281036066109805079},
		{BetaGeoParams{0.243, 4.414, 0.793, 2.426}, true, Summary{Frequency: 5, Recency: 20, T: 38.86}, 1000, 9.5930663068573230047},
		// a = 1: the (a−1) of FHL05 eq. 10 cancels analytically.
		{BetaGeoParams{0.5, 3, 1, 2}, false, Summary{Frequency: 1, Recency: 1, T: 2}, 200, 5.0928207769040262939},
		// r − a integer: the 1−z transformation is degenerate (Richardson).
		{BetaGeoParams{1, 2, 2, 3}, true, Summary{Frequency: 0, Recency: 0, T: 38.86}, 200, 0.14277416939227471166},
		// a + b = 1 and x = 0: c = a+b+x−1 = 0, the hypergeometric function has a pole.
		{BetaGeoParams{0.3, 1, 0.6, 0.4}, false, Summary{Frequency: 0, Recency: 0, T: 5}, 50, 0.90507684411239124273},
		{BetaGeoParams{0.3, 1, 0.6, 0.4}, false, Summary{Frequency: 0, Recency: 0, T: 5}, 2, 0.089153139239911148178},
		{BetaGeoParams{0.3, 1, 0.6, 0.4}, false, Summary{Frequency: 3, Recency: 4, T: 5}, 50, 7.9095643430536235122},
		{BetaGeoParams{2, 30, 1.5, 20}, false, Summary{Frequency: 30, Recency: 300, T: 400}, 365, 0.13271828469749593094},
		{BetaGeoParams{0.25, 31, 0.8, 2.4}, true, Summary{Frequency: 0, Recency: 0, T: 0}, 365, 1.2282807659113382411},
	}
	for _, tc := range tests {
		var m PurchaseModel
		var err error
		if tc.modified {
			m, err = NewMBGNBD(tc.params, rfm.Day)
		} else {
			m, err = NewBGNBD(tc.params, rfm.Day)
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.ExpectedPurchases(tc.t, tc.c)
		if err != nil {
			t.Errorf("%s %+v E[Y(%v) | %+v]: %v", m.Name(), tc.params, tc.t, tc.c, err)
			continue
		}
		if rel := math.Abs(got-tc.want) / tc.want; rel > 1e-9 {
			t.Errorf("%s %+v E[Y(%v) | %+v] = %.15g, want %.15g (relative error %.2g)", m.Name(), tc.params, tc.t, tc.c, got, tc.want, rel)
		}
	}
}

// TestExpectedPurchasesProperties checks E[Y(t)] is 0 at t = 0, increasing
// in t, and that the multi-horizon call agrees with single calls.
func TestExpectedPurchasesProperties(t *testing.T) {
	t.Parallel()
	m, err := NewBGNBD(publishedBGNBD, rfm.Week)
	if err != nil {
		t.Fatal(err)
	}
	c := Summary{Frequency: 3, Recency: 20, T: 30}
	horizons := []float64{0, 0.5, 1, 5, 10, 30, 52, 100, 500, 5000}
	out := make([]float64, len(horizons))
	if err := m.ExpectedPurchasesAt(c, horizons, out); err != nil {
		t.Fatal(err)
	}
	if out[0] != 0 {
		t.Errorf("E[Y(0)] = %v, want 0", out[0])
	}
	for i, h := range horizons {
		single, err := m.ExpectedPurchases(h, c)
		if err != nil {
			t.Fatal(err)
		}
		if !approx(single, out[i], 1e-13*out[i]) {
			t.Errorf("E[Y(%v)]: single %v, multi %v", h, single, out[i])
		}
		if i > 0 && !(out[i] > out[i-1]) {
			t.Errorf("E[Y] not increasing: E[Y(%v)] = %v after %v", h, out[i], out[i-1])
		}
	}
	if err := m.ExpectedPurchasesAt(c, horizons, out[:2]); err == nil {
		t.Error("mismatched output length: error = nil")
	}
	if _, err := m.ExpectedPurchases(-1, c); err == nil {
		t.Error("negative horizon: error = nil")
	}
	if _, err := m.ExpectedPurchases(1, Summary{Frequency: 1, Recency: 5, T: 2}); err == nil {
		t.Error("recency > T: error = nil")
	}
}

func TestDERLMatchesTruncatedSum(t *testing.T) {
	t.Parallel()
	for _, p := range []SBGParams{{0.704, 1.182}, {0.668, 3.806}, {2, 1}, {1, 1}} {
		m, err := NewShiftedBetaGeometric(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []float64{0.05, 0.1, 0.3} {
			for _, renewals := range []int{0, 1, 4} {
				got, err := m.DiscountedExpectedResidualLifetime(d, renewals)
				if err != nil {
					t.Fatal(err)
				}
				// Σ_{t≥n} S(t)/S(n−1)/(1+d)^(t−n), n = renewals+1, truncated
				// where the geometric bound on the tail is below 1e-15.
				n := renewals + 1
				sPrev, _ := m.Survival(n - 1)
				var want float64
				for k := n; k < n+2000; k++ {
					s, _ := m.Survival(k)
					want += s / sPrev / math.Pow(1+d, float64(k-n))
				}
				if !approx(got, want, 1e-10*want) {
					t.Errorf("%+v DERL(d=%v, renewals=%d) = %.12g, truncated sum %.12g", p, d, renewals, got, want)
				}
			}
		}
	}
	// Huge α near an integer (a nearly certain churn) at small discount rates puts ₂F₁ in its
	// degenerate case close to z = 1, where Cephes' recurrence would take about α steps.
	for _, p := range []SBGParams{{1e7 + 1e-7, 0.5}, {3e8, 5}, {50.0000001, 2}, {2, 1}} {
		m, err := NewShiftedBetaGeometric(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []float64{0.01, 0.05} {
			got, err := m.DiscountedExpectedResidualLifetime(d, 3)
			if err != nil {
				t.Fatalf("%+v DERL(d=%v): %v", p, d, err)
			}
			// S(t)/S(t−1) = (β+t−1)/(α+β+t−1): the ratios keep every digit where the
			// survival's gamma functions of α would not.
			var want float64
			ratio := 1.0
			for k := 4; k < 20000; k++ {
				ratio *= (p.Beta + float64(k) - 1) / (p.Alpha + p.Beta + float64(k) - 1)
				want += ratio / math.Pow(1+d, float64(k-4))
			}
			if !approx(got, want, 1e-10*want) {
				t.Errorf("%+v DERL(d=%v, renewals=3) = %.12g, truncated sum %.12g", p, d, got, want)
			}
		}
	}
	m, _ := NewShiftedBetaGeometric(SBGParams{1, 1})
	if _, err := m.DiscountedExpectedResidualLifetime(0, 0); err == nil {
		t.Error("DERL with d = 0: error = nil")
	}
}

// FuzzProbabilityAlive checks that P(alive), E[Y] and the log-likelihood are
// finite and in range for every valid input. E[Y] must succeed for
// parameters in a realistic range (r ≤ 20, a, b ≤ 50, horizons up to
// 1000 times α + T); beyond it an error is
// allowed (extreme parameters can defeat the series), a wrong value is not.
func FuzzProbabilityAlive(f *testing.F) {
	f.Add(0.243, 4.414, 0.793, 2.426, uint16(2), 30.43, 38.86, 39.0)
	f.Add(0.25, 4.0, 0.8, 2.5, uint16(1000), 10.0, 100.0, 52.0)
	f.Add(1.0, 2.0, 2.0, 3.0, uint16(0), 0.0, 38.86, 200.0)
	f.Add(0.5, 3.0, 1.0, 2.0, uint16(5), 1.0, 2.0, 1e5)
	f.Fuzz(func(t *testing.T, r, alpha, a, b float64, x uint16, recency, T, horizon float64) {
		params := BetaGeoParams{R: r, Alpha: alpha, A: a, B: b}
		clamp := func(v float64) bool { return v >= 1e-3 && v <= 1e3 }
		if !clamp(r) || !clamp(alpha) || !clamp(a) || !clamp(b) {
			t.Skip()
		}
		c := Summary{Frequency: float64(x % 2000), Recency: recency, T: T}
		if c.Frequency == 0 {
			c.Recency = 0
		}
		if c.Validate() != nil || T > 1e5 || !(horizon >= 0 && horizon <= 1e5) {
			t.Skip()
		}
		for _, modified := range []bool{false, true} {
			m, err := newBetaGeo(params, rfm.Day, modified)
			if err != nil {
				t.Fatal(err)
			}
			p, err := m.probabilityAlive(c)
			if err != nil || !(p >= 0 && p <= 1) {
				t.Fatalf("P(alive) = %v, %v for %+v %+v", p, err, params, c)
			}
			if !modified && c.Frequency == 0 && p != 1 {
				t.Fatalf("bg/nbd P(alive | x=0) = %v, want 1", p)
			}
			ll, err := m.logLikelihood(c)
			if err != nil || !isFinite(ll) {
				t.Fatalf("log-likelihood = %v, %v for %+v %+v", ll, err, params, c)
			}
			var ey [1]float64
			realistic := r <= 20 && a <= 50 && b <= 50 && horizon <= 1000*(alpha+c.T)
			if err := m.expectedPurchasesAt(c, []float64{horizon}, ey[:]); err != nil {
				if !realistic {
					continue
				}
				t.Fatalf("E[Y(%v)]: %v for %+v %+v", horizon, err, params, c)
			}
			if !isFinite(ey[0]) || ey[0] < -1e-9 {
				t.Fatalf("E[Y(%v)] = %v for %+v %+v", horizon, ey[0], params, c)
			}
		}
	})
}
