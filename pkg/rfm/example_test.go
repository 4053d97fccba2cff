package rfm_test

import (
	"fmt"
	"time"

	"github.com/centric-crm/centric/pkg/rfm"
)

func ExampleSummarize() {
	day := func(s string) time.Time { t, _ := time.Parse("2006-01-02", s); return t }
	txs := []rfm.Transaction[string]{
		{Customer: "ann", Time: day("2024-01-03"), Amount: 20},
		{Customer: "ann", Time: day("2024-01-17"), Amount: 35},
		{Customer: "ann", Time: day("2024-01-17"), Amount: 5}, // same day: one occasion of 40
		{Customer: "bob", Time: day("2024-02-01"), Amount: 12},
	}
	summaries, err := rfm.Summarize(txs, rfm.Options{End: day("2024-02-28"), Unit: rfm.Week})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range summaries {
		fmt.Printf("%s x=%d t_x=%.2f T=%.2f monetary=%.2f\n", s.Customer, s.Frequency, s.Recency, s.T, s.Monetary)
	}
	// Output:
	// ann x=1 t_x=2.00 T=8.00 monetary=40.00
	// bob x=0 t_x=0.00 T=3.86 monetary=0.00
}

func ExampleSegment() {
	day := func(s string) time.Time { t, _ := time.Parse("2006-01-02", s); return t }
	var txs []rfm.Transaction[int]
	for c := 1; c <= 4; c++ {
		for k := 0; k < c; k++ {
			txs = append(txs, rfm.Transaction[int]{Customer: c, Time: day("2024-01-01").AddDate(0, 0, 7*k+c), Amount: float64(10 * c)})
		}
	}
	summaries, _ := rfm.Summarize(txs, rfm.Options{End: day("2024-03-01")})
	assignments, edges, err := rfm.Segment(summaries, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("frequency edges:", edges.Frequency)
	for _, a := range assignments {
		fmt.Println(a.Customer, a.Score, a.Segment)
	}
	// Output:
	// frequency edges: [1 1.75 2.5 3.25 4]
	// 1 111 Inactive Customer
	// 2 222 At Risk Customer
	// 3 333 Premium Customer
	// 4 444 Premium Customer
}
