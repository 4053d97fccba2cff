package btyd

import (
	"math"
	"sync"
	"testing"

	"github.com/centric-crm/centric/pkg/rfm"
)

// Published parameters (analytics-anchors.md).
var (
	publishedBGNBD = BetaGeoParams{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
	publishedGG    = GammaGammaParams{P: 6.25, Q: 3.74, Gamma: 15.44}
)

// fitted caches the CDNOW fits, which several tests share; each is really
// fitted once per test binary.
type fittedModels struct {
	once sync.Once
	bg   *BGNBD
	bgD  Diagnostics
	mbg  *MBGNBD
	mbgD Diagnostics
	gg   *GammaGamma
	ggD  Diagnostics
	err  error
}

var fitted fittedModels

func cdnowFits(t *testing.T) *fittedModels {
	t.Helper()
	d := cdnowData(t)
	customers := cdnow.load(t)
	fitted.once.Do(func() {
		var err error
		if fitted.bg, fitted.bgD, err = FitBGNBD(d, FitOptions{}); err != nil {
			fitted.err = err
			return
		}
		if fitted.mbg, fitted.mbgD, err = FitMBGNBD(d, FitOptions{}); err != nil {
			fitted.err = err
			return
		}
		s := make([]Summary, len(customers))
		for i, c := range customers {
			s[i] = c.summary
		}
		fitted.gg, fitted.ggD, fitted.err = FitGammaGamma(s, FitOptions{})
	})
	if fitted.err != nil {
		t.Fatalf("CDNOW fits: %v", fitted.err)
	}
	return &fitted
}

func TestCDNOWSummaryMatchesReference(t *testing.T) {
	t.Parallel()
	customers := cdnow.load(t)
	ref := readReferenceSummary(t)
	if len(customers) != 2357 || len(ref) != 2357 {
		t.Fatalf("got %d rebuilt and %d reference customers, want 2357 each", len(customers), len(ref))
	}
	var zeros, repeaters int
	var sumX, sumZ float64
	for _, c := range customers {
		want, ok := ref[c.id]
		if !ok {
			t.Fatalf("customer %d missing from the reference", c.id)
		}
		got := c.summary
		// The file rounds to 2 decimals: t_x and T agree within 0.0043 and zbar
		// within half a cent (plus floating-point slack for values ending in 5).
		if got.Frequency != want.Frequency || !approx(got.Recency, want.Recency, 0.0043) ||
			!approx(got.T, want.T, 0.0043) || !approx(got.Monetary, want.Monetary, 0.005+1e-9) {
			t.Errorf("customer %d: got %+v, want %+v", c.id, got, want)
		}
		sumX += got.Frequency
		if got.Frequency == 0 {
			zeros++
		} else {
			repeaters++
			sumZ += got.Monetary
		}
	}
	if zeros != 1411 || repeaters != 946 || sumX != 2457 {
		t.Errorf("x=0: %d, x>0: %d, Σx = %v; want 1411, 946, 2457", zeros, repeaters, sumX)
	}
	if mean := sumZ / float64(repeaters); !approx(mean, 35.078, 0.0005) {
		t.Errorf("repeaters' mean zbar = %.4f, want 35.078", mean)
	}
	// T of a customer who first bought on 1997-01-01 is 272/7 weeks.
	if got := customers[0].summary.T; !approx(got, 272.0/7, 1e-12) {
		t.Errorf("T of customer 1 = %v, want 272/7", got)
	}
}

func TestCDNOWBGNBDFit(t *testing.T) {
	t.Parallel()
	f := cdnowFits(t)
	got := f.bg.Params()
	// lifetimes' own test tolerance is 0.015; a careful fit lands within 0.001
	// of 0.24259, 4.41353, 0.79289, 2.42575.
	checks := []struct {
		name      string
		got, want float64
	}{
		{"r", got.R, 0.24259}, {"alpha", got.Alpha, 4.41353}, {"a", got.A, 0.79289}, {"b", got.B, 2.42575},
	}
	for _, c := range checks {
		if !approx(c.got, c.want, 0.001) {
			t.Errorf("%s = %.5f, want %.5f ± 0.001", c.name, c.got, c.want)
		}
	}
	if !approx(f.bgD.LogLikelihood, -9582.4, 0.05) {
		t.Errorf("log-likelihood = %.3f, want -9582.4 ± 0.05", f.bgD.LogLikelihood)
	}
	if f.bgD.Customers != 2357 || f.bgD.GradientNorm > 1e-5 || f.bgD.Iterations == 0 {
		t.Errorf("diagnostics = %+v", f.bgD)
	}
	// The fitted model's single-customer log-likelihoods add up to the total.
	d := cdnowData(t)
	var sum float64
	for i, r := range d.Rows {
		ll, err := f.bg.LogLikelihood(r)
		if err != nil {
			t.Fatal(err)
		}
		sum += d.Counts[i] * ll
	}
	if !approx(sum, f.bgD.LogLikelihood, 1e-6) {
		t.Errorf("Σ single-customer log-likelihoods = %.6f, fit reports %.6f", sum, f.bgD.LogLikelihood)
	}
}

func TestCDNOWBGNBDNewCustomer(t *testing.T) {
	t.Parallel()
	f := cdnowFits(t)
	tests := []struct{ t, want float64 }{
		{0.1429, 0.0078}, {1, 0.0532}, {3, 0.1506}, {31.8571, 1.0405}, {32, 1.0437}, {78, 1.8580},
	}
	for _, tc := range tests {
		got, err := f.bg.ExpectedPurchasesNew(tc.t)
		if err != nil {
			t.Fatal(err)
		}
		if !approx(got, tc.want, 0.0015) {
			t.Errorf("E[X(%v)] = %.4f, want %.4f ± 0.0015", tc.t, got, tc.want)
		}
	}
}

func TestBGNBDPublishedParams(t *testing.T) {
	t.Parallel()
	m, err := NewBGNBD(publishedBGNBD, rfm.Week)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.ExpectedPurchases(39, Summary{Frequency: 2, Recency: 30.43, T: 38.86})
	if err != nil {
		t.Fatal(err)
	}
	if !approx(got, 1.226, 0.001) {
		t.Errorf("E[Y(39) | 2, 30.43, 38.86] = %.4f, want 1.226 ± 0.001", got)
	}
	p0, err := m.ProbabilityOfPurchases(0, 39)
	if err != nil {
		t.Fatal(err)
	}
	if !approx(p0, 0.5737864, 1e-4) {
		t.Errorf("P(N(0,39] = 0) = %.7f, want 0.5737864 ± 1e-4", p0)
	}
	// The probabilities of n purchases sum to 1 and their mean is E[X(t)].
	var total, mean float64
	for n := 0; n < 400; n++ {
		p, err := m.ProbabilityOfPurchases(n, 39)
		if err != nil {
			t.Fatal(err)
		}
		total += p
		mean += float64(n) * p
	}
	ex, err := m.ExpectedPurchasesNew(39)
	if err != nil {
		t.Fatal(err)
	}
	if !approx(total, 1, 1e-9) || !approx(mean, ex, 1e-6) {
		t.Errorf("Σ P(N=n) = %.10f (want 1), Σ n·P(N=n) = %.8f (want E[X(39)] = %.8f)", total, mean, ex)
	}
}

func TestProbabilityAliveEdgeCases(t *testing.T) {
	t.Parallel()
	m, err := NewBGNBD(publishedBGNBD, rfm.Week)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Summary{{T: 0}, {T: 38.86}, {T: 1e6}} {
		got, err := m.ProbabilityAlive(c)
		if err != nil {
			t.Fatal(err)
		}
		if got != 1 {
			t.Errorf("P(alive | x=0, T=%v) = %v, want exactly 1", c.T, got)
		}
	}
	heavy := Summary{Frequency: 1000, Recency: 10, T: 100}
	got, err := m.ProbabilityAlive(heavy)
	if err != nil {
		t.Fatal(err)
	}
	if got != 0 || math.IsNaN(got) || math.IsInf(got, 0) {
		t.Errorf("P(alive | 1000, 10, 100) = %v, want exactly 0", got)
	}
	ey, err := m.ExpectedPurchases(52, heavy)
	if err != nil || ey != 0 {
		t.Errorf("E[Y(52) | 1000, 10, 100] = %v, %v; want 0, nil", ey, err)
	}
	ll, err := m.LogLikelihood(heavy)
	if err != nil || !isFinite(ll) {
		t.Errorf("log-likelihood of (1000, 10, 100) = %v, %v; want a finite value", ll, err)
	}
}

func TestSingleCustomerLogLikelihood(t *testing.T) {
	t.Parallel()
	params := BetaGeoParams{R: 0.25, Alpha: 4, A: 0.8, B: 2.5}
	bg, err := NewBGNBD(params, rfm.Week)
	if err != nil {
		t.Fatal(err)
	}
	mbg, err := NewMBGNBD(params, rfm.Week)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		model PurchaseModel
		c     Summary
		want  float64
	}{
		{bg, Summary{Frequency: 0, Recency: 0, T: 40}, -0.59947382},
		{bg, Summary{Frequency: 200, Recency: 38, T: 40}, 100.7957},
		{mbg, Summary{Frequency: 0, Recency: 0, T: 40}, -0.41792826},
		{mbg, Summary{Frequency: 200, Recency: 38, T: 40}, 100.7869},
	}
	for _, tc := range tests {
		got, err := tc.model.LogLikelihood(tc.c)
		if err != nil {
			t.Fatal(err)
		}
		if !approx(got, tc.want, 1e-5) {
			t.Errorf("%s log-likelihood %+v = %.8f, want %.8f ± 1e-5", tc.model.Name(), tc.c, got, tc.want)
		}
	}
}

