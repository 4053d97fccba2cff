package btyd

import (
	"sync"
	"testing"

	"github.com/centric-crm/centric/pkg/rfm"
)

// benchPopulation is a simulated customer base of 1,000,000 customers in
// daily units: acquired uniformly over three years (1,095 days) and observed
// at the end, with same-day purchases collapsed, CDNOW-like BG/NBD parameters
// (α = 4.414 weeks in days) and CDNOW Gamma-Gamma spend.
type benchPopulation struct {
	once      sync.Once
	customers []Summary
	data      Data
}

var population benchPopulation

const benchCustomers = 1_000_000

func loadPopulation(b *testing.B) *benchPopulation {
	b.Helper()
	population.once.Do(func() {
		truth := BetaGeoParams{R: 0.243, Alpha: 4.414 * 7, A: 0.793, B: 2.426}
		bg, err := NewBGNBD(truth, rfm.Day)
		if err != nil {
			b.Fatal(err)
		}
		gg, err := NewGammaGamma(GammaGammaParams{P: 6.25, Q: 3.74, Gamma: 15.44})
		if err != nil {
			b.Fatal(err)
		}
		population.customers = simulatePopulation(b, bg, gg, benchCustomers, 1095, 1, 42)
		if population.data, err = Compress(population.customers, rfm.Day); err != nil {
			b.Fatal(err)
		}
	})
	return &population
}

// BenchmarkCompress1M measures collapsing 1,000,000 summaries into distinct
// (x, t_x, T) rows.
func BenchmarkCompress1M(b *testing.B) {
	p := loadPopulation(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Compress(p.customers, rfm.Day); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(p.data.Rows)), "rows")
}

// BenchmarkFitBGNBD1M measures the BG/NBD fit on the distinct rows of the
// 1,000,000-customer population.
func BenchmarkFitBGNBD1M(b *testing.B) {
	p := loadPopulation(b)
	var diag Diagnostics
	b.ResetTimer()
	for b.Loop() {
		var err error
		if _, diag, err = FitBGNBD(p.data, FitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(p.data.Rows)), "rows")
	b.ReportMetric(float64(diag.FuncEvaluations), "evals")
}

// BenchmarkFitGammaGamma1M measures the Gamma-Gamma fit on the repeat
// customers of the 1,000,000-customer population (distinct (x, zbar) rows
// are built inside the fit).
func BenchmarkFitGammaGamma1M(b *testing.B) {
	p := loadPopulation(b)
	var diag Diagnostics
	b.ResetTimer()
	for b.Loop() {
		var err error
		if _, diag, err = FitGammaGamma(p.customers, FitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(diag.Rows), "rows")
}

// BenchmarkFitAll1M measures the whole fitting job on 1,000,000 customers:
// compress, fit BG/NBD, fit Gamma-Gamma.
func BenchmarkFitAll1M(b *testing.B) {
	p := loadPopulation(b)
	b.ResetTimer()
	for b.Loop() {
		d, err := Compress(p.customers, rfm.Day)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := FitBGNBD(d, FitOptions{}); err != nil {
			b.Fatal(err)
		}
		if _, _, err := FitGammaGamma(p.customers, FitOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchScorer(b *testing.B) *Scorer {
	b.Helper()
	bg, err := NewBGNBD(BetaGeoParams{R: 0.243, Alpha: 4.414 * 7, A: 0.793, B: 2.426}, rfm.Day)
	if err != nil {
		b.Fatal(err)
	}
	gg, err := NewGammaGamma(GammaGammaParams{P: 6.25, Q: 3.74, Gamma: 15.44})
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewScorer(bg, gg, ScorerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkScore1M measures scoring 1,000,000 customers: P(alive), expected
// purchases over 30, 90 and 365 days, expected spend and 12-month CLV, in
// parallel over GOMAXPROCS.
func BenchmarkScore1M(b *testing.B) {
	p := loadPopulation(b)
	s := benchScorer(b)
	table := s.NewScoreTable(len(p.customers))
	b.ResetTimer()
	for b.Loop() {
		if err := s.ScoreAll(p.customers, table); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScoreOne measures scoring one customer on one goroutine; it
// must not allocate.
func BenchmarkScoreOne(b *testing.B) {
	p := loadPopulation(b)
	s := benchScorer(b)
	score := Score{ExpectedPurchases: make([]float64, s.Horizons())}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if err := s.Score(p.customers[i%len(p.customers)], &score); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
