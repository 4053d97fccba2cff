package btyd

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"github.com/centric-crm/centric/pkg/rfm"
)

// Summary is one customer's purchase history summary in the model's time
// unit.
type Summary struct {
	// Frequency is the number of repeat purchase occasions x (a whole number).
	Frequency float64
	// Recency is the time t_x from the first to the last purchase occasion
	// (0 when Frequency is 0).
	Recency float64
	// T is the time from the first purchase occasion to the observation end.
	T float64
	// Monetary is the mean spend of the repeat occasions (zbar); it is used
	// only by the spend model and ignored by the purchase models.
	Monetary float64
}

// Validate reports whether s is a valid history for the purchase models:
// finite values, a whole non-negative Frequency, 0 ≤ Recency ≤ T, and
// Recency = 0 when Frequency = 0.
func (s Summary) Validate() error {
	if !isFinite(s.Frequency) || !isFinite(s.Recency) || !isFinite(s.T) {
		return errors.New("frequency, recency and T must be finite")
	}
	if s.Frequency < 0 || s.Frequency != math.Trunc(s.Frequency) {
		return fmt.Errorf("frequency must be a non-negative whole number, got %v", s.Frequency)
	}
	if s.Recency < 0 || s.Recency > s.T {
		return fmt.Errorf("recency must lie in [0, T], got recency %v and T %v", s.Recency, s.T)
	}
	if s.Frequency == 0 && s.Recency != 0 {
		return fmt.Errorf("recency must be 0 when frequency is 0, got %v", s.Recency)
	}
	return nil
}

// FromRFM converts RFM summaries (see package rfm) to model summaries.
func FromRFM[K comparable](summaries []rfm.Summary[K]) []Summary {
	out := make([]Summary, len(summaries))
	for i, s := range summaries {
		out[i] = Summary{Frequency: float64(s.Frequency), Recency: s.Recency, T: s.T, Monetary: s.Monetary}
	}
	return out
}

// Data is the input of the purchase-model fits: distinct (x, t_x, T) rows
// with the number of customers that share each row. The service can build
// it directly in SQL (GROUP BY x, t_x, T); [Compress] builds it from
// per-customer summaries.
type Data struct {
	// Unit is the time unit of Recency and T.
	Unit rfm.TimeUnit
	// Rows are the distinct histories; their Monetary field is ignored.
	Rows []Summary
	// Counts are the numbers of customers per row (weights; they need not be
	// whole numbers but must be positive).
	Counts []float64
}

// Customers returns the total count over all rows.
func (d Data) Customers() float64 {
	var n float64
	for _, c := range d.Counts {
		n += c
	}
	return n
}

// Validate checks the unit, that rows and counts have the same length, that
// every row is a valid [Summary] and every count positive and finite.
func (d Data) Validate() error {
	if err := d.Unit.Validate(); err != nil {
		return err
	}
	if len(d.Rows) != len(d.Counts) {
		return fmt.Errorf("%d rows but %d counts", len(d.Rows), len(d.Counts))
	}
	if len(d.Rows) == 0 {
		return errors.New("no rows")
	}
	for i, r := range d.Rows {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("row %d: %w", i, err)
		}
		if !(d.Counts[i] > 0) || math.IsInf(d.Counts[i], 0) {
			return fmt.Errorf("row %d: count must be positive and finite, got %v", i, d.Counts[i])
		}
	}
	return nil
}

// Compress collapses per-customer summaries into distinct (x, t_x, T) rows
// with counts, sorted by x, then t_x, then T. Monetary values are ignored.
func Compress(customers []Summary, unit rfm.TimeUnit) (Data, error) {
	if err := unit.Validate(); err != nil {
		return Data{}, fmt.Errorf("compress: %w", err)
	}
	if len(customers) == 0 {
		return Data{}, errors.New("compress: no customers")
	}
	// Customers without repeat purchases (usually the majority) differ only
	// in T: count them in a small map. Sort the others, which is faster than
	// hashing them: sorting reads memory sequentially where a map of
	// hundreds of thousands of rows misses the cache.
	oneTime := make(map[float64]float64)
	keys := make([]Summary, 0, len(customers))
	for i, c := range customers {
		if err := c.Validate(); err != nil {
			return Data{}, fmt.Errorf("compress: customer %d: %w", i, err)
		}
		if c.Frequency == 0 {
			oneTime[c.T]++
			continue
		}
		keys = append(keys, Summary{Frequency: c.Frequency, Recency: c.Recency, T: c.T})
	}
	d := Data{Unit: unit}
	for _, t := range slices.Sorted(maps.Keys(oneTime)) {
		d.Rows = append(d.Rows, Summary{T: t})
		d.Counts = append(d.Counts, oneTime[t])
	}
	slices.SortFunc(keys, compareHistories)
	for i, k := range keys {
		if i > 0 && k == keys[i-1] {
			d.Counts[len(d.Counts)-1]++
			continue
		}
		d.Rows = append(d.Rows, k)
		d.Counts = append(d.Counts, 1)
	}
	return d, nil
}

func compareHistories(a, b Summary) int {
	if c := cmp.Compare(a.Frequency, b.Frequency); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Recency, b.Recency); c != 0 {
		return c
	}
	return cmp.Compare(a.T, b.T)
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
