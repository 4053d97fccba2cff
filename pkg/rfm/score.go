package rfm

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// Values are the three quantities RFM scoring ranks customers by.
type Values struct {
	// Recency is the time since the last purchase occasion; smaller is
	// better, so its score is reversed.
	Recency float64
	// Frequency is the number of purchase occasions, the first included.
	Frequency float64
	// Monetary is the mean amount per occasion, the first included.
	Monetary float64
}

// Quartiles is the number of quantile bins RFM scoring uses per dimension.
const Quartiles = 4

// QuantileEdges returns the bin edges that pandas qcut(q=bins,
// duplicates="drop") uses: the quantiles of values at 0, 1/bins, …, 1 with
// linear interpolation between order statistics (numpy's default "linear"
// method), with duplicate edges dropped. The result has at most bins+1
// ascending edges; fewer when values has ties across quantiles.
//
// Linear interpolation at position q·(n−1) is also what PostgreSQL's
// percentile_cont(q) computes, so edges computed in SQL with
// percentile_cont(ARRAY[0, 0.25, 0.5, 0.75, 1]) and de-duplicated are the same
// (up to floating-point rounding in the last bit).
func QuantileEdges(values []float64, bins int) ([]float64, error) {
	if bins < 1 {
		return nil, fmt.Errorf("quantile edges: bins must be at least 1, got %d", bins)
	}
	if len(values) == 0 {
		return nil, errors.New("quantile edges: no values")
	}
	sorted := slices.Clone(values)
	for _, v := range sorted {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("quantile edges: values must be finite")
		}
	}
	slices.Sort(sorted)
	edges := make([]float64, 0, bins+1)
	for i := 0; i <= bins; i++ {
		q := quantileSorted(sorted, float64(i)/float64(bins))
		if len(edges) == 0 || q != edges[len(edges)-1] {
			edges = append(edges, q)
		}
	}
	return edges, nil
}

// quantileSorted returns the q-quantile of ascending values by linear
// interpolation between the order statistics around position q·(n−1),
// computed as numpy's _lerp does.
func quantileSorted(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := math.Floor(pos)
	i := int(lo)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	a, b, t := sorted[i], sorted[i+1], pos-lo
	if t >= 0.5 {
		return b - (b-a)*(1-t)
	}
	return a + (b-a)*t
}

// Bin returns the 1-based bin of v among ascending edges with qcut's
// conventions: bins are right-closed (e[i−1], e[i]] and the lowest edge is
// included in the first bin. Values outside the edges are clamped to the
// first or last bin, so customers scored after the edges were computed get a
// score too. With fewer than two edges every value is in bin 1.
func Bin(edges []float64, v float64) int {
	k := len(edges) - 1
	if k < 1 {
		return 1
	}
	// Number of edges strictly below v: numpy searchsorted(side="left").
	i, _ := slices.BinarySearch(edges, v)
	return min(max(i, 1), k)
}

// Score is a customer's RFM score: one digit per dimension, each from 1 to
// the number of bins of that dimension (at most [Quartiles]); higher is
// better in every dimension.
type Score struct {
	R, F, M int
}

// String returns the score as the three digits R, F, M, e.g. "421".
func (s Score) String() string {
	return strconv.Itoa(s.R) + strconv.Itoa(s.F) + strconv.Itoa(s.M)
}

// ParseScore parses a three-digit score such as "421".
func ParseScore(text string) (Score, error) {
	if len(text) != 3 {
		return Score{}, fmt.Errorf("parse score %q: want three digits", text)
	}
	var d [3]int
	for i := range 3 {
		c := text[i]
		if c < '1' || c > '9' {
			return Score{}, fmt.Errorf("parse score %q: digit %d is not 1-9", text, i+1)
		}
		d[i] = int(c - '0')
	}
	return Score{R: d[0], F: d[1], M: d[2]}, nil
}

// Edges holds the quantile edges of the three RFM dimensions over a scored
// population.
type Edges struct {
	Recency, Frequency, Monetary []float64
}

// ComputeEdges computes the quartile edges (see [QuantileEdges]) of each
// dimension over the population.
func ComputeEdges(population []Values) (Edges, error) {
	r := make([]float64, len(population))
	f := make([]float64, len(population))
	m := make([]float64, len(population))
	for i, v := range population {
		r[i], f[i], m[i] = v.Recency, v.Frequency, v.Monetary
	}
	var e Edges
	var err error
	if e.Recency, err = QuantileEdges(r, Quartiles); err != nil {
		return Edges{}, fmt.Errorf("recency: %w", err)
	}
	if e.Frequency, err = QuantileEdges(f, Quartiles); err != nil {
		return Edges{}, fmt.Errorf("frequency: %w", err)
	}
	if e.Monetary, err = QuantileEdges(m, Quartiles); err != nil {
		return Edges{}, fmt.Errorf("monetary: %w", err)
	}
	return e, nil
}

// Score scores one customer. Frequency and monetary bins are the scores;
// recency is reversed (k + 1 − bin for k recency bins), so the most recent
// customers get the highest recency score.
func (e Edges) Score(v Values) Score {
	k := max(len(e.Recency)-1, 1)
	return Score{
		R: k + 1 - Bin(e.Recency, v.Recency),
		F: Bin(e.Frequency, v.Frequency),
		M: Bin(e.Monetary, v.Monetary),
	}
}
