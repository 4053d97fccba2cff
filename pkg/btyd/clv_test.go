package btyd

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/centric-crm/centric/pkg/rfm"
)

// TestCLVUnits checks that CLV does not depend on the time unit: the same
// model expressed in weeks and in days (α scaled by 7, histories in days)
// gives the same value, and the value equals the discounted sum written out.
func TestCLVUnits(t *testing.T) {
	t.Parallel()
	weekly, err := NewBGNBD(publishedBGNBD, rfm.Week)
	if err != nil {
		t.Fatal(err)
	}
	dailyParams := publishedBGNBD
	dailyParams.Alpha *= 7
	daily, err := NewBGNBD(dailyParams, rfm.Day)
	if err != nil {
		t.Fatal(err)
	}
	gg, err := NewGammaGamma(publishedGG)
	if err != nil {
		t.Fatal(err)
	}
	opts := CLVOptions{HorizonMonths: 24, AnnualDiscountRate: 0.12, Margin: 0.3}
	clvWeekly, err := NewCLV(weekly, gg, opts)
	if err != nil {
		t.Fatal(err)
	}
	clvDaily, err := NewCLV(daily, gg, opts)
	if err != nil {
		t.Fatal(err)
	}
	c := Summary{Frequency: 3, Recency: 20, T: 35, Monetary: 40}
	cDays := Summary{Frequency: 3, Recency: 140, T: 245, Monetary: 40}
	got, err := clvWeekly.Value(c)
	if err != nil {
		t.Fatal(err)
	}
	gotDaily, err := clvDaily.Value(cDays)
	if err != nil {
		t.Fatal(err)
	}
	if !approx(got, gotDaily, 1e-9*got) {
		t.Errorf("CLV in weeks %.10g != CLV in days %.10g", got, gotDaily)
	}
	// Written out: monthly steps of 365.25/12 days = 4.348… weeks.
	spend, _ := gg.ExpectedSpend(c)
	var want, prev float64
	for k := 1; k <= 24; k++ {
		cum, err := weekly.ExpectedPurchases(float64(k)*DaysPerMonth/7, c)
		if err != nil {
			t.Fatal(err)
		}
		want += (cum - prev) * spend * 0.3 / math.Pow(1.12, float64(k)/12)
		prev = cum
	}
	if !approx(got, want, 1e-9*want) {
		t.Errorf("CLV = %.10g, written-out sum %.10g", got, want)
	}
	if !(got > 0) {
		t.Errorf("CLV = %v, want positive", got)
	}
}

func TestSimpleCLV(t *testing.T) {
	t.Parallel()
	tests := []struct {
		revenue, margin, retention, discount, want float64
	}{
		{100, 0.3, 0.8, 0.1, 100 * 0.3 * 0.8 / 0.3},
		{1000, 1, 0.5, 0, 1000},
		{50, 0.2, 0, 0.1, 0},
	}
	for _, tc := range tests {
		got, err := SimpleCLV(tc.revenue, tc.margin, tc.retention, tc.discount)
		if err != nil {
			t.Fatal(err)
		}
		if !approx(got, tc.want, 1e-12) {
			t.Errorf("SimpleCLV(%v, %v, %v, %v) = %v, want %v", tc.revenue, tc.margin, tc.retention, tc.discount, got, tc.want)
		}
	}
	for _, bad := range [][2]float64{{1.1, 0.1}, {-0.1, 0.1}, {0.5, -0.1}, {1, 0}} {
		if _, err := RetentionMultiplier(bad[0], bad[1]); err == nil {
			t.Errorf("RetentionMultiplier(%v, %v) error = nil", bad[0], bad[1])
		}
	}
}

