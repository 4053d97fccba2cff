package httpapi_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/uuid"
	"github.com/oapi-codegen/nullable"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/pkg/btyd"
)

// insApprox compares floats to 1e-9, absolute or relative.
var insApprox = cmpopts.EquateApprox(1e-9, 1e-9)

// insTx is one transaction of the insights fixtures.
func insTx(customerID, typ, at, amount, currency string) map[string]any {
	return map[string]any{"customer_id": customerID, "type": typ, "occurred_at": at, "amount": amount, "currency": currency}
}

// insRecord records transactions all-or-none through the batch endpoint.
func insRecord(e *env, items ...map[string]any) {
	e.t.Helper()
	e.mustDo(request{Method: "POST", Path: "/v1/transactions/batch", Body: map[string]any{"items": items, "all_or_none": true}}, http.StatusOK)
}

// insCustomer creates a customer with the given fields and returns its id.
func insCustomer(e *env, fields map[string]any) string {
	e.t.Helper()
	body := map[string]any{"kind": "consumer"}
	for k, v := range fields {
		body[k] = v
	}
	return createCustomer(e, body)["id"].(string)
}

// insGet decodes the 200 response of a GET into T.
func insGet[T any](e *env, path string) T {
	e.t.Helper()
	return insDecode[T](e, e.mustDo(request{Method: "GET", Path: path}, http.StatusOK))
}

func insDecode[T any](e *env, res response) T {
	e.t.Helper()
	var v T
	if err := json.Unmarshal(res.Body, &v); err != nil {
		e.t.Fatalf("decode %s: %v", res.Body, err)
	}
	return v
}

// insScore stores a CLV score for a customer, as a model run would.
func insScore(e *env, customerID, currency, clv string) {
	e.t.Helper()
	_, err := e.app.DB.SQL().Exec(`INSERT INTO customer_scores (customer_id, model_run_id, currency, observation_end,
		frequency, recency, t, monetary, purchases, first_purchase_at, last_purchase_at, revenue, refunds, cost,
		net_value, p_alive, churn_risk, churn_band, expected_purchases_30d, expected_purchases_90d,
		expected_purchases_365d, expected_spend, clv, rfm_recency, rfm_frequency, rfm_monetary, rfm_segment, computed_at)
		VALUES ($1, gen_random_uuid(), $2, now(), 0, 0, 0, 0, 1, now(), now(), 0, 0, 0, 0, 1, 0, 'low', 0, 0, 0, 0, $3,
		1, 1, 1, 'Other', now())`, customerID, currency, clv)
	if err != nil {
		e.t.Fatalf("insert score: %v", err)
	}
}

// insDelete soft-deletes a customer.
func insDelete(e *env, id string) {
	e.t.Helper()
	e.mustDo(request{Method: "DELETE", Path: "/v1/customers/" + id}, http.StatusNoContent)
}

// insRetentionFixture records the hand-computed cohort fixture of 2025.
//
//	A: Jan, Feb, Mar, Apr      B: Jan, Mar       C: Jan (twice; a refund and a cost do not count)
//	D: Jan 31 23:59:59, Feb 1 00:00 (UTC)        E: Feb 1 01:30 UTC (written as Jan 31 −02:00), Mar in USD
//	F: Feb      I: Feb, Mar      G: Mar 31       H: Jan and May, deleted
func insRetentionFixture(e *env) {
	e.t.Helper()
	ids := map[string]string{}
	for _, name := range []string{"A", "B", "C", "D", "E", "F", "I", "G", "H"} {
		ids[name] = insCustomer(e, map[string]any{"name": name})
	}
	p := func(name, at string) map[string]any { return insTx(ids[name], "purchase", at, "10.00", "EUR") }
	insRecord(e,
		p("A", "2025-01-05T10:00:00Z"), p("A", "2025-02-10T10:00:00Z"), p("A", "2025-03-15T10:00:00Z"), p("A", "2025-04-02T10:00:00Z"),
		p("B", "2025-01-20T10:00:00Z"), p("B", "2025-03-01T10:00:00Z"),
		p("C", "2025-01-07T10:00:00Z"), p("C", "2025-01-28T10:00:00Z"),
		insTx(ids["C"], "refund", "2025-02-02T10:00:00Z", "5.00", "EUR"), insTx(ids["C"], "cost", "2025-03-03T10:00:00Z", "5.00", "EUR"),
		p("D", "2025-01-31T23:59:59Z"), p("D", "2025-02-01T00:00:00Z"),
		p("E", "2025-01-31T23:30:00-02:00"), insTx(ids["E"], "purchase", "2025-03-20T10:00:00Z", "10.00", "USD"),
		p("F", "2025-02-14T10:00:00Z"),
		p("I", "2025-02-25T10:00:00Z"), p("I", "2025-03-09T10:00:00Z"),
		p("G", "2025-03-31T10:00:00Z"),
		p("H", "2025-01-03T10:00:00Z"), p("H", "2025-05-03T10:00:00Z"),
	)
	insDelete(e, ids["H"])
}

func insTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestRetentionMatrix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	insRetentionFixture(e)
	jan, feb, mar := insTime("2025-01-01T00:00:00Z"), insTime("2025-02-01T00:00:00Z"), insTime("2025-03-01T00:00:00Z")
	tests := []struct {
		name  string
		query string
		want  api.Retention
	}{
		{"monthly by default", "", api.Retention{Cohort: "month", Currency: "EUR",
			Cohorts: []api.Cohort{
				{Start: jan, Size: 4, Active: []int{4, 2, 2, 1}, Retention: []float64{1, 0.5, 0.5, 0.25}},
				{Start: feb, Size: 3, Active: []int{3, 2, 0}, Retention: []float64{1, 2.0 / 3, 0}},
				{Start: mar, Size: 1, Active: []int{1, 0}, Retention: []float64{1, 0}},
			},
			PeriodRates: []api.PeriodRate{
				{Period: 0, Customers: 8, RetentionRate: 0.5, ChurnRate: 0.5},
				{Period: 1, Customers: 4, RetentionRate: 0.25, ChurnRate: 0.75},
				{Period: 2, Customers: 2, RetentionRate: 0.5, ChurnRate: 0.5},
			}}},
		{"one period", "?periods=1", api.Retention{Cohort: "month", Currency: "EUR",
			Cohorts: []api.Cohort{
				{Start: jan, Size: 4, Active: []int{4, 2}, Retention: []float64{1, 0.5}},
				{Start: feb, Size: 3, Active: []int{3, 2}, Retention: []float64{1, 2.0 / 3}},
				{Start: mar, Size: 1, Active: []int{1, 0}, Retention: []float64{1, 0}},
			},
			PeriodRates: []api.PeriodRate{{Period: 0, Customers: 8, RetentionRate: 0.5, ChurnRate: 0.5}}}},
		{"first purchases from February", "?from=2025-02-01T00:00:00Z", api.Retention{Cohort: "month", Currency: "EUR",
			Cohorts: []api.Cohort{
				{Start: feb, Size: 3, Active: []int{3, 2, 0}, Retention: []float64{1, 2.0 / 3, 0}},
				{Start: mar, Size: 1, Active: []int{1, 0}, Retention: []float64{1, 0}},
			},
			PeriodRates: []api.PeriodRate{
				{Period: 0, Customers: 4, RetentionRate: 0.5, ChurnRate: 0.5},
				{Period: 1, Customers: 2, RetentionRate: 0, ChurnRate: 1},
			}}},
		{"first purchases before February", "?to=2025-02-01T00:00:00Z", api.Retention{Cohort: "month", Currency: "EUR",
			Cohorts: []api.Cohort{{Start: jan, Size: 4, Active: []int{4, 2, 2, 1}, Retention: []float64{1, 0.5, 0.5, 0.25}}},
			PeriodRates: []api.PeriodRate{
				{Period: 0, Customers: 4, RetentionRate: 0.5, ChurnRate: 0.5},
				{Period: 1, Customers: 2, RetentionRate: 0.5, ChurnRate: 0.5},
				{Period: 2, Customers: 2, RetentionRate: 0.5, ChurnRate: 0.5},
			}}},
		{"quarterly", "?cohort=quarter", api.Retention{Cohort: "quarter", Currency: "EUR",
			Cohorts:     []api.Cohort{{Start: jan, Size: 8, Active: []int{8, 1}, Retention: []float64{1, 0.125}}},
			PeriodRates: []api.PeriodRate{{Period: 0, Customers: 8, RetentionRate: 0.125, ChurnRate: 0.875}}}},
		{"nothing in range", "?from=2026-01-01T00:00:00Z", api.Retention{Cohort: "month", Currency: "EUR",
			Cohorts: []api.Cohort{}, PeriodRates: []api.PeriodRate{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := insGet[api.Retention](e, "/v1/analytics/retention"+tc.query)
			if diff := cmp.Diff(tc.want, got, insApprox); diff != "" {
				t.Errorf("retention (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("weekly", func(t *testing.T) {
		got := insGet[api.Retention](e, "/v1/analytics/retention?cohort=week")
		var starts []time.Time
		var sizes []int
		for _, c := range got.Cohorts {
			starts, sizes = append(starts, c.Start), append(sizes, c.Size)
		}
		// Weeks start on Monday, 00:00 UTC; D (Friday) and E (Saturday, in UTC) share one.
		wantStarts := []time.Time{insTime("2024-12-30T00:00:00Z"), insTime("2025-01-06T00:00:00Z"), insTime("2025-01-20T00:00:00Z"),
			insTime("2025-01-27T00:00:00Z"), insTime("2025-02-10T00:00:00Z"), insTime("2025-02-24T00:00:00Z"), insTime("2025-03-31T00:00:00Z")}
		if diff := cmp.Diff(wantStarts, starts); diff != "" {
			t.Errorf("weekly cohorts (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int{1, 1, 1, 2, 1, 1, 1}, sizes); diff != "" {
			t.Errorf("weekly sizes (-want +got):\n%s", diff)
		}
		// The week of Jan 27 reaches the week of Mar 31 (9 weeks later), the latest with a purchase;
		// E bought again on Mar 20, 7 weeks later.
		if diff := cmp.Diff([]int{2, 0, 0, 0, 0, 0, 0, 1, 0, 0}, got.Cohorts[3].Active); diff != "" {
			t.Errorf("week of Jan 27 active (-want +got):\n%s", diff)
		}
	})
}

func TestRetentionErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		query   string
		status  int
		code    string
		pointer string
	}{
		{"?from=2025-02-01T00:00:00Z&to=2025-02-01T00:00:00Z", 422, "validation_failed", "query:to"},
		{"?periods=0", 400, "invalid_request", "query:periods"},
		{"?periods=121", 400, "invalid_request", "query:periods"},
		{"?cohort=year", 400, "invalid_request", "query:cohort"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			p := problem(t, e.do(request{Method: "GET", Path: "/v1/analytics/retention" + tc.query}), tc.status, tc.code)
			if diff := cmp.Diff([]string{tc.pointer}, pointers(p)); diff != "" {
				t.Errorf("pointers (-want +got):\n%s", diff)
			}
		})
	}
	// Without any purchase the matrix is empty, and no currency can be inferred.
	got := insGet[api.Retention](e, "/v1/analytics/retention")
	want := api.Retention{Cohort: "month", Currency: "XXX", Cohorts: []api.Cohort{}, PeriodRates: []api.PeriodRate{}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("empty retention (-want +got):\n%s", diff)
	}
}

// insClosedFormDERL is btyd's closed form of the discounted expected residual lifetime.
func insClosedFormDERL(t *testing.T, alpha, beta, d float64, renewals int) float64 {
	t.Helper()
	m, err := btyd.NewShiftedBetaGeometric(btyd.SBGParams{Alpha: alpha, Beta: beta})
	if err != nil {
		t.Fatal(err)
	}
	v, err := m.DiscountedExpectedResidualLifetime(d, renewals)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRetentionProjection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Fader & Hardie (2007), Table 1: percent of a cohort of 1,000 still customers in years
	// 0–7, fitted by maximum likelihood; projected survival in year 12.
	tests := []struct {
		name                 string
		survivors            []int
		alpha, beta, s12     float64
		retention1, observed float64 // the model's r_1 and the observed share in year 7
	}{
		{"regular", []int{1000, 631, 468, 382, 326, 289, 262, 241}, 0.704, 1.182, 0.1700, 1.182 / (0.704 + 1.182), 0.241},
		{"high end", []int{1000, 869, 743, 653, 593, 551, 517, 491}, 0.668, 3.806, 0.3780, 3.806 / (0.668 + 3.806), 0.491},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := e.mustDo(request{Method: "POST", Path: "/v1/analytics/retention/projection", Body: map[string]any{
				"survivors": tc.survivors, "periods": 12, "discount_rate": 0.1,
			}}, http.StatusOK)
			got := insDecode[api.RetentionProjection](e, res)
			if math.Abs(got.Alpha-tc.alpha) > 0.005 || math.Abs(got.Beta-tc.beta) > 0.005 {
				t.Errorf("alpha, beta = %.4f, %.4f; want %.3f, %.3f", got.Alpha, got.Beta, tc.alpha, tc.beta)
			}
			if diff := cmp.Diff(tc.survivors, got.Survivors); diff != "" {
				t.Errorf("survivors (-want +got):\n%s", diff)
			}
			if len(got.Projection) != 13 {
				t.Fatalf("projection has %d periods, want 13", len(got.Projection))
			}
			if s := got.Projection[12].Survival; math.Abs(s-tc.s12) > 0.0005 {
				t.Errorf("S(12) = %.4f, want %.4f", s, tc.s12)
			}
			first := got.Projection[0]
			if first.Survival != 1 || !first.RetentionRate.IsNull() || first.Observed.MustGet() != 1 {
				t.Errorf("period 0 = %+v, want survival 1, retention null, observed 1", first)
			}
			if r := got.Projection[1].RetentionRate.MustGet(); math.Abs(r-tc.retention1) > 0.002 {
				t.Errorf("r(1) = %.4f, want %.4f", r, tc.retention1)
			}
			for _, p := range got.Projection[1:] {
				prev := got.Projection[p.Period-1].Survival
				if r := p.RetentionRate.MustGet(); math.Abs(r-p.Survival/prev) > 1e-12 {
					t.Errorf("period %d: retention %v, want S(t)/S(t-1) = %v", p.Period, r, p.Survival/prev)
				}
				if (p.Period < len(tc.survivors)) == p.Observed.IsNull() {
					t.Errorf("period %d: observed = %v", p.Period, p.Observed)
				}
			}
			if o := got.Projection[7].Observed.MustGet(); o != tc.observed {
				t.Errorf("observed share in year 7 = %v, want %v", o, tc.observed)
			}
			if want := insClosedFormDERL(t, got.Alpha, got.Beta, 0.1, 7); math.Abs(got.ExpectedResidualLifetime-want) > 1e-9 {
				t.Errorf("expected residual lifetime = %v, want %v", got.ExpectedResidualLifetime, want)
			}
			if !(got.LogLikelihood < 0) {
				t.Errorf("log-likelihood = %v, want negative", got.LogLikelihood)
			}
		})
	}
}

