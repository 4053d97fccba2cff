package rfm

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestQuantileEdges(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []float64
		want   []float64
	}{
		// numpy.quantile([1, 37, 33, 2, 20, 5], [0, .25, .5, .75, 1]).
		{"distinct", []float64{1, 37, 33, 2, 20, 5}, []float64{1, 2.75, 12.5, 29.75, 37}},
		// [1, 1, 2, 3, 3, 3] gives 1, 1.25, 2.5, 3, 3: the duplicate 3 is dropped.
		{"duplicate edge dropped", []float64{2, 1, 3, 3, 3, 1}, []float64{1, 1.25, 2.5, 3}},
		{"single value", []float64{4, 4, 4}, []float64{4}},
		{"one element", []float64{7}, []float64{7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := QuantileEdges(tc.values, Quartiles)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("QuantileEdges(%v) mismatch (-want +got):\n%s", tc.values, diff)
			}
		})
	}
	if _, err := QuantileEdges(nil, 4); err == nil {
		t.Error("QuantileEdges(nil) error = nil, want an error")
	}
}

func TestBin(t *testing.T) {
	t.Parallel()
	edges := []float64{1, 2.75, 12.5, 29.75, 37}
	tests := []struct {
		v    float64
		want int
	}{
		{1, 1}, {2, 1}, {2.75, 1}, {2.76, 2}, {12.5, 2}, {20, 3}, {29.75, 3}, {33, 4}, {37, 4},
		{0, 1}, {100, 4},
	}
	for _, tc := range tests {
		if got := Bin(edges, tc.v); got != tc.want {
			t.Errorf("Bin(%v, %v) = %d, want %d", edges, tc.v, got, tc.want)
		}
	}
	if got := Bin([]float64{5}, 5); got != 1 {
		t.Errorf("Bin with one edge = %d, want 1", got)
	}
}

// TestSegmentGolden is the RFM golden case of analytics-anchors.md.
func TestSegmentGolden(t *testing.T) {
	t.Parallel()
	txs := append(lifetimesFixture(), Transaction[int]{Customer: 4, Time: date("2015-02-05"), Amount: 6})
	summaries, err := Summarize(txs, Options{End: date("2015-02-07"), Unit: Day})
	if err != nil {
		t.Fatal(err)
	}
	got, edges, err := Segment(summaries, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(edges.Frequency) - 1; n != 3 {
		t.Errorf("frequency bins = %d, want 3 (a duplicate quantile edge is dropped)", n)
	}
	want := map[int]string{
		1: "421 Other", 2: "111 Inactive Customer", 3: "132 At Risk Customer",
		4: "434 Premium Customer", 5: "233 Repeat Customer", 6: "314 Top Spender",
	}
	for _, a := range got {
		if g := fmt.Sprintf("%s %s", a.Score, a.Segment); g != want[a.Customer] {
			t.Errorf("customer %d: got %q, want %q (values %+v)", a.Customer, g, want[a.Customer], a.Values)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d assignments, want %d", len(got), len(want))
	}
}

func TestSegmenter(t *testing.T) {
	t.Parallel()
	seg, err := NewSegmenter([]SegmentRule{{"Champions", []string{"444"}}}, "Rest")
	if err != nil {
		t.Fatal(err)
	}
	if got := seg.Segment(Score{4, 4, 4}); got != "Champions" {
		t.Errorf("Segment(444) = %q, want Champions", got)
	}
	if got := seg.Segment(Score{1, 4, 4}); got != "Rest" {
		t.Errorf("Segment(144) = %q, want Rest", got)
	}
	bad := [][]SegmentRule{
		{{"A", []string{"44"}}},
		{{"A", []string{"404"}}},
		{{"A", []string{"444"}}, {"B", []string{"444"}}},
		{{"", []string{"444"}}},
	}
	for _, rules := range bad {
		if _, err := NewSegmenter(rules, "Other"); err == nil {
			t.Errorf("NewSegmenter(%v) error = nil, want an error", rules)
		}
	}
	def := DefaultSegmenter()
	count := 0
	for _, r := range DefaultSegmentRules() {
		for _, s := range r.Scores {
			sc, _ := ParseScore(s)
			if got := def.Segment(sc); got != r.Name {
				t.Errorf("default Segment(%s) = %q, want %q", s, got, r.Name)
			}
			count++
		}
	}
	if count != 46 {
		t.Errorf("default map lists %d scores, want 46", count)
	}
}
