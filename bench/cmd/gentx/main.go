// Command gentx generates the data for bench/batch_ingest.sh: the same transactions as JSON
// request bodies for the API (POST /v1/customers, POST /v1/transactions/batch) and as CSV files
// for a raw PostgreSQL COPY, so both paths load identical content.
//
//	go run ./bench/cmd/gentx -out DIR [-customers 1000] [-transactions 100000] [-batches 10]
//
// It writes into DIR:
//
//	customers/NNNNN.json   one POST /v1/customers body per customer
//	batch-NN.json          one POST /v1/transactions/batch body per batch (customer_ref items)
//	customers.csv          id,kind,name,external_refs,created_at,updated_at
//	customer_refs.csv      external_id,source,customer_id
//	transactions.csv       customer_id,id,type,occurred_at,amount,currency,source,external_id,metadata,created_at
//
// The output is deterministic for a given -seed, apart from the ids of the CSV rows.
package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gentx:", err)
		os.Exit(1)
	}
}

type config struct {
	out          string
	customers    int
	transactions int
	batches      int
	source       string
	seed         uint64
}

func run(args []string) error {
	var c config
	fs := flag.NewFlagSet("gentx", flag.ContinueOnError)
	fs.StringVar(&c.out, "out", "", "output directory (created if missing)")
	fs.IntVar(&c.customers, "customers", 1000, "number of customers")
	fs.IntVar(&c.transactions, "transactions", 100000, "number of transactions")
	fs.IntVar(&c.batches, "batches", 10, "number of batch request bodies")
	fs.StringVar(&c.source, "source", "bench", "external source of customers and transactions")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case c.out == "":
		return errors.New("-out is required")
	case c.customers < 1 || c.transactions < 1 || c.batches < 1:
		return errors.New("-customers, -transactions and -batches must be positive")
	case c.transactions%c.batches != 0:
		return fmt.Errorf("-transactions %d is not a multiple of -batches %d", c.transactions, c.batches)
	case c.transactions/c.batches > 10000:
		return fmt.Errorf("%d items per batch exceeds the API's limit of 10000", c.transactions/c.batches)
	}
	if err := os.MkdirAll(filepath.Join(c.out, "customers"), 0o755); err != nil {
		return err
	}
	now := time.Now().UTC()
	rng := rand.New(rand.NewPCG(c.seed, c.seed^0x9e3779b97f4a7c15))
	ids := make([]string, c.customers)
	for i := range ids {
		ids[i] = uuidV7(now, rng)
	}
	if err := writeCustomers(c, ids, now); err != nil {
		return fmt.Errorf("write customers: %w", err)
	}
	if err := writeTransactions(c, ids, now, rng); err != nil {
		return fmt.Errorf("write transactions: %w", err)
	}
	return nil
}

// ref is an external reference, as in the API's ExternalRef.
type ref struct {
	Source     string `json:"source"`
	ExternalID string `json:"external_id"`
}

type customerCreate struct {
	Kind         string `json:"kind"`
	Name         string `json:"name"`
	ExternalRefs []ref  `json:"external_refs"`
}

type transactionCreate struct {
	CustomerRef ref    `json:"customer_ref"`
	Type        string `json:"type"`
	OccurredAt  string `json:"occurred_at"`
	Amount      string `json:"amount"`
	Currency    string `json:"currency"`
	Source      string `json:"source"`
	ExternalID  string `json:"external_id"`
}

type batchRequest struct {
	Items           []transactionCreate `json:"items"`
	AllOrNone       bool                `json:"all_or_none"`
	CreateCustomers bool                `json:"create_customers"`
}

func customerRef(c config, i int) ref {
	return ref{Source: c.source, ExternalID: "c-" + strconv.Itoa(i+1)}
}