func TestRetentionProjectionFromCohort(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	insRetentionFixture(e)
	project := func(body map[string]any) api.RetentionProjection {
		return insDecode[api.RetentionProjection](e, e.mustDo(request{Method: "POST", Path: "/v1/analytics/retention/projection", Body: body}, http.StatusOK))
	}
	// January's cohort: C last bought in period 0, D in 1, B in 2 and A in 3 (April, the latest period).
	fromCohort := project(map[string]any{"cohort": map[string]any{"unit": "month", "start": "2025-01-17T12:00:00+01:00"}, "periods": 6})
	if diff := cmp.Diff([]int{4, 3, 2, 1}, fromCohort.Survivors); diff != "" {
		t.Errorf("survivors of January (-want +got):\n%s", diff)
	}
	given := project(map[string]any{"survivors": []int{4, 3, 2, 1}, "periods": 6})
	if diff := cmp.Diff(given, fromCohort, insApprox); diff != "" {
		t.Errorf("cohort projection differs from the same series given (-given +cohort):\n%s", diff)
	}
	if len(fromCohort.Projection) != 7 || fromCohort.Projection[3].Observed.MustGet() != 0.25 || !fromCohort.Projection[4].Observed.IsNull() {
		t.Errorf("projection = %+v", fromCohort.Projection)
	}
	// March's cohort (G only) reached April, where G did not buy.
	if got := project(map[string]any{"cohort": map[string]any{"unit": "month", "start": "2025-03-31T10:00:00Z"}}).Survivors; !cmp.Equal(got, []int{1, 0}) {
		t.Errorf("survivors of March = %v, want [1 0]", got)
	}
}

func TestRetentionProjectionErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	insRetentionFixture(e)
	tests := []struct {
		name     string
		body     any
		status   int
		pointers []string
	}{
		{"neither series nor cohort", map[string]any{"periods": 5}, 422, []string{"/survivors"}},
		{"both series and cohort", map[string]any{"survivors": []int{10, 5}, "cohort": map[string]any{"unit": "month", "start": "2025-01-01T00:00:00Z"}}, 422, []string{"/cohort"}},
		{"increasing", map[string]any{"survivors": []int{10, 8, 8, 9, 2, 3}}, 422, []string{"/survivors/3", "/survivors/5"}},
		{"empty cohort size", map[string]any{"survivors": []int{0, 0}}, 422, []string{"/survivors/0"}},
		{"no discounting", map[string]any{"survivors": []int{10, 5}, "discount_rate": 0}, 422, []string{"/discount_rate"}},
		{"too short", map[string]any{"survivors": []int{10}}, 422, []string{"/survivors"}},
		{"negative count", map[string]any{"survivors": []int{10, -1}}, 422, []string{"/survivors/1"}},
		{"cohort without first purchases", map[string]any{"cohort": map[string]any{"unit": "month", "start": "2025-04-10T00:00:00Z"}}, 422, []string{"/cohort/start"}},
		{"cohort in the latest period", map[string]any{"cohort": map[string]any{"unit": "week", "start": "2025-03-31T10:00:00Z"}}, 422, []string{"/cohort/start"}},
		{"unknown unit", map[string]any{"cohort": map[string]any{"unit": "day", "start": "2025-01-01T00:00:00Z"}}, 422, []string{"/cohort/unit"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := problem(t, e.do(request{Method: "POST", Path: "/v1/analytics/retention/projection", Body: tc.body}), tc.status, "validation_failed")
			if diff := cmp.Diff(tc.pointers, pointers(p)); diff != "" {
				t.Errorf("pointers (-want +got):\n%s", diff)
			}
		})
	}
	// Degenerate series have boundary estimates (α or β huge), not errors. When both are huge,
	// churn is the same for everyone: S(t) = r^t with r = β/(α+β), and the residual lifetime at
	// d = 0.1 is r/(1 − r/1.1).
	for _, tc := range []struct {
		name      string
		survivors []int
		check     func(p api.RetentionProjection) bool
	}{
		{"nobody leaves", []int{10, 10, 10}, func(p api.RetentionProjection) bool {
			return insWithin(p.Projection[12].Survival, 1, 1e-3) && insWithin(p.ExpectedResidualLifetime, 11, 0.01) // 1 + 1/1.1 + 1/1.1² + …
		}},
		{"everybody leaves at once", []int{100, 0}, func(p api.RetentionProjection) bool {
			return p.Projection[12].Survival < 1e-9 && p.ExpectedResidualLifetime < 1e-3
		}},
		{"constant churn", []int{100, 50, 25, 12}, func(p api.RetentionProjection) bool {
			r := p.Beta / (p.Alpha + p.Beta)
			return insWithin(r, 0.5, 0.01) && insWithin(p.Projection[12].Survival, math.Pow(r, 12), 1e-5) && insWithin(p.ExpectedResidualLifetime, r/(1-r/1.1), 1e-3)
		}},
	} {
		res := e.mustDo(request{Method: "POST", Path: "/v1/analytics/retention/projection", Body: map[string]any{"survivors": tc.survivors}}, http.StatusOK)
		if got := insDecode[api.RetentionProjection](e, res); !tc.check(got) {
			t.Errorf("%s: alpha %v, beta %v, S(12) %v, residual lifetime %v", tc.name, got.Alpha, got.Beta, got.Projection[12].Survival, got.ExpectedResidualLifetime)
		}
	}
}

