package rfm

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Transaction is one purchase (or refund, with a negative amount) of a
// customer identified by a key of type K.
type Transaction[K comparable] struct {
	Customer K
	Time     time.Time
	Amount   float64
}

// Summary is the RFM summary of one customer at an observation end.
type Summary[K comparable] struct {
	// Customer identifies the customer.
	Customer K
	// Frequency is the number of repeat purchase occasions (occasions − 1).
	Frequency int
	// Recency is the time from the first to the last occasion, in the unit
	// of the summary.
	Recency float64
	// T is the time from the first occasion to the observation end, in the
	// unit of the summary.
	T float64
	// Monetary is the mean amount of the repeat occasions, or 0 when
	// Frequency is 0. The first occasion is excluded, as the Gamma-Gamma
	// spend model requires.
	Monetary float64
	// Total is the sum of the amounts of all occasions, the first included.
	Total float64
}

// Occasions returns the number of purchase occasions, the first included.
func (s Summary[K]) Occasions() int { return s.Frequency + 1 }

// Values returns the inputs of RFM scoring: the time since the last occasion
// (T − Recency), the number of occasions and the mean amount of all
// occasions, the first included (pymc-marketing's rfm_summary with
// include_first_transaction=True).
func (s Summary[K]) Values() Values {
	n := float64(s.Occasions())
	return Values{Recency: s.T - s.Recency, Frequency: n, Monetary: s.Total / n}
}

// Options configures [Summarize].
type Options struct {
	// End is the end of the observation period. Calendar days are taken in
	// End's location; transactions on a later calendar day are ignored.
	End time.Time
	// Unit is the time unit of Recency and T. The zero value means Day.
	Unit TimeUnit
}

// occasion is one purchase occasion of one customer during summarisation.
type occasion struct {
	customer int32
	day      int64
	amount   float64
}

// Summarize computes the RFM summary of every customer that has at least one
// transaction on or before the observation end.
//
// Purchases on the same calendar day (in the location of opts.End) are one
// occasion whose amount is the sum of that day's amounts; the unit only
// scales Recency and T (as lifetimes' freq="D" with a frequency multiplier).
// The first occasion is the earliest one whatever the input order. Summaries
// are returned in the order in which customers first appear in txs.
func Summarize[K comparable](txs []Transaction[K], opts Options) ([]Summary[K], error) {
	unit := opts.Unit
	if unit == 0 {
		unit = Day
	}
	if err := unit.Validate(); err != nil {
		return nil, fmt.Errorf("summarize: %w", err)
	}
	if opts.End.IsZero() {
		return nil, errors.New("summarize: observation end is required")
	}
	loc := opts.End.Location()
	endDay := civilDay(opts.End, loc)

	index := make(map[K]int32)
	var customers []K
	occasions := make([]occasion, 0, len(txs))
	for i, tx := range txs {
		if math.IsNaN(tx.Amount) || math.IsInf(tx.Amount, 0) {
			return nil, fmt.Errorf("summarize: transaction %d: amount is not finite", i)
		}
		if tx.Time.IsZero() {
			return nil, fmt.Errorf("summarize: transaction %d: time is missing", i)
		}
		day := civilDay(tx.Time, loc)
		if day > endDay {
			continue
		}
		id, ok := index[tx.Customer]
		if !ok {
			if len(customers) == math.MaxInt32 {
				return nil, errors.New("summarize: too many customers")
			}
			id = int32(len(customers))
			index[tx.Customer] = id
			customers = append(customers, tx.Customer)
		}
		occasions = append(occasions, occasion{customer: id, day: day, amount: tx.Amount})
	}
	slices.SortFunc(occasions, func(a, b occasion) int {
		if c := cmp.Compare(a.customer, b.customer); c != 0 {
			return c
		}
		return cmp.Compare(a.day, b.day)
	})

	days := unit.Days()
	out := make([]Summary[K], len(customers))
	for i := 0; i < len(occasions); {
		c := occasions[i].customer
		first := occasions[i].day
		last := first
		n := 0
		var total, repeat float64
		for i < len(occasions) && occasions[i].customer == c {
			day := occasions[i].day
			var amount float64
			for i < len(occasions) && occasions[i].customer == c && occasions[i].day == day {
				amount += occasions[i].amount
				i++
			}
			if n > 0 {
				repeat += amount
			}
			n++
			total += amount
			last = day
		}
		s := Summary[K]{
			Customer:  customers[c],
			Frequency: n - 1,
			Recency:   float64(last-first) / days,
			T:         float64(endDay-first) / days,
			Total:     total,
		}
		if n > 1 {
			s.Monetary = repeat / float64(n-1)
		}
		out[c] = s
	}
	return out, nil
}

// civilDay returns the number of days from 1970-01-01 to t's calendar date in
// loc.
func civilDay(t time.Time, loc *time.Location) int64 {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}