func TestCDNOWMBGNBDFit(t *testing.T) {
	t.Parallel()
	f := cdnowFits(t)
	got := f.mbg.Params()
	want := BetaGeoParams{R: 0.525, Alpha: 6.183, A: 0.891, B: 1.614}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"r", got.R, want.R}, {"alpha", got.Alpha, want.Alpha}, {"a", got.A, want.A}, {"b", got.B, want.B}} {
		if !approx(c.got, c.want, 0.0015) {
			t.Errorf("mbg/nbd %s = %.5f, want %.3f ± 0.0015", c.name, c.got, c.want)
		}
	}
	p, err := f.mbg.ProbabilityAlive(Summary{Frequency: 0, Recency: 0, T: 38.86})
	if err != nil {
		t.Fatal(err)
	}
	if !approx(p, 0.38972, 1e-3) || p >= 1 {
		t.Errorf("mbg/nbd P(alive | 0, 0, 38.86) = %.5f, want 0.38972 ± 1e-3 (< 1)", p)
	}
}

func TestCDNOWGammaGamma(t *testing.T) {
	t.Parallel()
	f := cdnowFits(t)
	got := f.gg.Params()
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"p", got.P, 6.25}, {"q", got.Q, 3.74}, {"gamma", got.Gamma, 15.44}} {
		if !approx(c.got, c.want, 0.015) {
			t.Errorf("gamma-gamma %s = %.4f, want %.2f ± 0.015", c.name, c.got, c.want)
		}
	}
	if f.ggD.Customers != 946 || f.ggD.Excluded != 1411 {
		t.Errorf("gamma-gamma fitted %v customers and excluded %d, want 946 and 1411", f.ggD.Customers, f.ggD.Excluded)
	}

	published, err := NewGammaGamma(publishedGG)
	if err != nil {
		t.Fatal(err)
	}
	ref := readReferenceSummary(t)
	want := []float64{24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17}
	for id := 1; id <= 10; id++ {
		got, err := published.ExpectedSpend(ref[id])
		if err != nil {
			t.Fatal(err)
		}
		if !approx(got, want[id-1], 0.1) {
			t.Errorf("E[M] of customer %d = %.3f, want %.2f ± 0.1", id, got, want[id-1])
		}
	}
	if mean := published.PopulationMean(); !approx(mean, 35.22, 0.01) {
		t.Errorf("population mean = %.4f, want 35.22 ± 0.01", mean)
	}
}