func writeCustomers(c config, ids []string, now time.Time) error {
	csvFile, err := newCSV(filepath.Join(c.out, "customers.csv"))
	if err != nil {
		return err
	}
	refFile, err := newCSV(filepath.Join(c.out, "customer_refs.csv"))
	if err != nil {
		return err
	}
	ts := now.Format(time.RFC3339Nano)
	for i, id := range ids {
		body := customerCreate{Kind: "consumer", Name: fmt.Sprintf("Bench Customer %d", i+1), ExternalRefs: []ref{customerRef(c, i)}}
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(c.out, "customers", fmt.Sprintf("%05d.json", i+1)), b, 0o644); err != nil {
			return err
		}
		refs, err := json.Marshal(body.ExternalRefs)
		if err != nil {
			return err
		}
		csvFile.write(id, body.Kind, body.Name, string(refs), ts, ts)
		refFile.write(body.ExternalRefs[0].ExternalID, c.source, id)
	}
	return errors.Join(csvFile.close(), refFile.close())
}

func writeTransactions(c config, ids []string, now time.Time, rng *rand.Rand) error {
	txFile, err := newCSV(filepath.Join(c.out, "transactions.csv"))
	if err != nil {
		return err
	}
	perBatch := c.transactions / c.batches
	start := now.AddDate(-2, 0, 0).Truncate(time.Second)
	span := int64(now.Sub(start) / time.Second)
	created := now.Format(time.RFC3339Nano)
	for b := range c.batches {
		req := batchRequest{Items: make([]transactionCreate, 0, perBatch), CreateCustomers: true}
		for k := range perBatch {
			n := b*perBatch + k
			cust := rng.IntN(len(ids))
			t := transactionCreate{
				CustomerRef: customerRef(c, cust),
				Type:        txType(rng),
				OccurredAt:  start.Add(time.Duration(rng.Int64N(span)) * time.Second).Format(time.RFC3339),
				Amount:      fmt.Sprintf("%d.%02d", 1+rng.IntN(500), rng.IntN(100)),
				Currency:    "EUR",
				Source:      c.source,
				ExternalID:  "t-" + strconv.Itoa(n+1),
			}
			req.Items = append(req.Items, t)
			txFile.write(ids[cust], uuidV7(now, rng), t.Type, t.OccurredAt, t.Amount, t.Currency, t.Source, t.ExternalID, "{}", created)
		}
		body, err := json.Marshal(req)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(c.out, fmt.Sprintf("batch-%02d.json", b+1)), body, 0o644); err != nil {
			return err
		}
	}
	return txFile.close()
}

// txType draws a transaction type: mostly purchases, some refunds and costs.
func txType(rng *rand.Rand) string {
	switch p := rng.IntN(100); {
	case p < 90:
		return "purchase"
	case p < 95:
		return "refund"
	default:
		return "cost"
	}
}

// uuidV7 returns a random UUIDv7 (RFC 9562) for time t.
func uuidV7(t time.Time, rng *rand.Rand) string {
	var u [16]byte
	ms := uint64(t.UnixMilli())
	for i := range 6 {
		u[i] = byte(ms >> (40 - 8*i))
	}
	hi, lo := rng.Uint64(), rng.Uint64()
	for i := range 2 {
		u[6+i] = byte(hi >> (8 * i))
	}
	for i := range 8 {
		u[8+i] = byte(lo >> (8 * i))
	}
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // variant 10
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// csvFile is a buffered CSV writer that remembers its first error.
type csvFile struct {
	f *os.File
	b *bufio.Writer
	w *csv.Writer
}

func newCSV(path string) (*csvFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	b := bufio.NewWriterSize(f, 1<<20)
	return &csvFile{f: f, b: b, w: csv.NewWriter(b)}, nil
}

func (c *csvFile) write(fields ...string) { _ = c.w.Write(fields) } // the error is kept by csv.Writer

func (c *csvFile) close() error {
	c.w.Flush()
	return errors.Join(c.w.Error(), c.b.Flush(), c.f.Close())
}
