// Command gensync generates the data for bench/sync.sh: a partner's distributor, its dealers and
// their end customers as POST /v1/customers/batch bodies, matched on the partner's external
// references, plus the same data again, a 1% delta, and the full data with that delta in it.
//
//	go run ./bench/cmd/gensync -out DIR [-records 100000] [-batch 1000] [-dealers 1000] [-delta 0.01]
//
// It writes into DIR:
//
//	initial/NNN.json   every record once; the first batch holds the distributor and the dealers
//	                   (dealers name the distributor by parent_ref within the batch), the others
//	                   end customers naming their dealer by parent_ref
//	delta/NNN.json     only the changed records (a new email and tag on delta × customers)
//	mixed/NNN.json     every record again, with that delta and a second one (a new phone on
//	                   another delta × customers) applied
//
// Re-sending initial/ is the unchanged pass; after delta/, mixed/ updates exactly the customers
// of the second delta. The output is deterministic for a given -seed.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gensync:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gensync", flag.ContinueOnError)
	out := fs.String("out", "", "output directory (created if missing)")
	records := fs.Int("records", 100000, "distributor, dealers and customers in all")
	batch := fs.Int("batch", 1000, "items per batch")
	dealers := fs.Int("dealers", 999, "dealers under the distributor")
	delta := fs.Float64("delta", 0.01, "share of customers changed in the delta")
	source := fs.String("source", "northwind-erp", "the partner's external source")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *dealers+1 > *batch || *records <= *dealers+1 || *batch < 1 || *batch > 1000 {
		return errors.New("need -out, 1 <= -batch <= 1000, -dealers + 1 <= -batch and more -records than dealers")
	}
	rng := rand.New(rand.NewPCG(*seed, 7))
	ref := func(id string) map[string]any { return map[string]any{"source": *source, "external_id": id} }

	items := make([]map[string]any, 0, *records)
	items = append(items, map[string]any{"external_ref": ref("DIST"), "kind": "business", "role": "distributor", "name": "Northwind Distribution"})
	for d := 1; d <= *dealers; d++ {
		items = append(items, map[string]any{
			"external_ref": ref(fmt.Sprintf("D-%04d", d)), "kind": "business", "role": "dealer",
			"name": fmt.Sprintf("Northwind Dealer %d", d), "country": "GB", "parent_ref": ref("DIST"),
		})
	}
	for c := 1; len(items) < *records; c++ {
		dealer := 1 + rng.IntN(*dealers)
		items = append(items, map[string]any{
			"external_ref": ref(fmt.Sprintf("C-%06d", c)), "kind": "consumer",
			"name": fmt.Sprintf("Customer %d", c), "email": fmt.Sprintf("customer%d@example.com", c),
			"country": "GB", "tags": []string{"synced"}, "attributes": map[string]any{"tier": rng.IntN(4)},
			"acquisition_cost": map[string]any{"amount": fmt.Sprintf("%d.%02d", 5+rng.IntN(200), rng.IntN(100)), "currency": "EUR"},
			"parent_ref":       ref(fmt.Sprintf("D-%04d", dealer)),
		})
	}
	if err := writeBatches(filepath.Join(*out, "initial"), items, *batch); err != nil {
		return err
	}

	customers := *records - *dealers - 1
	changed := int(float64(customers)**delta + 0.5)
	picked := rng.Perm(customers)[:changed]
	mixed := make([]map[string]any, len(items))
	copy(mixed, items)
	deltaItems := make([]map[string]any, 0, changed)
	for _, p := range picked {
		i := *dealers + 1 + p
		item := make(map[string]any, len(items[i]))
		for k, v := range items[i] {
			item[k] = v
		}
		item["email"] = fmt.Sprintf("moved%d@example.net", p)
		item["tags"] = []string{"synced", "changed"}
		mixed[i] = item
		deltaItems = append(deltaItems, item)
	}
	if err := writeBatches(filepath.Join(*out, "delta"), deltaItems, *batch); err != nil {
		return err
	}
	for _, p := range rng.Perm(customers)[:changed] {
		i := *dealers + 1 + p
		item := make(map[string]any, len(mixed[i]))
		for k, v := range mixed[i] {
			item[k] = v
		}
		item["phone"] = fmt.Sprintf("+44 20 7946 %04d", p%10000)
		mixed[i] = item
	}
	return writeBatches(filepath.Join(*out, "mixed"), mixed, *batch)
}

func writeBatches(dir string, items []map[string]any, size int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for start, n := 0, 1; start < len(items); start, n = start+size, n+1 {
		b, err := json.Marshal(map[string]any{"items": items[start:min(start+size, len(items))]})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%03d.json", n)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