// insWithin reports whether got is within tol of want.
func insWithin(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestConcentration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var ids []string
	for range 10 {
		ids = append(ids, insCustomer(e, nil))
	}
	// Net values 400, 400 and eight times 25: the top 2 of 10 bring exactly 80% of 1,000.
	items := []map[string]any{
		insTx(ids[0], "purchase", "2025-01-05T10:00:00Z", "450.00", "EUR"),
		insTx(ids[0], "refund", "2025-01-06T10:00:00Z", "50.00", "EUR"),
		insTx(ids[1], "purchase", "2025-01-05T10:00:00Z", "399.9950", "EUR"),
		insTx(ids[1], "purchase", "2025-02-05T10:00:00Z", "0.0050", "EUR"),
		insTx(ids[2], "purchase", "2025-01-05T10:00:00Z", "1000.00", "USD"),
	}
	for _, id := range ids[2:] {
		items = append(items, insTx(id, "purchase", "2025-03-01T10:00:00Z", "25", "EUR"))
	}
	// Costs are not revenue: a customer with costs only is not ranked, and costs lower nobody's value.
	costOnly := insCustomer(e, nil)
	items = append(items, insTx(costOnly, "cost", "2025-01-05T10:00:00Z", "500.00", "EUR"), insTx(ids[3], "cost", "2025-01-05T10:00:00Z", "20.00", "EUR"))
	// A deleted customer does not count. Nor do CHF values here (see below).
	deleted := insCustomer(e, nil)
	items = append(items, insTx(deleted, "purchase", "2025-01-05T10:00:00Z", "5000", "EUR"))
	chf := []string{insCustomer(e, nil), insCustomer(e, nil), insCustomer(e, nil)}
	items = append(items,
		insTx(chf[0], "purchase", "2025-01-05T10:00:00Z", "100", "CHF"),
		insTx(chf[1], "purchase", "2025-01-05T10:00:00Z", "50", "CHF"),
		insTx(chf[2], "purchase", "2025-01-05T10:00:00Z", "10", "CHF"),
		insTx(chf[2], "refund", "2025-01-06T10:00:00Z", "30", "CHF"),
	)
	insRecord(e, items...)
	insDelete(e, deleted)

	lorenz := func(shares ...float64) []api.LorenzPoint {
		out := make([]api.LorenzPoint, len(shares))
		for i, s := range shares {
			out[i] = api.LorenzPoint{CustomerShare: float64(i+1) / float64(len(shares)), ValueShare: s}
		}
		return out
	}
	tests := []struct {
		name  string
		query string
		want  api.Concentration
	}{
		// Gini: (n+1)/n − 2·Σ i·x_i/(n·Σx) = 1.1 − 2·2500/10000 = 0.6.
		{"pareto, default currency", "?points=5", api.Concentration{Basis: "net_value", Currency: "EUR", Customers: 10, Total: "1000.00",
			Top20PercentShare: 0.8, Gini: 0.6, Lorenz: lorenz(0.8, 0.85, 0.9, 0.95, 1)}},
		// Between customers the curve is linear: 3 points over 10 customers fall at 3⅓, 6⅔ and 10.
		{"interpolated", "?points=3&currency=EUR", api.Concentration{Basis: "net_value", Currency: "EUR", Customers: 10, Total: "1000.00",
			Top20PercentShare: 0.8, Gini: 0.6, Lorenz: lorenz((800+25+25.0/3)/1000, (800+100+50.0/3)/1000, 1)}},
		// One customer brings everything there is in USD.
		{"single customer", "?points=2&currency=USD", api.Concentration{Basis: "net_value", Currency: "USD", Customers: 1, Total: "1000.00",
			Top20PercentShare: 1, Gini: 0, Lorenz: lorenz(0.5, 1)}},
		// A net value of −20 counts as 0 in the shares; the total keeps it.
		{"negative net value", "?points=3&currency=CHF", api.Concentration{Basis: "net_value", Currency: "CHF", Customers: 3, Total: "130.00",
			Top20PercentShare: 100.0 / 150, Gini: 4.0/3 - 2*200.0/(3*150), Lorenz: lorenz(100.0/150, 1, 1)}},
		{"no values", "?points=2&currency=GBP", api.Concentration{Basis: "net_value", Currency: "GBP", Customers: 0, Total: "0.00",
			Lorenz: lorenz(0, 0)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := insGet[api.Concentration](e, "/v1/analytics/concentration"+tc.query)
			if diff := cmp.Diff(tc.want, got, insApprox); diff != "" {
				t.Errorf("concentration (-want +got):\n%s", diff)
			}
		})
	}
	if got := insGet[api.Concentration](e, "/v1/analytics/concentration"); len(got.Lorenz) != 20 || got.Lorenz[3].CustomerShare != 0.2 || got.Lorenz[3].ValueShare != 0.8 {
		t.Errorf("default Lorenz curve = %+v", got.Lorenz)
	}

	// Without scores, ranking by CLV is not possible.
	problem(t, e.do(request{Method: "GET", Path: "/v1/analytics/concentration?basis=clv"}), http.StatusNotFound, "not_found")
	insScore(e, ids[0], "EUR", "300")
	insScore(e, ids[1], "EUR", "100")
	insScore(e, ids[2], "EUR", "100")
	insScore(e, ids[3], "EUR", "0")
	insScore(e, ids[4], "USD", "900")
	insScore(e, deleted, "EUR", "1000")
	got := insGet[api.Concentration](e, "/v1/analytics/concentration?basis=clv&points=4&currency=EUR")
	want := api.Concentration{Basis: "clv", Currency: "EUR", Customers: 4, Total: "500.00",
		Top20PercentShare: 0.6, Gini: 1.25 - 2*800.0/(4*500), Lorenz: lorenz(0.6, 0.8, 1, 1)}
	if diff := cmp.Diff(want, got, insApprox); diff != "" {
		t.Errorf("clv concentration (-want +got):\n%s", diff)
	}

	// The latest succeeded model run's currency becomes the default.
	_, err := e.app.DB.SQL().Exec(`INSERT INTO model_runs (id, status, model, time_unit, calibration_end, currency, penalty,
		clv_horizon_months, clv_discount_rate, clv_margin, requested_at, started_at, finished_at)
		VALUES (gen_random_uuid(), 'succeeded', 'bgnbd', 'week', now(), 'USD', 0, 12, 0.1, 1, now(), now(), now())`)
	if err != nil {
		t.Fatalf("insert model run: %v", err)
	}
	if got := insGet[api.Concentration](e, "/v1/analytics/concentration"); got.Currency != "USD" || got.Customers != 1 {
		t.Errorf("default currency after a USD model run = %s with %d customers, want USD with 1", got.Currency, got.Customers)
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/analytics/concentration?points=1"}), http.StatusBadRequest, "invalid_request")
	problem(t, e.do(request{Method: "GET", Path: "/v1/analytics/concentration?currency=eur"}), http.StatusBadRequest, "invalid_request")
}

func TestAcquisition(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cost := func(amount, currency string) map[string]any {
		return map[string]any{"amount": amount, "currency": currency}
	}
	p1 := insCustomer(e, map[string]any{"acquisition_channel": "paid_search", "acquired_at": "2025-01-10T12:00:00Z", "acquisition_cost": cost("40.00", "EUR")})
	p2 := insCustomer(e, map[string]any{"acquisition_channel": "paid_search", "acquired_at": "2025-02-03T12:00:00Z", "acquisition_cost": cost("20.00", "EUR")})
	r1 := insCustomer(e, map[string]any{"acquisition_channel": "referral", "acquired_at": "2025-02-20T12:00:00Z", "acquisition_cost": cost("10.00", "USD")})
	u1 := insCustomer(e, nil) // acquired by its first purchase, channel unknown
	e1 := insCustomer(e, map[string]any{"acquisition_channel": "events", "acquired_at": "2025-03-10T12:00:00Z", "acquisition_cost": cost("3.33", "EUR")})
	e2 := insCustomer(e, map[string]any{"acquisition_channel": "events", "acquired_at": "2025-03-11T12:00:00Z", "acquisition_cost": cost("3.33", "EUR")})
	e3 := insCustomer(e, map[string]any{"acquisition_channel": "events", "acquired_at": "2025-03-31T23:00:00-01:00", "acquisition_cost": cost("3.34", "EUR")})
	prospect := insCustomer(e, map[string]any{"acquisition_channel": "paid_search"}) // never acquired
	gone := insCustomer(e, map[string]any{"acquisition_channel": "paid_search", "acquired_at": "2025-01-01T00:00:00Z", "acquisition_cost": cost("1000", "EUR")})
	acq := func(id, amount, currency, category string) map[string]any {
		tx := insTx(id, "cost", "2025-01-05T10:00:00Z", amount, currency)
		tx["category"] = category
		return tx
	}
	insRecord(e,
		acq(p1, "30.00", "EUR", "acquisition"),
		acq(r1, "5.00", "EUR", "acquisition"), acq(r1, "100.00", "EUR", "support"), acq(r1, "7.00", "USD", "acquisition"),
		insTx(r1, "purchase", "2025-02-21T10:00:00Z", "50.00", "EUR"),
		insTx(u1, "purchase", "2025-03-05T10:00:00Z", "20.00", "EUR"), insTx(u1, "purchase", "2025-01-02T10:00:00Z", "20.00", "USD"),
		acq(prospect, "7.00", "EUR", "acquisition"),
	)
	insDelete(e, gone)
	insScore(e, p1, "EUR", "100")
	insScore(e, p2, "EUR", "200")
	insScore(e, u1, "EUR", "12.5")
	insScore(e, e1, "EUR", "1.00")
	insScore(e, e2, "EUR", "1.01")
	insScore(e, e3, "USD", "99")

	str := func(s string) nullable.Nullable[string] { return nullable.NewNullableWithValue(s) }
	num := func(f float64) nullable.Nullable[float64] { return nullable.NewNullableWithValue(f) }
	null := nullable.NewNullNullable[string]()
	nullNum := nullable.NewNullNullable[float64]()
	tests := []struct {
		query string
		want  api.Acquisition
	}{
		{"?group_by=channel&currency=EUR", api.Acquisition{GroupBy: "channel", Currency: "EUR", Groups: []api.AcquisitionGroup{
			// 10.00 / 3 rounds to 3.33; (1.00 + 1.01) / 2 = 1.005 rounds half away from zero to 1.01.
			{Key: "events", NewCustomers: 3, AcquisitionCost: "10.00", Cac: str("3.33"), AverageClv: str("1.01"), ClvToCac: num(1.005 / (10.0 / 3))},
			{Key: "paid_search", NewCustomers: 2, AcquisitionCost: "90.00", Cac: str("45.00"), AverageClv: str("150.00"), ClvToCac: num(150.0 / 45)},
			{Key: "referral", NewCustomers: 1, AcquisitionCost: "5.00", Cac: str("5.00"), AverageClv: null, ClvToCac: nullNum},
			{Key: "unknown", NewCustomers: 1, AcquisitionCost: "0.00", Cac: str("0.00"), AverageClv: str("12.50"), ClvToCac: nullNum},
		}}},
		// u1 was acquired by its first purchase, in January (in USD); e3 on April 1 in UTC.
		{"", api.Acquisition{GroupBy: "cohort", Currency: "EUR", Groups: []api.AcquisitionGroup{
			{Key: "2025-01-01T00:00:00Z", NewCustomers: 2, AcquisitionCost: "70.00", Cac: str("35.00"), AverageClv: str("56.25"), ClvToCac: num(56.25 / 35)},
			{Key: "2025-02-01T00:00:00Z", NewCustomers: 2, AcquisitionCost: "25.00", Cac: str("12.50"), AverageClv: str("200.00"), ClvToCac: num(16)},
			{Key: "2025-03-01T00:00:00Z", NewCustomers: 2, AcquisitionCost: "6.66", Cac: str("3.33"), AverageClv: str("1.01"), ClvToCac: num(1.005 / 3.33)},
			{Key: "2025-04-01T00:00:00Z", NewCustomers: 1, AcquisitionCost: "3.34", Cac: str("3.34"), AverageClv: null, ClvToCac: nullNum},
		}}},
		{"?cohort=quarter&currency=USD", api.Acquisition{GroupBy: "cohort", Currency: "USD", Groups: []api.AcquisitionGroup{
			{Key: "2025-01-01T00:00:00Z", NewCustomers: 6, AcquisitionCost: "17.00", Cac: str("2.83"), AverageClv: null, ClvToCac: nullNum},
			{Key: "2025-04-01T00:00:00Z", NewCustomers: 1, AcquisitionCost: "0.00", Cac: str("0.00"), AverageClv: str("99.00"), ClvToCac: nullNum},
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			got := insGet[api.Acquisition](e, "/v1/analytics/acquisition"+tc.query)
			if diff := cmp.Diff(tc.want, got, insApprox); diff != "" {
				t.Errorf("acquisition (-want +got):\n%s", diff)
			}
		})
	}
	problem(t, e.do(request{Method: "GET", Path: "/v1/analytics/acquisition?group_by=country"}), http.StatusBadRequest, "invalid_request")
}

func TestWhatIf(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now().UTC()
	ago := func(days int) string { return now.Add(-time.Duration(days) * 24 * time.Hour).Format(time.RFC3339) }

	// Nobody bought in the year before last yet.
	early := insCustomer(e, nil)
	insRecord(e, insTx(early, "purchase", ago(10), "10", "EUR"))
	problem(t, e.do(request{Method: "GET", Path: "/v1/analytics/what-if"}), http.StatusUnprocessableEntity, "validation_failed")

	// a, b, c and d bought 500 days ago; a, b and c again within the last year, so r = 3/4.
	// Last year's net values: a 100, b 200 − 50 = 150, c 30 − 40 < 0 (left out), early 10 and
	// newer 40 (in the value, not in the retention): Σm = 300 over 4 customers, times the
	// margin 0.5 = 150.
	a, b, c, d, newer, gone := insCustomer(e, nil), insCustomer(e, nil), insCustomer(e, nil), insCustomer(e, nil), insCustomer(e, nil), insCustomer(e, nil)
	insRecord(e,
		insTx(a, "purchase", ago(500), "999", "EUR"), insTx(b, "purchase", ago(500), "999", "EUR"),
		insTx(c, "purchase", ago(500), "999", "EUR"), insTx(d, "purchase", ago(500), "999", "USD"),
		insTx(a, "purchase", ago(100), "100", "EUR"), insTx(a, "purchase", ago(90), "70", "USD"),
		insTx(b, "purchase", ago(50), "200", "EUR"), insTx(b, "refund", ago(40), "50", "EUR"),
		insTx(c, "purchase", ago(20), "30", "EUR"), insTx(c, "refund", ago(19), "40", "EUR"),
		insTx(newer, "purchase", ago(5), "40", "EUR"), insTx(newer, "cost", ago(5), "40", "EUR"),
		insTx(d, "purchase", ago(800), "999", "EUR"),
		insTx(gone, "purchase", ago(500), "999", "EUR"), insTx(gone, "purchase", ago(30), "999", "EUR"),
	)
	insDelete(e, gone)

	tests := []struct {
		query string
		want  api.WhatIf
	}{
		// Value m·r/(1+d−r): 150·0.75/0.35 = 321.43 and 150·0.8/0.3 = 400. Profit over 5 years
		// Σ m·(r/1.1)^t: 274.07 and 318.61.
		{"?margin=0.5&currency=EUR", api.WhatIf{Currency: "EUR", Customers: 4, BaselineRetention: 0.75, ScenarioRetention: 0.8,
			AnnualDiscountRate: 0.1, Margin: 0.5, HorizonYears: 5,
			BaselineValue: "321.43", ScenarioValue: "400.00", ValueChange: "78.57",
			BaselineProfit: "274.07", ScenarioProfit: "318.61", ProfitChange: "44.54"}},
		// The scenario clamps at 100%: a customer kept forever is worth m/d.
		{"?margin=0.5&retention_points=50&horizon_years=1&annual_discount_rate=0.25", api.WhatIf{Currency: "EUR", Customers: 4,
			BaselineRetention: 0.75, ScenarioRetention: 1, AnnualDiscountRate: 0.25, Margin: 0.5, HorizonYears: 1,
			BaselineValue: "225.00", ScenarioValue: "600.00", ValueChange: "375.00",
			BaselineProfit: "90.00", ScenarioProfit: "120.00", ProfitChange: "30.00"}},
		{"?retention_points=-50&margin=0", api.WhatIf{Currency: "EUR", Customers: 4, BaselineRetention: 0.75, ScenarioRetention: 0.25,
			AnnualDiscountRate: 0.1, Margin: 0, HorizonYears: 5,
			BaselineValue: "0.00", ScenarioValue: "0.00", ValueChange: "0.00",
			BaselineProfit: "0.00", ScenarioProfit: "0.00", ProfitChange: "0.00"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			got := insGet[api.WhatIf](e, "/v1/analytics/what-if"+tc.query)
			if diff := cmp.Diff(tc.want, got, insApprox); diff != "" {
				t.Errorf("what-if (-want +got):\n%s", diff)
			}
		})
	}
	p := problem(t, e.do(request{Method: "GET", Path: "/v1/analytics/what-if?retention_points=50&annual_discount_rate=0"}), http.StatusUnprocessableEntity, "validation_failed")
	if diff := cmp.Diff([]string{"query:annual_discount_rate"}, pointers(p)); diff != "" {
		t.Errorf("pointers (-want +got):\n%s", diff)
	}
	p = problem(t, e.do(request{Method: "GET", Path: "/v1/analytics/what-if?retention_points=51"}), http.StatusBadRequest, "invalid_request")
	if diff := cmp.Diff([]string{"query:retention_points"}, pointers(p)); diff != "" {
		t.Errorf("pointers (-want +got):\n%s", diff)
	}
}

func TestInsightsPermissions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	insRetentionFixture(e)
	reader, other := e.key(crm.PermAnalyticsRead), e.key(crm.PermCustomersRead, crm.PermTransactionsRead)
	calls := []request{
		{Method: "GET", Path: "/v1/analytics/retention"},
		{Method: "POST", Path: "/v1/analytics/retention/projection", Body: map[string]any{"survivors": []int{10, 5, 3}}},
		{Method: "GET", Path: "/v1/analytics/concentration"},
		{Method: "GET", Path: "/v1/analytics/acquisition"},
		{Method: "GET", Path: "/v1/analytics/what-if?currency=EUR"},
	}
	for _, call := range calls {
		t.Run(call.Method+" "+call.Path, func(t *testing.T) {
			call.Key = other
			problem(t, e.do(call), http.StatusForbidden, "forbidden")
			call.Key = "-"
			problem(t, e.do(call), http.StatusUnauthorized, "unauthorized")
			call.Key = reader
			res := e.do(call)
			if res.Status != http.StatusOK && !(res.Status == 422 && call.Path == "/v1/analytics/what-if?currency=EUR") {
				t.Errorf("with analytics:read: %d %s", res.Status, res.Body)
			}
		})
	}
}

// TestInsightsScope checks that a partner's scope confines every insight to its subtree, by
// calling the service with the scope a partner key would carry.
func TestInsightsScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	north := insCustomer(e, map[string]any{"kind": "business", "role": "distributor"})
	dealer := insCustomer(e, map[string]any{"kind": "business", "role": "dealer", "parent_id": north})
	shopper := insCustomer(e, map[string]any{"parent_id": dealer, "acquisition_channel": "dealer"})
	outsider := insCustomer(e, map[string]any{"acquisition_channel": "web"})
	insRecord(e,
		insTx(shopper, "purchase", "2025-01-10T10:00:00Z", "100", "EUR"), insTx(shopper, "purchase", "2025-02-10T10:00:00Z", "100", "EUR"),
		insTx(outsider, "purchase", "2025-01-15T10:00:00Z", "300", "EUR"), insTx(outsider, "purchase", "2025-04-15T10:00:00Z", "300", "USD"),
		insTx(north, "purchase", "2025-03-01T10:00:00Z", "50", "EUR"),
	)
	insights, ctx := e.app.Insights, context.Background()
	root := uuid.MustParse(north)
	partner, all := crm.Scope{Root: &root}, crm.Scope{}

	conc, err := insights.Concentration(ctx, partner, analytics.ConcentrationQuery{})
	if err != nil || conc.Customers != 2 || conc.Total != "250.00" || conc.Currency != "EUR" {
		t.Errorf("partner concentration = %+v, %v; want 2 customers, 250.00 EUR", conc, err)
	}
	if conc, err := insights.Concentration(ctx, all, analytics.ConcentrationQuery{}); err != nil || conc.Customers != 3 || conc.Total != "550.00" {
		t.Errorf("concentration = %+v, %v; want 3 customers, 550.00", conc, err)
	}

	ret, err := insights.Retention(ctx, partner, analytics.RetentionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var sizes [][]int
	for _, c := range ret.Cohorts {
		sizes = append(sizes, c.Active)
	}
	// Within the subtree the latest purchase is in March, not the outsider's April.
	if diff := cmp.Diff([][]int{{1, 1, 0}, {1}}, sizes); diff != "" {
		t.Errorf("partner cohorts (-want +got):\n%s", diff)
	}

	proj, err := insights.ProjectRetention(ctx, partner, analytics.ProjectionRequest{Cohort: &analytics.CohortSelector{Unit: analytics.CohortMonth, Start: insTime("2025-01-01T00:00:00Z")}})
	if err != nil || !cmp.Equal(proj.Survivors, []int{1, 1, 0}) {
		t.Errorf("partner cohort survivors = %v, %v; want [1 1 0]", proj.Survivors, err)
	}
	if proj, err := insights.ProjectRetention(ctx, all, analytics.ProjectionRequest{Cohort: &analytics.CohortSelector{Unit: analytics.CohortMonth, Start: insTime("2025-01-01T00:00:00Z")}}); err != nil || !cmp.Equal(proj.Survivors, []int{2, 2, 1, 1}) {
		t.Errorf("cohort survivors = %v, %v; want [2 2 1 1]", proj.Survivors, err)
	}

	acq, err := insights.Acquisition(ctx, partner, analytics.AcquisitionQuery{GroupBy: analytics.GroupByChannel})
	if err != nil {
		t.Fatal(err)
	}
	var channels []string
	for _, g := range acq.Groups {
		channels = append(channels, g.Channel)
	}
	if diff := cmp.Diff([]string{"dealer", "unknown"}, channels); diff != "" {
		t.Errorf("partner channels (-want +got):\n%s", diff)
	}
}

// TestWhatIfScope checks that the what-if analysis sees only a partner's subtree.
func TestWhatIfScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := time.Now().UTC()
	ago := func(days int) string { return now.Add(-time.Duration(days) * 24 * time.Hour).Format(time.RFC3339) }
	north := insCustomer(e, map[string]any{"kind": "business", "role": "distributor"})
	shopper := insCustomer(e, map[string]any{"parent_id": north})
	outsider := insCustomer(e, nil)
	insRecord(e,
		insTx(shopper, "purchase", ago(400), "10", "EUR"), insTx(shopper, "purchase", ago(10), "80", "EUR"),
		insTx(outsider, "purchase", ago(400), "10", "EUR"),
	)
	root := uuid.MustParse(north)
	// The partner keeps its only customer (r = 1); across all customers half are kept.
	for _, tc := range []struct {
		scope     crm.Scope
		retention float64
	}{{crm.Scope{Root: &root}, 1}, {crm.Scope{}, 0.5}} {
		w, err := e.app.Insights.WhatIf(context.Background(), tc.scope, analytics.WhatIfQuery{})
		if err != nil || w.BaselineRetention != tc.retention || w.Customers != 1 {
			t.Errorf("what-if in %v = %+v, %v; want retention %v over 1 customer", tc.scope, w, err, tc.retention)
		}
	}
}