func TestShiftedBetaGeometricFH07(t *testing.T) {
	t.Parallel()
	// Percent surviving at years 0..12 (FH07 Table 1).
	regular := []float64{100.0, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1, 22.3, 20.7, 19.4, 18.3, 17.3}
	highEnd := []float64{100.0, 86.9, 74.3, 65.3, 59.3, 55.1, 51.7, 49.1, 46.8, 44.5, 42.7, 40.9, 39.4}
	tests := []struct {
		name        string
		percent     []float64
		alpha, beta float64
		year12      float64
	}{
		{"regular", regular, 0.704, 1.182, 17.00},
		{"high end", highEnd, 0.668, 3.806, 37.80},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// A cohort of 1,000 observed for years 0-7.
			survivors := make([]float64, 8)
			for i := range survivors {
				survivors[i] = 10 * tc.percent[i]
			}
			m, diag, err := FitShiftedBetaGeometric(survivors, FitOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p := m.Params()
			if !approx(p.Alpha, tc.alpha, 0.005) || !approx(p.Beta, tc.beta, 0.005) {
				t.Errorf("alpha, beta = %.4f, %.4f; want %.3f, %.3f ± 0.005 (%+v)", p.Alpha, p.Beta, tc.alpha, tc.beta, diag)
			}
			s12, err := m.Survival(12)
			if err != nil {
				t.Fatal(err)
			}
			if !approx(100*s12, tc.year12, 0.05) {
				t.Errorf("projected survival at year 12 = %.2f%%, want %.2f%%", 100*s12, tc.year12)
			}
			proj, err := m.ProjectSurvivors(1000, 12)
			if err != nil {
				t.Fatal(err)
			}
			if !approx(proj[12], 10*s12*100, 1e-9) || proj[0] != 1000 {
				t.Errorf("ProjectSurvivors = %v", proj)
			}
			// Retention r_t = S(t)/S(t-1).
			for year := 1; year <= 12; year++ {
				r, _ := m.Retention(year)
				if !approx(r, proj[year]/proj[year-1], 1e-12) {
					t.Errorf("retention(%d) = %v, want S(t)/S(t-1) = %v", year, r, proj[year]/proj[year-1])
				}
			}
		})
	}
}
