package analytics_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/postgres"
	"github.com/centric-crm/centric/internal/postgres/pgtest"
	"github.com/centric-crm/centric/pkg/btyd"
	"github.com/centric-crm/centric/pkg/rfm"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openDB opens a fresh migrated database with a pool of maxConns connections.
func openDB(t *testing.T, maxConns int) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(t.Context(), pgtest.DSN(t), postgres.Options{MaxConns: maxConns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestScheduledRefit checks that a service with a refit interval queues and runs a refit with
// the latest run's settings once that run is older than the interval.
func TestScheduledRefit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openDB(t, 4)
	v := crm.NewValidator()
	customers := postgres.NewCustomerStore(db)
	svc := analytics.NewService(postgres.NewAnalyticsStore(db, 2), slog.New(slog.DiscardHandler), time.Now, time.Millisecond)
	txs := crm.NewTransactionService(postgres.NewTransactionStore(db), customers, svc, v, time.Now)
	items := simulatedPurchases(t, 300, time.Now().UTC())
	results, err := txs.Record(ctx, crm.Scope{}, items, crm.RecordOptions{CreateCustomers: true, AllOrNone: true})
	if err != nil || len(results) != len(items) {
		t.Fatalf("record: %v", err)
	}
	first, err := svc.StartRun(ctx, analytics.RunSettings{Model: analytics.ModelMBGNBD, Unit: analytics.UnitDay})
	if err != nil {
		t.Fatal(err)
	}
	startWorker(t, svc)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		runs, _, err := svc.ListRuns(ctx, crm.PageRequest{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var refit *analytics.Run
		for i := range runs {
			if runs[i].ID != first.ID && runs[i].Status == analytics.RunSucceeded {
				refit = &runs[i]
			}
		}
		if refit != nil {
			if refit.Model != analytics.ModelMBGNBD || refit.Unit != analytics.UnitDay || refit.Currency != "EUR" {
				t.Errorf("refit settings = %+v, want those of the first run", refit.RunSettings)
			}
			if refit.Result.ScoredCustomers != 300 {
				t.Errorf("refit scored %d customers, want 300", refit.Result.ScoredCustomers)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	runs, _, _ := svc.ListRuns(ctx, crm.PageRequest{Limit: 10})
	for _, r := range runs {
		t.Logf("run %s %s %+v", r.ID, r.Status, r.Error)
	}
	t.Fatal("no scheduled refit ran")
}

// TestFailInterruptedRunsSparesRunsInProgress checks that a worker starting up fails a run left
// running by a stopped process, but not one another process is executing (it holds the run's
// lock).
func TestFailInterruptedRunsSparesRunsInProgress(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openDB(t, 4)
	store := postgres.NewAnalyticsStore(db, 2)
	svc := analytics.NewService(store, slog.New(slog.DiscardHandler), time.Now, 0)
	queued, err := svc.StartRun(ctx, analytics.RunSettings{Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	running, err := store.ClaimRun(ctx, time.Now().UTC())
	if err != nil || running == nil || running.ID != queued.ID {
		t.Fatalf("claim = %v, %v", running, err)
	}
	executing, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := executing.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))`, running.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.FailInterruptedRuns(ctx, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if r, err := store.Run(ctx, running.ID); err != nil || r.Status != analytics.RunRunning {
		t.Errorf("a run in progress elsewhere became %v (%v)", r.Status, err)
	}
	if err := executing.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := store.FailInterruptedRuns(ctx, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if r, err := store.Run(ctx, running.ID); err != nil || r.Status != analytics.RunFailed || r.Error.Code != "interrupted" {
		t.Errorf("an abandoned run is %v %+v (%v), want failed/interrupted", r.Status, r.Error, err)
	}
}

// startWorker runs svc's worker until the test ends.
func startWorker(t *testing.T, svc *analytics.Service) {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		svc.Work(ctx)
	}()
	t.Cleanup(func() {
		stop()
		<-done
	})
}

// simulatedPurchases draws customers' purchases over the last year from the models' own
// processes (daily BG/NBD and Gamma-Gamma with typical parameters), seeded.
func simulatedPurchases(t *testing.T, customers int, now time.Time) []crm.Transaction {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	model, err := btyd.NewBGNBD(btyd.BetaGeoParams{R: 0.8, Alpha: 20, A: 0.8, B: 2.4}, rfm.Day)
	if err != nil {
		t.Fatal(err)
	}
	spend, err := btyd.NewGammaGamma(btyd.GammaGammaParams{P: 6, Q: 4, Gamma: 15})
	if err != nil {
		t.Fatal(err)
	}
	var items []crm.Transaction
	for c := range customers {
		h, err := model.SimulateHistory(rng, float64(rng.IntN(300)), 365)
		if err != nil {
			t.Fatal(err)
		}
		if err := spend.SimulateSpend(rng, &h); err != nil {
			t.Fatal(err)
		}
		for i, day := range h.Purchases {
			items = append(items, crm.Transaction{
				CustomerRef: &crm.ExternalRef{Source: "test", ExternalID: fmt.Sprint(c)},
				Type:        crm.TypePurchase, OccurredAt: now.Add(time.Duration((day - 365) * float64(24*time.Hour))),
				Amount: fmt.Sprintf("%.2f", max(h.Amounts[i], 0.01)), Currency: "EUR",
			})
		}
	}
	return items
}

func TestChurnBand(t *testing.T) {
	t.Parallel()
	for risk, want := range map[float64]string{0: "low", 0.29: "low", 0.3: "medium", 0.69: "medium", 0.7: "high", 1: "high"} {
		if got := analytics.ChurnBand(risk); got != want {
			t.Errorf("ChurnBand(%v) = %q, want %q", risk, got, want)
		}
	}
}

// refreshHook runs during on the first full refresh after it is armed, while the refresh
// holds its snapshot's summaries and before it writes the scores.
type refreshHook struct {
	analytics.Store
	armed  atomic.Bool
	during func()
}

func (h *refreshHook) RefreshScores(ctx context.Context, q analytics.RefreshQuery, score func([]analytics.SummaryRow) ([]analytics.ScoreRow, error)) (analytics.RefreshStats, error) {
	if q.CustomerIDs == nil && h.armed.CompareAndSwap(true, false) {
		inner := score
		score = func(rows []analytics.SummaryRow) ([]analytics.ScoreRow, error) {
			h.during()
			return inner(rows)
		}
	}
	return h.Store.RefreshScores(ctx, q, score)
}

// TestRunCatchesUpWithTransactionsDuringRefresh checks that a transaction recorded while a
// model run's full refresh is under way (after its snapshot, its live rescore still using the
// previous run) ends up scored by the new run with the new transaction counted, for an
// existing customer and for one created meanwhile.
func TestRunCatchesUpWithTransactionsDuringRefresh(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := openDB(t, 6)
	store := &refreshHook{Store: postgres.NewAnalyticsStore(db, 3)}
	svc := analytics.NewService(store, slog.New(slog.DiscardHandler), time.Now, 0)
	customers := postgres.NewCustomerStore(db)
	txs := crm.NewTransactionService(postgres.NewTransactionStore(db), customers, svc, crm.NewValidator(), time.Now)
	now := time.Now().UTC()
	items := simulatedPurchases(t, 300, now)
	if _, err := txs.Record(ctx, crm.Scope{}, items, crm.RecordOptions{CreateCustomers: true, AllOrNone: true}); err != nil {
		t.Fatal(err)
	}
	startWorker(t, svc)
	runAndWait := func() *analytics.Run {
		t.Helper()
		r, err := svc.StartRun(ctx, analytics.RunSettings{Unit: analytics.UnitDay})
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if r, err = svc.Run(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			if r.Status == analytics.RunSucceeded {
				return r
			}
			if r.Status == analytics.RunFailed {
				t.Fatalf("run failed: %+v", r.Error)
			}
		}
		t.Fatal("run did not finish")
		return nil
	}
	first := runAndWait()

	existing := crm.ExternalRef{Source: "test", ExternalID: "7"}
	newcomer := crm.ExternalRef{Source: "test", ExternalID: "newcomer"}
	store.during = func() {
		late := []crm.Transaction{
			{CustomerRef: &existing, Type: crm.TypePurchase, OccurredAt: now.Add(-time.Minute), Amount: "12.00", Currency: "EUR"},
			{CustomerRef: &newcomer, Type: crm.TypePurchase, OccurredAt: now.Add(-time.Minute), Amount: "30.00", Currency: "EUR"},
		}
		if _, err := txs.Record(ctx, crm.Scope{}, late, crm.RecordOptions{CreateCustomers: true, AllOrNone: true}); err != nil {
			t.Errorf("record during the refresh: %v", err)
		}
	}
	store.armed.Store(true)
	second := runAndWait()
	if second.ID == first.ID || store.armed.Load() {
		t.Fatal("the second run's refresh did not run the hook")
	}

	purchasesOf := func(ref crm.ExternalRef) int {
		n := 0
		for _, it := range items {
			if *it.CustomerRef == ref {
				n++
			}
		}
		return n + 1
	}
	for _, ref := range []crm.ExternalRef{existing, newcomer} {
		page, err := customers.ListCustomers(ctx, crm.Scope{}, crm.CustomerFilter{ExternalRef: &ref, Page: crm.PageRequest{Limit: 1}})
		if err != nil || len(page.Customers) != 1 {
			t.Fatalf("%v: %+v (%v)", ref, page, err)
		}
		found := page.Customers[0]
		// The catch-up follows the run's success; wait for it.
		want := purchasesOf(ref)
		var scores *analytics.CustomerScores
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			scores, err = svc.CustomerScores(ctx, crm.Scope{}, found.ID)
			if err == nil && scores.Run.ID == second.ID && scores.Purchases == want {
				break
			}
		}
		if err != nil {
			t.Errorf("%v: %v", ref, err)
		} else if scores.Run.ID != second.ID || scores.Purchases != want {
			t.Errorf("%v: scores by run %v with %d purchases, want run %s with %d (the late one counted)",
				ref, scores.Run.ID, scores.Purchases, second.ID, want)
		}
	}
	if stale, err := store.CustomersScoredByOtherRuns(ctx, second.ID); err != nil || len(stale) != 0 {
		t.Errorf("customers scored by other runs after the catch-up: %v (%v)", stale, err)
	}
}