// TestScorer is not parallel: it measures allocations.
func TestScorer(t *testing.T) {
	dailyParams := publishedBGNBD
	dailyParams.Alpha *= 7
	for _, model := range []func() (PurchaseModel, error){
		func() (PurchaseModel, error) { return NewBGNBD(dailyParams, rfm.Day) },
		func() (PurchaseModel, error) { return NewMBGNBD(dailyParams, rfm.Day) },
	} {
		m, err := model()
		if err != nil {
			t.Fatal(err)
		}
		gg, err := NewGammaGamma(publishedGG)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewScorer(m, gg, ScorerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		clv, err := NewCLV(m, gg, DefaultCLVOptions())
		if err != nil {
			t.Fatal(err)
		}
		customers := []Summary{
			{T: 0}, {T: 400}, {Frequency: 1, Recency: 3, T: 10, Monetary: 12},
			{Frequency: 7, Recency: 300, T: 320, Monetary: 80}, {Frequency: 40, Recency: 50, T: 900, Monetary: 20},
			{Frequency: 2, Recency: 1000, T: 1095, Monetary: 33},
		}
		table := s.NewScoreTable(len(customers))
		if err := s.ScoreAll(customers, table); err != nil {
			t.Fatal(err)
		}
		for i, c := range customers {
			alive, _ := m.ProbabilityAlive(c)
			value, _ := clv.Value(c)
			spend, _ := gg.ExpectedSpend(c)
			if !approx(table.ProbabilityAlive[i], alive, 0) || !approx(table.CLV[i], value, 1e-10*value) ||
				!approx(table.ExpectedSpend[i], spend, 0) {
				t.Errorf("%s customer %+v: table (%v, %v, %v), direct (%v, %v, %v)", m.Name(), c,
					table.ProbabilityAlive[i], table.CLV[i], table.ExpectedSpend[i], alive, value, spend)
			}
			for h, days := range []float64{30, 90, 365} {
				want, _ := m.ExpectedPurchases(days, c)
				if !approx(table.ExpectedPurchases[h][i], want, 1e-10*want) {
					t.Errorf("%s customer %+v: E[Y(%v days)] = %v, want %v", m.Name(), c, days, table.ExpectedPurchases[h][i], want)
				}
			}
		}
		score := Score{ExpectedPurchases: make([]float64, s.Horizons())}
		allocs := testing.AllocsPerRun(100, func() {
			if err := s.Score(customers[3], &score); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Score allocates %v times per call, want 0", allocs)
		}
		if err := s.ScoreAll([]Summary{{Frequency: 1, Recency: 5, T: 2}}, s.NewScoreTable(1)); err == nil {
			t.Error("ScoreAll with recency > T: error = nil")
		}
	}
}

// TestScoreAllMatchesScore checks that scoring many customers at once, where
// customers share purchase histories but not spend, gives exactly the scores
// of scoring each alone.
func TestScoreAllMatchesScore(t *testing.T) {
	t.Parallel()
	dailyParams := publishedBGNBD
	dailyParams.Alpha *= 7
	m, err := NewMBGNBD(dailyParams, rfm.Day)
	if err != nil {
		t.Fatal(err)
	}
	gg, err := NewGammaGamma(publishedGG)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewScorer(m, gg, ScorerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	customers := make([]Summary, 5000)
	for i := range customers {
		x := float64(i % 7)
		c := Summary{Frequency: x, T: float64(300 + i%11)}
		if x > 0 {
			c.Recency = float64(i % 290)
			c.Monetary = float64(i%97) + 0.5
		}
		customers[i] = c
	}
	table := s.NewScoreTable(len(customers))
	if err := s.ScoreAll(customers, table); err != nil {
		t.Fatal(err)
	}
	score := Score{ExpectedPurchases: make([]float64, s.Horizons())}
	for i, c := range customers {
		if err := s.Score(c, &score); err != nil {
			t.Fatal(err)
		}
		got := []float64{table.ProbabilityAlive[i], table.ExpectedSpend[i], table.CLV[i]}
		want := []float64{score.ProbabilityAlive, score.ExpectedSpend, score.CLV}
		for h := range score.ExpectedPurchases {
			got = append(got, table.ExpectedPurchases[h][i])
			want = append(want, score.ExpectedPurchases[h])
		}
		if !slices.Equal(got, want) {
			t.Fatalf("customer %d %+v: ScoreAll %v, Score %v", i, c, got, want)
		}
	}
	bad := append(slices.Clone(customers[:3000]), Summary{Frequency: 1, Recency: 5, T: 2})
	if err := s.ScoreAll(bad, s.NewScoreTable(len(bad))); err == nil || !strings.Contains(err.Error(), "customer 3000") {
		t.Errorf("ScoreAll with customer 3000 invalid: error = %v", err)
	}
}

func TestFitErrors(t *testing.T) {
	t.Parallel()
	d := Data{Unit: rfm.Week, Rows: []Summary{{T: 10}, {Frequency: 2, Recency: 5, T: 10}}, Counts: []float64{100, 50}}
	_, diag, err := FitBGNBD(d, FitOptions{MaxIterations: 1})
	var fe *FitError
	if !errors.As(err, &fe) {
		t.Fatalf("FitBGNBD with one iteration: error %v, want a *FitError", err)
	}
	if fe.Diagnostics.Iterations == 0 || fe.Diagnostics.Rows != 2 || diag.Method == "" {
		t.Errorf("FitError diagnostics = %+v", fe.Diagnostics)
	}
	bad := []Data{
		{Unit: rfm.Week},
		{Unit: 0, Rows: []Summary{{T: 1}}, Counts: []float64{1}},
		{Unit: rfm.Week, Rows: []Summary{{T: 1}}, Counts: []float64{0}},
		{Unit: rfm.Week, Rows: []Summary{{Frequency: 1.5, Recency: 1, T: 2}}, Counts: []float64{1}},
		{Unit: rfm.Week, Rows: []Summary{{T: 0}}, Counts: []float64{1}},
	}
	for _, b := range bad {
		if _, _, err := FitBGNBD(b, FitOptions{}); err == nil {
			t.Errorf("FitBGNBD(%+v) error = nil", b)
		}
	}
	if _, _, err := FitGammaGamma([]Summary{{T: 3}}, FitOptions{}); err == nil {
		t.Error("FitGammaGamma without repeat customers: error = nil")
	}
	if _, err := NewGammaGamma(GammaGammaParams{P: 1, Q: 0.9, Gamma: 1}); err == nil {
		t.Error("NewGammaGamma with q ≤ 1: error = nil")
	}
	if _, err := NewBGNBD(BetaGeoParams{R: 1, Alpha: -1, A: 1, B: 1}, rfm.Week); err == nil {
		t.Error("NewBGNBD with α < 0: error = nil")
	}
	if _, _, err := FitShiftedBetaGeometric([]float64{100, 120}, FitOptions{}); err == nil {
		t.Error("FitShiftedBetaGeometric with growing survivors: error = nil")
	}
	if _, err := Compress([]Summary{{Frequency: 1, Recency: 3, T: 2}}, rfm.Day); err == nil {
		t.Error("Compress with recency > T: error = nil")
	}
}

func TestCompress(t *testing.T) {
	t.Parallel()
	customers := []Summary{
		{Frequency: 2, Recency: 5, T: 9, Monetary: 3}, {T: 4}, {Frequency: 2, Recency: 5, T: 9, Monetary: 7}, {T: 4}, {T: 1},
	}
	d, err := Compress(customers, rfm.Day)
	if err != nil {
		t.Fatal(err)
	}
	want := Data{Unit: rfm.Day, Rows: []Summary{{T: 1}, {T: 4}, {Frequency: 2, Recency: 5, T: 9}}, Counts: []float64{1, 2, 2}}
	if len(d.Rows) != len(want.Rows) {
		t.Fatalf("Compress = %+v, want %+v", d, want)
	}
	for i := range want.Rows {
		if d.Rows[i] != want.Rows[i] || d.Counts[i] != want.Counts[i] {
			t.Errorf("row %d = %+v × %v, want %+v × %v", i, d.Rows[i], d.Counts[i], want.Rows[i], want.Counts[i])
		}
	}
	if d.Customers() != 5 {
		t.Errorf("Customers() = %v, want 5", d.Customers())
	}
}
