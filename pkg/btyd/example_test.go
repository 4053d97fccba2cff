package btyd_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/centric-crm/centric/pkg/btyd"
	"github.com/centric-crm/centric/pkg/rfm"
)

// cdnowParams returns the BG/NBD parameters Fader, Hardie & Lee (2005)
// report for the CDNOW sample, in weeks.
func cdnowParams() btyd.BetaGeoParams {
	return btyd.BetaGeoParams{R: 0.243, Alpha: 4.414, A: 0.793, B: 2.426}
}

func ExampleNewBGNBD() {
	model, err := btyd.NewBGNBD(cdnowParams(), rfm.Week)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Two repeat purchases, the last 30.43 weeks after the first, observed
	// for 38.86 weeks.
	c := btyd.Summary{Frequency: 2, Recency: 30.43, T: 38.86}
	alive, _ := model.ProbabilityAlive(c)
	next, _ := model.ExpectedPurchases(39, c)
	fmt.Printf("P(alive) = %.3f, expected purchases in the next 39 weeks = %.3f\n", alive, next)
	// Output:
	// P(alive) = 0.727, expected purchases in the next 39 weeks = 1.226
}

func ExampleFitBGNBD() {
	// Simulate 5,000 customers acquired over a year and observed weekly.
	truth, _ := btyd.NewBGNBD(cdnowParams(), rfm.Week)
	rng := rand.New(rand.NewPCG(7, 11))
	customers := make([]btyd.Summary, 5000)
	for i := range customers {
		start := rng.Float64() * 52
		h, _ := truth.SimulateHistory(rng, start, 78)
		customers[i], _ = h.Summarize(78, 0)
	}
	data, err := btyd.Compress(customers, rfm.Week)
	if err != nil {
		fmt.Println(err)
		return
	}
	model, diag, err := btyd.FitBGNBD(data, btyd.FitOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	p := model.Params()
	fmt.Printf("r=%.2f alpha=%.1f a=%.1f b=%.1f converged=%v\n", p.R, p.Alpha, p.A, p.B, diag.GradientNorm < 1e-5)
	// Output:
	// r=0.25 alpha=4.4 a=0.8 b=2.5 converged=true
}

func ExampleMBGNBD_ProbabilityAlive() {
	bg, _ := btyd.NewBGNBD(cdnowParams(), rfm.Week)
	mbg, _ := btyd.NewMBGNBD(btyd.BetaGeoParams{R: 0.525, Alpha: 6.183, A: 0.891, B: 1.614}, rfm.Week)
	oneTimeBuyer := btyd.Summary{Frequency: 0, Recency: 0, T: 38.86}
	for _, m := range []btyd.PurchaseModel{bg, mbg} {
		p, _ := m.ProbabilityAlive(oneTimeBuyer)
		fmt.Printf("%s: %.3f\n", m.Name(), p)
	}
	// Output:
	// bg/nbd: 1.000
	// mbg/nbd: 0.390
}

func ExampleGammaGamma_ExpectedSpend() {
	gg, err := btyd.NewGammaGamma(btyd.GammaGammaParams{P: 6.25, Q: 3.74, Gamma: 15.44})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("population mean %.2f\n", gg.PopulationMean())
	for _, c := range []btyd.Summary{{Frequency: 2, Monetary: 22.35}, {Frequency: 10, Monetary: 80}} {
		spend, _ := gg.ExpectedSpend(c)
		fmt.Printf("x=%v zbar=%.2f: %.2f\n", c.Frequency, c.Monetary, spend)
	}
	// Output:
	// population mean 35.22
	// x=2 zbar=22.35: 24.66
	// x=10 zbar=80.00: 78.12
}

func ExampleNewScorer() {
	daily := cdnowParams()
	daily.Alpha *= 7 // the same model in days
	model, _ := btyd.NewBGNBD(daily, rfm.Day)
	spend, _ := btyd.NewGammaGamma(btyd.GammaGammaParams{P: 6.25, Q: 3.74, Gamma: 15.44})
	clv := btyd.CLVOptions{HorizonMonths: 12, AnnualDiscountRate: 0.10, Margin: 0.3}
	scorer, err := btyd.NewScorer(model, spend, btyd.ScorerOptions{HorizonsDays: []float64{30, 365}, CLV: &clv})
	if err != nil {
		fmt.Println(err)
		return
	}
	score := btyd.Score{ExpectedPurchases: make([]float64, scorer.Horizons())}
	c := btyd.Summary{Frequency: 4, Recency: 200, T: 250, Monetary: 42}
	if err := scorer.Score(c, &score); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("P(alive)=%.3f E[Y(30d)]=%.3f E[Y(365d)]=%.3f E[M]=%.2f CLV=%.2f\n",
		score.ProbabilityAlive, score.ExpectedPurchases[0], score.ExpectedPurchases[1], score.ExpectedSpend, score.CLV)
	// Output:
	// P(alive)=0.749 E[Y(30d)]=0.329 E[Y(365d)]=3.127 E[M]=41.33 CLV=37.00
}

func ExampleFitShiftedBetaGeometric() {
	// FH07 "regular" cohort: survivors of 1,000 customers after years 0–7.
	survivors := []float64{1000, 631, 468, 382, 326, 289, 262, 241}
	model, _, err := btyd.FitShiftedBetaGeometric(survivors, btyd.FitOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	p := model.Params()
	s12, _ := model.Survival(12)
	r8, _ := model.Retention(8)
	derl, _ := model.DiscountedExpectedResidualLifetime(0.10, 7)
	fmt.Printf("alpha=%.3f beta=%.3f S(12)=%.1f%% r_8=%.3f DERL=%.2f\n", p.Alpha, p.Beta, 100*s12, r8, derl)
	// Output:
	// alpha=0.704 beta=1.182 S(12)=17.0% r_8=0.921 DERL=6.84
}

func ExampleSimpleCLV() {
	// $500 a year at a 30% margin, 80% retention, 10% discount rate.
	v, err := btyd.SimpleCLV(500, 0.3, 0.8, 0.10)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.2f\n", v)
	// Output:
	// 400.00
}
