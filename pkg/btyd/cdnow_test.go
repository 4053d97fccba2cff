package btyd

import (
	"bufio"
	"encoding/csv"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/centric-crm/centric/pkg/rfm"
)

// cdnowDir is the CDNOW data folder of the shared tree, which sits beside the
// repository clone.
const cdnowDir = "../../../shared/data/cdnow"

// cdnowEnd is the end of the CDNOW calibration period (weeks 1–39).
const cdnowEnd = "1997-09-30"

// requireData returns the path of a CDNOW file. It skips the test when the
// shared folder is absent, except under CI (env CI non-empty), where missing
// data is a failure.
func requireData(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(cdnowDir, name)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) && os.Getenv("CI") == "" {
			t.Skipf("CDNOW data not found at %s (the shared folder beside the repository); skipping", path)
		}
		t.Fatalf("CDNOW data: %v", err)
	}
	return path
}

// cdnowCustomer is one row of the rebuilt CDNOW calibration summary.
type cdnowCustomer struct {
	id      int
	summary Summary
}

// cdnowCache holds the CDNOW summary, built once per test binary.
type cdnowCache struct {
	once      sync.Once
	customers []cdnowCustomer
	err       error
}

// loadCDNOW builds the weekly CDNOW calibration summary from CDNOW_sample.txt
// with package rfm: same-day purchases collapse, unit = week, end 1997-09-30.
func (c *cdnowCache) load(t testing.TB) []cdnowCustomer {
	t.Helper()
	path := requireData(t, "CDNOW_sample.txt")
	c.once.Do(func() { c.customers, c.err = buildCDNOW(path) })
	if c.err != nil {
		t.Fatalf("build CDNOW summary: %v", c.err)
	}
	return c.customers
}

func buildCDNOW(path string) ([]cdnowCustomer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var txs []rfm.Transaction[int]
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 5 {
			return nil, errors.New("CDNOW_sample.txt: want 5 fields per line")
		}
		id, err := strconv.Atoi(fields[1])
		if err != nil {
			return nil, err
		}
		day, err := time.Parse("20060102", fields[2])
		if err != nil {
			return nil, err
		}
		amount, err := strconv.ParseFloat(fields[4], 64)
		if err != nil {
			return nil, err
		}
		txs = append(txs, rfm.Transaction[int]{Customer: id, Time: day, Amount: amount})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	end, _ := time.Parse("2006-01-02", cdnowEnd)
	summaries, err := rfm.Summarize(txs, rfm.Options{End: end, Unit: rfm.Week})
	if err != nil {
		return nil, err
	}
	out := make([]cdnowCustomer, len(summaries))
	for i, s := range summaries {
		out[i] = cdnowCustomer{id: s.Customer, summary: FromRFM([]rfm.Summary[int]{s})[0]}
	}
	return out, nil
}

// cdnowData returns the CDNOW summary compressed for fitting.
func cdnowData(t testing.TB) Data {
	t.Helper()
	customers := cdnow.load(t)
	s := make([]Summary, len(customers))
	for i, c := range customers {
		s[i] = c.summary
	}
	d, err := Compress(s, rfm.Week)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// readReferenceSummary reads cdnow_customers_summary_with_transactions.csv:
// ID, x, t_x, T, zbar.
func readReferenceSummary(t testing.TB) map[int]Summary {
	t.Helper()
	f, err := os.Open(requireData(t, "cdnow_customers_summary_with_transactions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[int]Summary)
	for _, rec := range records[1:] {
		var v [5]float64
		for i := range v {
			if v[i], err = strconv.ParseFloat(rec[i], 64); err != nil {
				t.Fatal(err)
			}
		}
		out[int(v[0])] = Summary{Frequency: v[1], Recency: v[2], T: v[3], Monetary: v[4]}
	}
	return out
}

// cdnow is the per-binary cache of the rebuilt CDNOW summary.
var cdnow cdnowCache

func approx(got, want, tol float64) bool { return math.Abs(got-want) <= tol }
