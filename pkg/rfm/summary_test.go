package rfm

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func date(s string) time.Time {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		panic(err)
	}
	return t
}

// lifetimesFixture is the transaction fixture of lifetimes' summary tests
// (analytics-anchors.md, "Summary (RFM) fixtures").
func lifetimesFixture() []Transaction[int] {
	rows := []struct {
		customer int
		day      string
		amount   float64
	}{
		{1, "2015-01-01", 1}, {1, "2015-02-06", 2}, {2, "2015-01-01", 2}, {3, "2015-01-01", 3},
		{3, "2015-01-02", 1}, {3, "2015-01-05", 5}, {4, "2015-01-16", 6}, {4, "2015-02-02", 3},
		{4, "2015-02-05", 3}, {5, "2015-01-16", 3}, {5, "2015-01-17", 1}, {5, "2015-01-18", 8},
		{6, "2015-02-02", 5},
	}
	txs := make([]Transaction[int], len(rows))
	for i, r := range rows {
		txs[i] = Transaction[int]{Customer: r.customer, Time: date(r.day), Amount: r.amount}
	}
	return txs
}

func TestSummarizeLifetimesFixture(t *testing.T) {
	t.Parallel()
	got, err := Summarize(lifetimesFixture(), Options{End: date("2015-02-07"), Unit: Day})
	if err != nil {
		t.Fatal(err)
	}
	want := []Summary[int]{
		{Customer: 1, Frequency: 1, Recency: 36, T: 37, Monetary: 2, Total: 3},
		{Customer: 2, Frequency: 0, Recency: 0, T: 37, Monetary: 0, Total: 2},
		{Customer: 3, Frequency: 2, Recency: 4, T: 37, Monetary: 3, Total: 9},
		{Customer: 4, Frequency: 2, Recency: 20, T: 22, Monetary: 3, Total: 12},
		{Customer: 5, Frequency: 2, Recency: 2, T: 22, Monetary: 4.5, Total: 12},
		{Customer: 6, Frequency: 0, Recency: 0, T: 5, Monetary: 0, Total: 5},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Summarize mismatch (-want +got):\n%s", diff)
	}
}

func TestSummarizeRules(t *testing.T) {
	t.Parallel()
	end := date("2020-01-31")
	tests := []struct {
		name string
		txs  []Transaction[string]
		unit TimeUnit
		want []Summary[string]
	}{
		{
			name: "first purchase is the earliest whatever the order",
			txs: []Transaction[string]{
				{"c", date("2020-01-20"), 25}, {"c", date("2020-01-10"), 10}, {"c", date("2020-01-15"), 20},
			},
			unit: Day,
			want: []Summary[string]{{Customer: "c", Frequency: 2, Recency: 10, T: 21, Monetary: 22.5, Total: 55}},
		},
		{
			name: "same-day purchases collapse and their amounts add up",
			txs: []Transaction[string]{
				{"c", date("2020-01-01"), 5}, {"c", date("2020-01-08").Add(9 * time.Hour), 7},
				{"c", date("2020-01-08").Add(17 * time.Hour), -2},
			},
			unit: Week,
			want: []Summary[string]{{Customer: "c", Frequency: 1, Recency: 1, T: 30.0 / 7, Monetary: 5, Total: 10}},
		},
		{
			name: "transactions after the end are ignored",
			txs: []Transaction[string]{
				{"a", date("2020-01-31").Add(23 * time.Hour), 1}, {"a", date("2020-02-01"), 9},
				{"b", date("2020-02-03"), 4},
			},
			unit: Day,
			want: []Summary[string]{{Customer: "a", Frequency: 0, Recency: 0, T: 0, Monetary: 0, Total: 1}},
		},
		{
			name: "zero unit means days",
			txs:  []Transaction[string]{{"a", date("2020-01-01"), 1}, {"a", date("2020-01-02"), 3}},
			want: []Summary[string]{{Customer: "a", Frequency: 1, Recency: 1, T: 30, Monetary: 3, Total: 4}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Summarize(tc.txs, Options{End: end, Unit: tc.unit})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
				t.Errorf("Summarize mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummarizeErrors(t *testing.T) {
	t.Parallel()
	ok := []Transaction[int]{{1, date("2020-01-01"), 1}}
	tests := []struct {
		name string
		txs  []Transaction[int]
		opts Options
	}{
		{"missing end", ok, Options{}},
		{"negative unit", ok, Options{End: date("2020-02-01"), Unit: -1}},
		{"NaN amount", []Transaction[int]{{1, date("2020-01-01"), math.NaN()}}, Options{End: date("2020-02-01")}},
		{"missing time", []Transaction[int]{{1, time.Time{}, 1}}, Options{End: date("2020-02-01")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Summarize(tc.txs, tc.opts); err == nil {
				t.Errorf("Summarize(%s) error = nil, want an error", tc.name)
			}
		})
	}
}

func TestSummarizeOrderIndependent(t *testing.T) {
	t.Parallel()
	txs := lifetimesFixture()
	want, err := Summarize(txs, Options{End: date("2015-02-07")})
	if err != nil {
		t.Fatal(err)
	}
	byCustomer := func(s []Summary[int]) map[int]Summary[int] {
		m := make(map[int]Summary[int])
		for _, x := range s {
			m[x.Customer] = x
		}
		return m
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		rng.Shuffle(len(txs), func(i, j int) { txs[i], txs[j] = txs[j], txs[i] })
		got, err := Summarize(txs, Options{End: date("2015-02-07")})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(byCustomer(want), byCustomer(got)); diff != "" {
			t.Fatalf("shuffled input changed the summary (-want +got):\n%s", diff)
		}
	}
}

// FuzzSummarize checks invariants of the summary on arbitrary transactions.
func FuzzSummarize(f *testing.F) {
	f.Add([]byte{1, 10, 3, 1, 12, 4, 2, 200, 7})
	f.Add([]byte{0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		end := date("2021-01-01")
		var txs []Transaction[byte]
		for i := 0; i+2 < len(data); i += 3 {
			day := time.Duration(data[i+1]) * 24 * time.Hour
			txs = append(txs, Transaction[byte]{
				Customer: data[i] % 8,
				Time:     end.Add(-200*24*time.Hour + day),
				Amount:   float64(int8(data[i+2])),
			})
		}
		got, err := Summarize(txs, Options{End: end, Unit: Week})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			if s.Frequency < 0 || s.Recency < 0 || s.Recency > s.T || s.T < 0 {
				t.Fatalf("invalid summary %+v", s)
			}
			if s.Frequency == 0 && (s.Recency != 0 || s.Monetary != 0) {
				t.Fatalf("one-occasion customer with recency or monetary: %+v", s)
			}
			if math.IsNaN(s.Monetary) || math.IsNaN(s.Total) {
				t.Fatalf("NaN in %+v", s)
			}
			v := s.Values()
			if v.Frequency != float64(s.Frequency+1) || v.Recency < 0 {
				t.Fatalf("Values() = %+v for %+v", v, s)
			}
		}
	})
}
