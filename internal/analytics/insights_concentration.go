package analytics

import (
	"context"
	"fmt"
	"math"

	"github.com/centric-crm/centric/internal/crm"
)

// ValueBasis is what customers are ranked by in a concentration analysis.
type ValueBasis string

// The bases of concentration.
const (
	// BasisNetValue is a customer's historical net revenue: purchases minus refunds in the
	// currency, over all time. Costs are not revenue and do not count. Customers with at
	// least one purchase or refund in the currency are ranked.
	BasisNetValue ValueBasis = "net_value"
	// BasisCLV is a customer's predicted CLV in the currency, from its current scores.
	BasisCLV ValueBasis = "clv"
)

// Defaults and bounds of concentration analyses.
const (
	DefaultLorenzPoints = 20
	MinLorenzPoints     = 2
	MaxLorenzPoints     = 100
)

// ConcentrationQuery asks how concentrated value is. Zero fields take their defaults.
type ConcentrationQuery struct {
	// Basis is what customers are ranked by; default net value.
	Basis ValueBasis
	// Currency is the currency to analyse; default the latest model run's, else the most used
	// purchase currency.
	Currency string
	// Points is the number of points of the Lorenz curve (2–100, default 20).
	Points int
}

// Concentration is how concentrated value is among customers.
//
// Shares and the Gini coefficient are computed on values clipped at zero, so that a customer
// whose refunds exceed its purchases counts as bringing nothing and every share stays within
// [0, 1]; Total is the exact, unclipped sum and may be negative. When no customer brings a
// positive value, every share and the Gini coefficient are 0.
type Concentration struct {
	Basis    ValueBasis
	Currency string
	// Customers counts the ranked customers.
	Customers int
	// Total is the exact total value, rounded to cents (half away from zero).
	Total string
	// Top20Share is the share of value from the top ⌈20% · Customers⌉ customers.
	Top20Share float64
	// Gini is the sample Gini coefficient G = Σᵢ Σⱼ |xᵢ − xⱼ| / (2 n² x̄), which is 0 when
	// everyone brings the same and (n−1)/n when one customer brings everything.
	Gini float64
	// Lorenz is the Lorenz curve from the most valuable customer, at customer shares i/Points
	// for i = 1…Points, linearly interpolated between customers.
	Lorenz []LorenzPoint
}

// LorenzPoint is the share of value brought by the top share of customers.
type LorenzPoint struct {
	CustomerShare float64
	ValueShare    float64
}

// Concentration ranks customers by value and reports how concentrated it is. With basis CLV
// and no score in the currency it returns a NotFound error.
func (s *Insights) Concentration(ctx context.Context, scope crm.Scope, q ConcentrationQuery) (Concentration, error) {
	if q.Basis == "" {
		q.Basis = BasisNetValue
	}
	if q.Points == 0 {
		q.Points = DefaultLorenzPoints
	}
	var fields []crm.FieldError
	if q.Basis != BasisNetValue && q.Basis != BasisCLV {
		fields = append(fields, crm.FieldError{Pointer: "query:basis", Message: "must be one of net_value, clv"})
	}
	if q.Points < MinLorenzPoints || q.Points > MaxLorenzPoints {
		fields = append(fields, crm.FieldError{Pointer: "query:points", Message: fmt.Sprintf("must be between %d and %d", MinLorenzPoints, MaxLorenzPoints)})
	}
	if fields != nil {
		return Concentration{}, crm.Invalid(fields...)
	}
	currency, err := s.currency(ctx, scope, q.Currency)
	if err != nil {
		return Concentration{}, err
	}
	ranked, err := s.store.RankedValues(ctx, scope, q.Basis, currency)
	if err != nil {
		return Concentration{}, fmt.Errorf("rank customers: %w", err)
	}
	if q.Basis == BasisCLV && len(ranked.Values) == 0 {
		return Concentration{}, crm.Errorf(crm.CodeNotFound, "No customer has a CLV score in %s; run a model fit first, or rank by net_value.", currency)
	}
	total, err := parseDecimal(ranked.Total)
	if err != nil {
		return Concentration{}, fmt.Errorf("total value: %w", err)
	}
	out := concentrationOf(ranked.Values, q.Points)
	out.Basis, out.Currency, out.Total = q.Basis, currency, formatCents(total)
	return out, nil
}

// concentrationOf computes the shares, the Gini coefficient and the Lorenz curve of values
// sorted in descending order, clipping negative values at zero. It runs in O(n) time and
// O(points) extra memory.
func concentrationOf(values []float64, points int) Concentration {
	n := len(values)
	out := Concentration{Customers: n, Lorenz: make([]LorenzPoint, points)}
	for i := range out.Lorenz {
		out.Lorenz[i].CustomerShare = float64(i+1) / float64(points)
	}
	top := (n + 4) / 5 // ⌈n/5⌉ customers make the top 20%
	// partial[j] is the clipped value of the top (j+1)/points of customers; the curve is
	// linear across each customer, so point j falls within customer i+1 when
	// i < (j+1)·n/points ≤ i+1.
	partial := make([]float64, points)
	var total, topValue, weighted float64
	next := 0
	for i, v := range values {
		v = math.Max(v, 0)
		for next < points && (next+1)*n <= (i+1)*points {
			frac := float64((next+1)*n-i*points) / float64(points)
			partial[next] = total + frac*v
			next++
		}
		total += v
		weighted += float64(i+1) * v
		if i+1 == top {
			topValue = total
		}
	}
	if n == 0 || total <= 0 {
		return out
	}
	for i := range out.Lorenz {
		out.Lorenz[i].ValueShare = min(partial[i]/total, 1)
	}
	out.Top20Share = topValue / total
	// With x sorted descending, G = (n+1)/n − 2 Σᵢ i·xᵢ / (n · Σ x).
	out.Gini = max(float64(n+1)/float64(n)-2*weighted/(float64(n)*total), 0)
	return out
}
