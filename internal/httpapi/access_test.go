package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/config"
	"github.com/centric-crm/centric/internal/crm"
)

// partnerSide is one distributor's subtree in the access fixture: the distributor, a dealer
// below it, a consumer below the dealer, shoppers the partner created by reference, and their
// transactions.
type partnerSide struct {
	name      string
	key       string // an admin key confined to the distributor's subtree
	keyID     string
	dist      string
	dealer    string
	dealerRef string // the dealer's external id in source "shop"
	customer  string
	custRef   string // the consumer's external id in source "shop"
	tx        string // one of the consumer's transactions
	txRef     string // that transaction's external id in source "shop"
	segment   string // a custom segment the partner created: its dealer's subtree
	ids       []string
	// probe is a customer the last feed request of the matrix made, changed and deleted
	// below the side's dealer, and probeTx its transaction.
	probe, probeTx string
}

// accessFixture is two sibling partners under one head office, an unconfined admin and an
// unconfined read-only key, with transactions and scores from a model run.
type accessFixture struct {
	e      *env
	hq     string
	reader string
	a, b   partnerSide
	run    string
	// builtin is the built-in segment the last built-in segment request of the matrix named.
	builtin string
}

func newAccessFixture(t *testing.T) *accessFixture {
	t.Helper()
	e := newEnvWith(t, func(c *config.Config) { c.RateLimit, c.RateBurst = 10000, 10000 })
	fx := &accessFixture{e: e, reader: e.key(crm.PermCustomersRead, crm.PermTransactionsRead, crm.PermAnalyticsRead, crm.PermSegmentsRead)}
	fx.hq = createCustomer(e, map[string]any{"kind": "business", "role": "other", "name": "Head office"})["id"].(string)
	now := time.Now().UTC()
	for i, side := range []*partnerSide{&fx.a, &fx.b} {
		n := string(rune('a' + i))
		side.name = n
		side.dist = createCustomer(e, map[string]any{"kind": "business", "role": "distributor", "name": "Distributor " + n, "parent_id": fx.hq})["id"].(string)
		side.dealerRef = "dealer-" + n
		side.dealer = createCustomer(e, map[string]any{
			"kind": "business", "role": "dealer", "name": "Dealer " + n, "parent_id": side.dist,
			"external_refs": []any{map[string]any{"source": "shop", "external_id": side.dealerRef}},
		})["id"].(string)
		side.custRef = "cust-" + n
		side.customer = createCustomer(e, map[string]any{
			"kind": "consumer", "name": "Customer " + n, "parent_id": side.dealer,
			"external_refs": []any{map[string]any{"source": "shop", "external_id": side.custRef}},
		})["id"].(string)
		created := e.mustDo(request{Method: "POST", Path: "/v1/api-keys", Body: map[string]any{
			"name": "partner " + n, "permissions": []string{"admin"}, "root_customer_id": side.dist,
		}}, http.StatusCreated).json(t)
		side.key, side.keyID = created["secret"].(string), created["id"].(string)
		// The partner syncs its shoppers by reference; they are created below its distributor.
		var items []any
		for c := range 25 {
			if c < 10 {
				// Purchases a year or two ago, so this year's retention is known.
				items = append(items, map[string]any{
					"customer_ref": map[string]any{"source": "shop", "external_id": fmt.Sprintf("%s-shopper-%d", n, c)},
					"type":         "purchase", "occurred_at": now.AddDate(0, 0, -450-7*c).Format(time.RFC3339),
					"amount": "12.00", "currency": "EUR",
				})
			}
			for k := range 1 + (c+i)%4 {
				items = append(items, map[string]any{
					"customer_ref": map[string]any{"source": "shop", "external_id": fmt.Sprintf("%s-shopper-%d", n, c)},
					"type":         "purchase", "occurred_at": now.AddDate(0, 0, -300+k*45+c).Format(time.RFC3339),
					"amount": fmt.Sprintf("%d.25", 10+c%7+k+5*i), "currency": "EUR", "dealer_id": side.dealer,
				})
			}
		}
		for k := range 3 {
			items = append(items, map[string]any{
				"customer_id": side.customer, "type": "purchase", "occurred_at": now.AddDate(0, 0, -200+k*60).Format(time.RFC3339),
				"amount": "40.00", "currency": "EUR", "source": "shop", "external_id": fmt.Sprintf("%s-order-%d", n, k),
			})
		}
		res := e.mustDo(request{Method: "POST", Path: "/v1/transactions/batch", Key: side.key, Body: map[string]any{"items": items, "create_customers": true, "all_or_none": true}}, http.StatusOK).json(t)
		results := res["results"].([]any)
		side.tx, side.txRef = results[len(results)-1].(map[string]any)["id"].(string), n+"-order-2"
		page := e.mustDo(request{Method: "GET", Path: "/v1/customers?limit=200&descendant_of=" + side.dist}, http.StatusOK).json(t)
		side.ids = []string{side.dist}
		for _, c := range page["data"].([]any) {
			side.ids = append(side.ids, c.(map[string]any)["id"].(string))
		}
		if len(side.ids) != 28 {
			t.Fatalf("partner %s subtree has %d customers, want 28", n, len(side.ids))
		}
		side.segment = e.mustDo(request{Method: "POST", Path: "/v1/segments", Key: side.key, Body: map[string]any{
			"name": "Dealer " + n + " accounts", "definition": map[string]any{"field": "subtree", "op": "eq", "value": side.dealer},
		}}, http.StatusCreated).json(t)["id"].(string)
	}
	run := runModel(t, e, map[string]any{"time_unit": "day", "currency": "EUR", "penalty": 0.1})
	if run["status"] != "succeeded" {
		t.Fatalf("model run = %v", run)
	}
	fx.run = run["id"].(string)
	return fx
}

// caller names who sends a request in a cell of the matrix.
type caller int

const (
	asAdmin   caller = iota // the unconfined admin key, on partner a's records
	asReader                // an unconfined read-only key, on partner a's records
	asOwn                   // partner a's confined key, on its own records
	asSibling               // partner a's confined key, on partner b's records
)

func (c caller) String() string {
	return [...]string{"admin", "reader", "partner own", "partner sibling"}[c]
}

// cell is the expected outcome of one caller's request: a status, and for errors a problem
// code; check, when set, asserts the body.
type cell struct {
	status int
	code   string
	check  func(t *testing.T, fx *accessFixture, res response)
}

// accessCase is one row of the matrix: an endpoint, how to build its request against a side's
// records (creating whatever it needs first), and the outcome per caller. The sibling cell is
// also checked to answer exactly as the same request on records that do not exist (twinMissing),
// or, where a taken reference must be refused whoever holds it, exactly as the partner's own
// cell (twinOwn).
type accessCase struct {
	name  string
	build func(t *testing.T, fx *accessFixture, s *partnerSide) request
	cells [4]cell
	twin  twinKind
}

// twinKind says what the sibling cell's answer must equal.
type twinKind int

const (
	twinMissing twinKind = iota // the answer for records that do not exist
	twinOwn                     // the answer on the partner's own records
	twinNone                    // nothing: the records' references are taken whoever holds them
)

func ok(status int, check func(t *testing.T, fx *accessFixture, res response)) cell {
	return cell{status: status, check: check}
}

func fails(status int, code string) cell { return cell{status: status, code: code} }

// invalidAt is a 422 problem pointing at exactly the given fields.
func invalidAt(pointers ...string) cell {
	return cell{status: http.StatusUnprocessableEntity, code: "validation_failed", check: func(t *testing.T, _ *accessFixture, res response) {
		if diff := cmp.Diff(pointers, pointersOf(t, res)); diff != "" {
			t.Errorf("pointers (-want +got):\n%s", diff)
		}
	}}
}

func pointersOf(t *testing.T, res response) []string { return pointers(res.json(t)) }

func noBody(t *testing.T, _ *accessFixture, res response) {
	if len(res.Body) != 0 {
		t.Errorf("body = %s, want none", res.Body)
	}
}

var (
	forbidden = fails(http.StatusForbidden, "forbidden")
	notFound  = fails(http.StatusNotFound, "not_found")
)

// TestAccessMatrix sends every endpoint's request as an unconfined admin, an unconfined
// read-only key, a partner key on its own records and the same key on its sibling's records,
// and asserts the status and body of every cell.
func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	fx := newAccessFixture(t)
	ops := newOperationFinder(t)
	covered := map[string]bool{}
	for _, c := range slices.Concat(accessCases(), syncAccessCases(), segmentAccessCases()) {
		var own response
		for who := asAdmin; who <= asSibling; who++ {
			want := c.cells[who]
			side, key := &fx.a, fx.e.admin
			switch who {
			case asReader:
				key = fx.reader
			case asOwn:
				key = fx.a.key
			case asSibling:
				side, key = &fx.b, fx.a.key
			}
			req := c.build(t, fx, side)
			req.Key = key
			covered[ops.operationOf(t, req)] = true
			res := fx.e.do(req)
			name := fmt.Sprintf("%s as %s", c.name, who)
			if res.Header.Get("RateLimit-Limit") != "10000" || res.Header.Get("RateLimit-Remaining") == "" || res.Header.Get("RateLimit-Reset") == "" {
				t.Errorf("%s: rate limit headers missing: %v", name, res.Header)
			}
			if want.code != "" {
				t.Run(name+" problem", func(t *testing.T) { problem(t, res, want.status, want.code) })
			} else if res.Status != want.status {
				t.Errorf("%s: status %d, want %d; body %s", name, res.Status, want.status, res.Body)
				continue
			}
			if want.check != nil {
				t.Run(name, func(t *testing.T) { want.check(t, fx, res) })
			}
			switch {
			case who == asOwn:
				own = res
			case who != asSibling:
			case c.twin == twinMissing:
				t.Run(name+" answers as for missing records", func(t *testing.T) { fx.assertSameAsMissing(t, req, res) })
			case c.twin == twinOwn:
				t.Run(name+" answers as on own records", func(t *testing.T) {
					swap := map[string]string{fx.a.custRef: fx.b.custRef, fx.a.txRef: fx.b.txRef, fx.a.dealerRef: fx.b.dealerRef}
					if diff := cmp.Diff(normalizedProblem(t, own.Body, swap), normalizedProblem(t, res.Body, nil)); diff != "" {
						t.Errorf("(-own +sibling):\n%s", diff)
					}
				})
			}
			if who == asOwn || who == asSibling {
				t.Run(name+" names nothing of the sibling", func(t *testing.T) { fx.assertNoSiblingIDs(t, req, res) })
			}
		}
	}
	for _, id := range ops.all {
		if !covered[id] {
			t.Errorf("operation %s has no row in the matrix", id)
		}
	}
}

// operationFinder finds the operation of the contract a request is routed to.
type operationFinder struct {
	router routers.Router
	all    []string // the ids of every /v1 operation
}

func newOperationFinder(t *testing.T) *operationFinder {
	t.Helper()
	spec, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	spec.Servers = nil
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		t.Fatal(err)
	}
	f := &operationFinder{router: router}
	for path, item := range spec.Paths.Map() {
		if strings.HasPrefix(path, "/v1/") {
			for _, op := range item.Operations() {
				f.all = append(f.all, op.OperationID)
			}
		}
	}
	slices.Sort(f.all)
	return f
}

func (f *operationFinder) operationOf(t *testing.T, req request) string {
	t.Helper()
	httpReq, err := http.NewRequest(req.Method, req.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	route, _, err := f.router.FindRoute(httpReq)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	return route.Operation.OperationID
}

// other is the side that is not s.
func (fx *accessFixture) other(s *partnerSide) *partnerSide {
	if s == &fx.a {
		return &fx.b
	}
	return &fx.a
}

// siblingIDs are the ids of partner b's records.
func (fx *accessFixture) siblingIDs() []string {
	ids := append([]string{fx.b.tx, fx.b.keyID, fx.b.segment}, fx.b.ids...)
	if fx.b.probe != "" {
		ids = append(ids, fx.b.probe, fx.b.probeTx)
	}
	return ids
}

// assertNoSiblingIDs checks that a response names none of the sibling's records the request
// did not name itself.
func (fx *accessFixture) assertNoSiblingIDs(t *testing.T, req request, res response) {
	t.Helper()
	for _, id := range fx.siblingIDs() {
		if strings.Contains(string(res.Body), id) && !requestMentions(req, id) {
			t.Errorf("the response names %s of the sibling: %s", id, res.Body)
		}
	}
}

// assertSameAsMissing checks that a partner gets for its sibling's records exactly the answer
// it gets for records that do not exist.
func (fx *accessFixture) assertSameAsMissing(t *testing.T, req request, res response) {
	t.Helper()
	// The same request with every sibling id and reference swapped for one that exists nowhere.
	swap := map[string]string{fx.b.custRef: "nobody-has-this", fx.b.txRef: "no-such-order", fx.b.dealerRef: "no-such-dealer"}
	for _, id := range fx.siblingIDs() {
		swap[id] = uuid.NewString()
	}
	twin := req
	twin.Path = replaceAll(req.Path, swap)
	if req.Body != nil {
		raw, err := json.Marshal(req.Body)
		if err != nil {
			t.Fatal(err)
		}
		twin.Body = replaceAll(string(raw), swap)
	}
	missing := fx.e.do(twin)
	back := map[string]string{}
	for from, to := range swap {
		back[to] = from
	}
	got, want := normalizedProblem(t, res.Body, nil), normalizedProblem(t, missing.Body, back)
	if res.Status != missing.Status {
		t.Errorf("status %d for the sibling's records, %d for missing ones", res.Status, missing.Status)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the sibling's records answer differently from missing ones (-missing +sibling):\n%s", diff)
	}
}

func requestMentions(req request, s string) bool {
	raw, _ := json.Marshal(req.Body)
	return strings.Contains(req.Path, s) || strings.Contains(string(raw), s)
}

func replaceAll(s string, swap map[string]string) string {
	for from, to := range swap {
		s = strings.ReplaceAll(s, from, to)
	}
	return s
}

// normalizedProblem decodes a body without its request id, with the given replacements made.
func normalizedProblem(t *testing.T, body []byte, swap map[string]string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(replaceAll(string(body), swap)), &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	delete(v, "request_id")
	return v
}

// --- body checks ---

func dataIDs(t *testing.T, res response) []string {
	t.Helper()
	var ids []string
	for _, item := range res.json(t)["data"].([]any) {
		ids = append(ids, item.(map[string]any)["id"].(string))
	}
	return ids
}

// listsExactly asserts a customer list holds exactly the given customers, in any order.
func listsExactly(ids func(fx *accessFixture) []string) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		got, want := dataIDs(t, res), slices.Clone(ids(fx))
		slices.Sort(got)
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("listed customers (-want +got):\n%s", diff)
		}
	}
}

func emptyList(t *testing.T, _ *accessFixture, res response) {
	t.Helper()
	if ids := dataIDs(t, res); len(ids) != 0 {
		t.Errorf("list = %v, want it empty", ids)
	}
}

// field asserts one top-level field of the body.
func field(name string, want func(fx *accessFixture) any) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		if got := res.json(t)[name]; !cmp.Equal(got, want(fx)) {
			t.Errorf("%s = %v, want %v", name, got, want(fx))
		}
	}
}

// transactionsOf asserts every listed transaction belongs to one of the customers.
func transactionsOf(ids func(fx *accessFixture) []string, wantCount int) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		data := res.json(t)["data"].([]any)
		if wantCount >= 0 && len(data) != wantCount {
			t.Errorf("%d transactions, want %d", len(data), wantCount)
		}
		allowed := ids(fx)
		for _, item := range data {
			if c := item.(map[string]any)["customer_id"].(string); !slices.Contains(allowed, c) {
				t.Errorf("transaction of customer %s listed", c)
			}
		}
	}
}

func subtreeA(fx *accessFixture) []string { return fx.a.ids }

func belowA(fx *accessFixture) []string { return fx.a.ids[1:] }

func customerA(fx *accessFixture) []string { return []string{fx.a.customer} }

// scoredBelowA asserts a list holds the 26 customers below partner a with purchases, scored.
func scoredBelowA(t *testing.T, fx *accessFixture, res response) {
	data := res.json(t)["data"].([]any)
	if len(data) != 26 {
		t.Errorf("%d scored customers, want the 26 with purchases", len(data))
	}
	for _, c := range data {
		c := c.(map[string]any)
		if !slices.Contains(fx.a.ids, c["id"].(string)) || c["scores"] == nil {
			t.Errorf("customer %v (scores %v) listed", c["id"], c["scores"])
		}
	}
}

// transactionsOfBoth asserts an unconfined list holds transactions of both partners.
func transactionsOfBoth(t *testing.T, fx *accessFixture, res response) {
	var a, b bool
	for _, item := range res.json(t)["data"].([]any) {
		c := item.(map[string]any)["customer_id"].(string)
		a = a || slices.Contains(fx.a.ids, c)
		b = b || slices.Contains(fx.b.ids, c)
	}
	if !a || !b {
		t.Errorf("transactions of partner a listed: %v, of partner b: %v; want both", a, b)
	}
}

// listsBothPartnerKeys asserts an unconfined admin sees both partners' keys.
func listsBothPartnerKeys(t *testing.T, fx *accessFixture, res response) {
	got := dataIDs(t, res)
	if !slices.Contains(got, fx.a.keyID) || !slices.Contains(got, fx.b.keyID) {
		t.Errorf("keys %v, want both partners' keys %s and %s among them", got, fx.a.keyID, fx.b.keyID)
	}
}
func everyone(fx *accessFixture) []string {
	return append(append([]string{fx.hq}, fx.a.ids...), fx.b.ids...)
}

// newConsumer creates a consumer below the side's dealer as the unconfined admin.
func newConsumer(t *testing.T, fx *accessFixture, s *partnerSide) string {
	t.Helper()
	return createCustomer(fx.e, map[string]any{"kind": "consumer", "parent_id": s.dealer})["id"].(string)
}

func get(path string) request { return request{Method: "GET", Path: path} }

func accessCases() []accessCase {
	customerList := func(query string) func(*testing.T, *accessFixture, *partnerSide) request {
		return func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
			return get("/v1/customers?limit=200" + strings.NewReplacer("{dist}", s.dist, "{dealer}", s.dealer, "{ref}", s.custRef).Replace(query))
		}
	}
	ownCustomer := func(fx *accessFixture) any { return fx.a.customer }
	return []accessCase{
		{
			name: "get a customer referred from another subtree",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				fx.e.mustDo(request{Method: "PATCH", Path: "/v1/customers/" + s.customer, Body: map[string]any{"referred_by": fx.other(s).customer}}, http.StatusOK)
				return get("/v1/customers/" + s.customer)
			},
			// The referral stays, but a confined key does not see who it points to.
			cells: [4]cell{ok(200, field("referred_by", func(fx *accessFixture) any { return fx.b.customer })), ok(200, field("referred_by", func(fx *accessFixture) any { return fx.b.customer })), ok(200, field("referred_by", func(*accessFixture) any { return nil })), notFound},
		},
		{
			name: "get a transaction through another subtree's dealer",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				tx := fx.e.mustDo(request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
					"customer_id": s.customer, "dealer_id": fx.other(s).dealer, "type": "cost",
					"occurred_at": "2026-01-01T10:00:00Z", "amount": "1.00", "currency": "EUR",
				}}, http.StatusCreated).json(t)
				return get("/v1/transactions/" + tx["id"].(string))
			},
			cells: [4]cell{ok(200, field("dealer_id", func(fx *accessFixture) any { return fx.b.dealer })), ok(200, field("dealer_id", func(fx *accessFixture) any { return fx.b.dealer })), ok(200, field("dealer_id", func(*accessFixture) any { return nil })), notFound},
		},
		{
			name:  "list customers",
			build: customerList(""),
			cells: [4]cell{ok(200, listsExactly(everyone)), ok(200, listsExactly(everyone)), ok(200, listsExactly(subtreeA)), ok(200, listsExactly(subtreeA))},
		},
		{
			name:  "list customers below a distributor",
			build: customerList("&descendant_of={dist}"),
			cells: [4]cell{ok(200, listsExactly(belowA)), ok(200, listsExactly(belowA)), ok(200, listsExactly(belowA)), ok(200, emptyList)},
		},
		{
			name:  "list a dealer's children",
			build: customerList("&parent_id={dealer}"),
			cells: [4]cell{ok(200, listsExactly(customerA)), ok(200, listsExactly(customerA)), ok(200, listsExactly(customerA)), ok(200, emptyList)},
		},
		{
			name:  "look a customer up by external reference",
			build: customerList("&external_source=shop&external_id={ref}"),
			cells: [4]cell{ok(200, listsExactly(customerA)), ok(200, listsExactly(customerA)), ok(200, listsExactly(customerA)), ok(200, emptyList)},
		},
		{
			name:  "list customers by churn risk",
			build: customerList("&sort=-churn_risk&descendant_of={dist}"),
			cells: [4]cell{ok(200, scoredBelowA), ok(200, scoredBelowA), ok(200, scoredBelowA), ok(200, emptyList)},
		},
		{
			name: "get a customer",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return get("/v1/customers/" + s.customer)
			},
			cells: [4]cell{ok(200, field("id", ownCustomer)), ok(200, field("id", ownCustomer)), ok(200, func(t *testing.T, fx *accessFixture, res response) {
				c := res.json(t)
				if diff := cmp.Diff([]any{fx.a.dist, fx.a.dealer}, c["ancestors"]); diff != "" {
					t.Errorf("ancestors as the partner sees them (-want +got):\n%s", diff)
				}
			}), notFound},
		},
		{
			name:  "get the partner's root",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request { return get("/v1/customers/" + s.dist) },
			cells: [4]cell{ok(200, field("parent_id", func(fx *accessFixture) any { return fx.hq })), ok(200, field("parent_id", func(fx *accessFixture) any { return fx.hq })), ok(200, func(t *testing.T, fx *accessFixture, res response) {
				c := res.json(t)
				if c["parent_id"] != nil || len(c["ancestors"].([]any)) != 0 {
					t.Errorf("the root shows parent %v and ancestors %v to its partner; want its subtree only", c["parent_id"], c["ancestors"])
				}
			}), notFound},
		},
		{
			name: "create a customer below a dealer",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "parent_id": s.dealer}}
			},
			cells: [4]cell{ok(201, field("ancestors", func(fx *accessFixture) any { return []any{fx.hq, fx.a.dist, fx.a.dealer} })), forbidden, ok(201, field("ancestors", func(fx *accessFixture) any { return []any{fx.a.dist, fx.a.dealer} })), invalidAt("/parent_id")},
		},
		{
			name: "create a customer without a parent",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request {
				return request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer"}}
			},
			cells: [4]cell{ok(201, field("ancestors", func(*accessFixture) any { return []any{} })), forbidden, invalidAt("/parent_id"), invalidAt("/parent_id")},
		},
		{
			name: "create a customer referred by another",
			build: func(_ *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/customers", Body: map[string]any{"kind": "consumer", "parent_id": fx.a.dealer, "referred_by": s.customer}}
			},
			cells: [4]cell{ok(201, field("referred_by", func(fx *accessFixture) any { return fx.a.customer })), forbidden, ok(201, field("referred_by", func(fx *accessFixture) any { return fx.a.customer })), invalidAt("/referred_by")},
		},
		{
			name: "create a customer with a taken external reference",
			build: func(_ *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/customers", Body: map[string]any{
					"kind": "consumer", "parent_id": fx.a.dealer, "external_refs": []any{map[string]any{"source": "shop", "external_id": s.custRef}},
				}}
			},
			// Taken is taken wherever the holder is: the answer says so and names no one.
			cells: [4]cell{fails(409, "conflict"), forbidden, fails(409, "conflict"), fails(409, "conflict")},
			twin:  twinOwn,
		},
		{
			name: "rename a customer",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "PATCH", Path: "/v1/customers/" + s.customer, Body: map[string]any{"name": "Renamed"}}
			},
			cells: [4]cell{ok(200, field("name", func(*accessFixture) any { return "Renamed" })), forbidden, ok(200, field("name", func(*accessFixture) any { return "Renamed" })), notFound},
		},
		{
			name: "move an own customer below the sibling's dealer",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "PATCH", Path: "/v1/customers/" + newConsumer(t, fx, &fx.a), Body: map[string]any{"parent_id": s.dealer}}
			},
			cells: [4]cell{ok(200, field("parent_id", func(fx *accessFixture) any { return fx.a.dealer })), forbidden, ok(200, field("parent_id", func(fx *accessFixture) any { return fx.a.dealer })), invalidAt("/parent_id")},
		},
		{
			name: "move a customer below the partner's dealer",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "PATCH", Path: "/v1/customers/" + newConsumer(t, fx, s), Body: map[string]any{"parent_id": fx.a.dealer}}
			},
			cells: [4]cell{ok(200, field("parent_id", func(fx *accessFixture) any { return fx.a.dealer })), forbidden, ok(200, field("parent_id", func(fx *accessFixture) any { return fx.a.dealer })), notFound},
		},
		{
			name: "move a dealer out of every subtree",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				dealer := createCustomer(fx.e, map[string]any{"kind": "business", "role": "dealer", "parent_id": s.dist})["id"].(string)
				return request{Method: "PATCH", Path: "/v1/customers/" + dealer, Body: map[string]any{"parent_id": nil}}
			},
			cells: [4]cell{ok(200, field("ancestors", func(*accessFixture) any { return []any{} })), forbidden, invalidAt("/parent_id"), notFound},
		},
		{
			name: "detach the partner's root",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "PATCH", Path: "/v1/customers/" + s.dist, Body: map[string]any{"parent_id": nil}}
			},
			cells: [4]cell{ok(200, field("parent_id", func(*accessFixture) any { return nil })), forbidden, forbidden, notFound},
		},
		{
			name: "move the partner's root",
			build: func(_ *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "PATCH", Path: "/v1/customers/" + s.dist, Body: map[string]any{"parent_id": fx.hq}}
			},
			// The admin puts it back; for the partner its root's parent is not its to set, not
			// even its current one.
			cells: [4]cell{ok(200, field("ancestors", func(fx *accessFixture) any { return []any{fx.hq} })), forbidden, forbidden, notFound},
		},
		{
			name: "make the partner's root a consumer",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "PATCH", Path: "/v1/customers/" + s.dist, Body: map[string]any{"kind": "consumer", "role": nil}}
			},
			// The admin is refused too, but because the root has customers below it.
			cells: [4]cell{invalidAt("/kind"), forbidden, forbidden, notFound},
		},
		{
			name: "refer a customer to another",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "PATCH", Path: "/v1/customers/" + fx.a.customer, Body: map[string]any{"referred_by": s.dealer}}
			},
			cells: [4]cell{ok(200, field("referred_by", func(fx *accessFixture) any { return fx.a.dealer })), forbidden, ok(200, field("referred_by", func(fx *accessFixture) any { return fx.a.dealer })), invalidAt("/referred_by")},
		},
		{
			name: "delete a customer",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "DELETE", Path: "/v1/customers/" + newConsumer(t, fx, s)}
			},
			cells: [4]cell{ok(204, noBody), forbidden, ok(204, noBody), notFound},
		},
		{
			name: "delete the partner's root",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "DELETE", Path: "/v1/customers/" + s.dist}
			},
			cells: [4]cell{fails(409, "conflict"), forbidden, forbidden, notFound},
		},
		{
			name: "list a customer's transactions",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return get("/v1/customers/" + s.customer + "/transactions")
			},
			cells: [4]cell{ok(200, transactionsOf(customerA, -1)), ok(200, transactionsOf(customerA, -1)), ok(200, transactionsOf(customerA, -1)), notFound},
		},
		{
			name:  "list transactions",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request { return get("/v1/transactions?limit=200") },
			cells: [4]cell{ok(200, transactionsOfBoth), ok(200, transactionsOfBoth), ok(200, transactionsOf(subtreeA, -1)), ok(200, transactionsOf(subtreeA, -1))},
		},
		{
			name: "list transactions of one customer",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return get("/v1/transactions?customer_id=" + s.customer)
			},
			cells: [4]cell{ok(200, transactionsOf(customerA, -1)), ok(200, transactionsOf(customerA, -1)), ok(200, transactionsOf(customerA, -1)), ok(200, emptyList)},
		},
		{
			name:  "get a transaction",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request { return get("/v1/transactions/" + s.tx) },
			cells: [4]cell{ok(200, field("id", func(fx *accessFixture) any { return fx.a.tx })), ok(200, field("id", func(fx *accessFixture) any { return fx.a.tx })), ok(200, field("customer_id", ownCustomer)), notFound},
		},
		{
			name: "record a transaction for a customer",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
					"customer_id": s.customer, "type": "cost", "occurred_at": "2026-01-02T10:00:00Z", "amount": "5.00", "currency": "EUR",
				}}
			},
			cells: [4]cell{ok(201, field("customer_id", ownCustomer)), forbidden, ok(201, field("customer_id", ownCustomer)), invalidAt("/customer_id")},
		},
		{
			name: "record a transaction by customer reference",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
					"customer_ref": map[string]any{"source": "shop", "external_id": s.custRef}, "type": "cost",
					"occurred_at": "2026-01-03T10:00:00Z", "amount": "5.00", "currency": "EUR",
				}}
			},
			cells: [4]cell{ok(201, field("customer_id", ownCustomer)), forbidden, ok(201, field("customer_id", ownCustomer)), invalidAt("/customer_ref")},
		},
		{
			name: "record a transaction through a dealer",
			build: func(_ *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
					"customer_id": fx.a.customer, "dealer_id": s.dealer, "type": "cost",
					"occurred_at": "2026-01-04T10:00:00Z", "amount": "5.00", "currency": "EUR",
				}}
			},
			cells: [4]cell{ok(201, field("dealer_id", func(fx *accessFixture) any { return fx.a.dealer })), forbidden, ok(201, field("dealer_id", func(fx *accessFixture) any { return fx.a.dealer })), invalidAt("/dealer_id")},
		},
		{
			name: "record a transaction under a taken transaction reference",
			build: func(_ *testing.T, fx *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/transactions", Body: map[string]any{
					"customer_id": fx.a.customer, "type": "purchase", "occurred_at": "2026-01-05T10:00:00Z",
					"amount": "1.00", "currency": "EUR", "source": "shop", "external_id": s.txRef,
				}}
			},
			// The reference is taken either way; only the partner's own transaction is named.
			cells: [4]cell{fails(409, "conflict"), forbidden, ok(409, namesTransaction(true)), ok(409, namesTransaction(false))},
			twin:  twinNone,
		},
		{
			name: "record a batch naming customers by reference",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/transactions/batch", Body: map[string]any{"items": []any{map[string]any{
					"customer_ref": map[string]any{"source": "shop", "external_id": s.custRef}, "type": "cost",
					"occurred_at": "2026-01-06T10:00:00Z", "amount": "2.00", "currency": "EUR",
				}}}}
			},
			cells: [4]cell{ok(200, batchStatuses("created")), forbidden, ok(200, batchStatuses("created")), ok(200, batchStatuses("error"))},
		},
		{
			name: "record a batch creating customers by reference",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/transactions/batch", Body: map[string]any{"create_customers": true, "items": []any{
					map[string]any{"customer_ref": map[string]any{"source": "shop", "external_id": s.custRef}, "type": "cost",
						"occurred_at": "2026-01-07T10:00:00Z", "amount": "2.00", "currency": "EUR"},
					map[string]any{"customer_ref": map[string]any{"source": "shop", "external_id": "new-" + uuid.NewString()}, "type": "cost",
						"occurred_at": "2026-01-07T10:00:00Z", "amount": "2.00", "currency": "EUR"},
				}}}
			},
			cells: [4]cell{ok(200, batchStatuses("created", "created")), forbidden, ok(200, newShopperBelowRoot), ok(200, batchStatuses("error", "created"))},
			twin:  twinNone,
		},
		{
			name: "get a customer's scores",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return get("/v1/customers/" + s.customer + "/scores")
			},
			cells: [4]cell{ok(200, field("customer_id", ownCustomer)), ok(200, field("customer_id", ownCustomer)), ok(200, field("model_run_id", func(fx *accessFixture) any { return fx.run })), notFound},
		},
		{
			name:  "list model runs",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request { return get("/v1/analytics/model-runs") },
			cells: [4]cell{ok(200, oneRun), ok(200, oneRun), ok(200, oneRun), ok(200, oneRun)},
		},
		{
			name: "get the latest model run",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request {
				return get("/v1/analytics/model-runs/latest")
			},
			cells: [4]cell{ok(200, field("id", func(fx *accessFixture) any { return fx.run })), ok(200, field("id", func(fx *accessFixture) any { return fx.run })), ok(200, field("id", func(fx *accessFixture) any { return fx.run })), ok(200, field("id", func(fx *accessFixture) any { return fx.run }))},
		},
		{
			name: "get a model run",
			build: func(_ *testing.T, fx *accessFixture, _ *partnerSide) request {
				return get("/v1/analytics/model-runs/" + fx.run)
			},
			// Runs hold population parameters and counts only, the same for every key.
			cells: [4]cell{ok(200, field("status", succeeded)), ok(200, field("status", succeeded)), ok(200, field("status", succeeded)), ok(200, field("status", succeeded))},
		},
		{
			name: "start a model run",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request {
				// An unknown model fails validation only after the caller was let in; a confined
				// key is turned away before its body is read.
				return request{Method: "POST", Path: "/v1/analytics/model-runs", Body: map[string]any{"model": "pareto"}}
			},
			cells: [4]cell{invalidAt("/model"), forbidden, ok(403, confinedRunRefused), ok(403, confinedRunRefused)},
		},
		{
			name: "concentration",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request {
				return get("/v1/analytics/concentration")
			},
			cells: [4]cell{ok(200, field("customers", count(52))), ok(200, field("customers", count(52))), ok(200, field("customers", count(26))), ok(200, field("customers", count(26)))},
		},
		{
			name: "retention cohorts",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request {
				return get("/v1/analytics/retention?cohort=month")
			},
			cells: [4]cell{ok(200, cohortTotal(52)), ok(200, cohortTotal(52)), ok(200, cohortTotal(26)), ok(200, cohortTotal(26))},
		},
		{
			name: "retention projection from a cohort",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request {
				return request{Method: "POST", Path: "/v1/analytics/retention/projection", Body: map[string]any{"cohort": firstCohort()}}
			},
			cells: [4]cell{ok(200, projectionMatches(false)), ok(200, projectionMatches(false)), ok(200, projectionMatches(true)), ok(200, projectionMatches(true))},
		},
		{
			name: "acquisition",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request {
				return get("/v1/analytics/acquisition?group_by=channel")
			},
			cells: [4]cell{ok(200, acquisitionMatches(false)), ok(200, acquisitionMatches(false)), ok(200, acquisitionMatches(true)), ok(200, acquisitionMatches(true))},
		},
		{
			name: "what-if",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request {
				return get("/v1/analytics/what-if?retention_points=5")
			},
			cells: [4]cell{ok(200, whatIfMatches(false)), ok(200, whatIfMatches(false)), ok(200, whatIfMatches(true)), ok(200, whatIfMatches(true))},
		},
		{
			name: "issue a key",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request {
				return request{Method: "POST", Path: "/v1/api-keys", Body: map[string]any{"name": "dealer sync", "permissions": []string{"customers:read"}, "root_customer_id": s.dealer}}
			},
			cells: [4]cell{ok(201, field("root_customer_id", func(fx *accessFixture) any { return fx.a.dealer })), forbidden, ok(201, field("root_customer_id", func(fx *accessFixture) any { return fx.a.dealer })), invalidAt("/root_customer_id")},
		},
		{
			name: "issue an unconfined key",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request {
				return request{Method: "POST", Path: "/v1/api-keys", Body: map[string]any{"name": "everything", "permissions": []string{"admin"}}}
			},
			cells: [4]cell{ok(201, field("root_customer_id", func(*accessFixture) any { return nil })), forbidden, invalidAt("/root_customer_id"), invalidAt("/root_customer_id")},
		},
		{
			name:  "list keys",
			build: func(_ *testing.T, _ *accessFixture, _ *partnerSide) request { return get("/v1/api-keys?limit=200") },
			cells: [4]cell{ok(200, listsBothPartnerKeys), forbidden, ok(200, keysRootedIn(subtreeA)), ok(200, keysRootedIn(subtreeA))},
		},
		{
			name:  "get a key",
			build: func(_ *testing.T, _ *accessFixture, s *partnerSide) request { return get("/v1/api-keys/" + s.keyID) },
			cells: [4]cell{ok(200, field("prefix", keyPrefixOf)), forbidden, ok(200, field("prefix", keyPrefixOf)), notFound},
		},
		{
			name: "revoke a key",
			build: func(t *testing.T, fx *accessFixture, s *partnerSide) request {
				created := fx.e.mustDo(request{Method: "POST", Path: "/v1/api-keys", Body: map[string]any{
					"name": "to revoke", "permissions": []string{"customers:read"}, "root_customer_id": s.dealer,
				}}, http.StatusCreated).json(t)
				return request{Method: "DELETE", Path: "/v1/api-keys/" + created["id"].(string)}
			},
			cells: [4]cell{ok(200, revoked), forbidden, ok(200, revoked), notFound},
		},
	}
}

func succeeded(*accessFixture) any { return "succeeded" }

func count(n int) func(*accessFixture) any { return func(*accessFixture) any { return float64(n) } }

func batchStatuses(want ...string) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, _ *accessFixture, res response) {
		var got []string
		for _, r := range res.json(t)["results"].([]any) {
			got = append(got, r.(map[string]any)["status"].(string))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("item statuses (-want +got):\n%s", diff)
		}
	}
}

// newShopperBelowRoot asserts a confined batch that creates a customer places it directly
// below the partner's root.
func newShopperBelowRoot(t *testing.T, fx *accessFixture, res response) {
	batchStatuses("created", "created")(t, fx, res)
	created := res.json(t)["results"].([]any)[1].(map[string]any)["customer_id"].(string)
	c := fx.e.mustDo(get("/v1/customers/"+created), http.StatusOK).json(t)
	if c["parent_id"] != fx.a.dist {
		t.Errorf("created customer's parent = %v, want the partner's root %s", c["parent_id"], fx.a.dist)
	}
}

func oneRun(t *testing.T, fx *accessFixture, res response) {
	if ids := dataIDs(t, res); !cmp.Equal(ids, []string{fx.run}) {
		t.Errorf("runs = %v, want [%s]", ids, fx.run)
	}
}

func confinedRunRefused(t *testing.T, _ *accessFixture, res response) {
	p := problem(t, res, http.StatusForbidden, "forbidden")
	if !strings.Contains(p["detail"].(string), "not confined to a customer subtree") {
		t.Errorf("detail = %q, want it to say an unconfined key is needed", p["detail"])
	}
}

func cohortTotal(want int) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, _ *accessFixture, res response) {
		total := 0
		for _, c := range res.json(t)["cohorts"].([]any) {
			total += int(c.(map[string]any)["size"].(float64))
		}
		if total != want {
			t.Errorf("cohorts hold %d customers, want %d", total, want)
		}
	}
}

// partnerScope is partner a's scope, for comparing its answers with the analytics service's.
func (fx *accessFixture) scope(confined bool) crm.Scope {
	if !confined {
		return crm.Scope{}
	}
	root := uuid.MustParse(fx.a.dist)
	return crm.Scope{Root: &root}
}

// firstCohort is the month cohort of the fixture's first purchases.
func firstCohort() map[string]any {
	first := time.Now().UTC().AddDate(0, 0, -450)
	return map[string]any{"unit": "month", "start": time.Date(first.Year(), first.Month(), 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)}
}

// projectionMatches asserts the survivors projected are those of the cohort within the scope.
func projectionMatches(confined bool) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		start, _ := time.Parse(time.RFC3339, firstCohort()["start"].(string))
		want, err := fx.e.app.Insights.ProjectRetention(t.Context(), fx.scope(confined), analytics.ProjectionRequest{
			Cohort: &analytics.CohortSelector{Unit: analytics.CohortMonth, Start: start},
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []int
		for _, n := range res.json(t)["survivors"].([]any) {
			got = append(got, int(n.(float64)))
		}
		if diff := cmp.Diff(want.Survivors, got); diff != "" {
			t.Errorf("survivors (-want +got):\n%s", diff)
		}
	}
}

// acquisitionMatches asserts the new customers per channel are those within the scope.
func acquisitionMatches(confined bool) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		a, err := fx.e.app.Insights.Acquisition(t.Context(), fx.scope(confined), analytics.AcquisitionQuery{GroupBy: analytics.GroupByChannel})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int{}
		for _, g := range a.Groups {
			want[g.Channel] = g.NewCustomers
		}
		got := map[string]int{}
		for _, g := range res.json(t)["groups"].([]any) {
			g := g.(map[string]any)
			got[g["key"].(string)] = int(g["new_customers"].(float64))
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("new customers by channel (-want +got):\n%s", diff)
		}
	}
}

// whatIfMatches asserts the what-if analysis counts the customers within the scope.
func whatIfMatches(confined bool) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		w, err := fx.e.app.Insights.WhatIf(t.Context(), fx.scope(confined), analytics.WhatIfQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.json(t)["customers"]; got != float64(w.Customers) || w.Customers == 0 {
			t.Errorf("customers = %v, want %d", got, w.Customers)
		}
	}
}

// namesTransaction asserts a reference conflict names the recorded transaction only when it
// is the partner's own.
func namesTransaction(own bool) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		p := problem(t, res, http.StatusConflict, "conflict")
		detail := p["detail"].(string)
		if named := strings.Contains(detail, fx.a.tx); named != own {
			t.Errorf("detail %q names the partner's transaction: %v, want %v", detail, named, own)
		}
	}
}

// keysRootedIn asserts every listed key is confined to a customer of the set, the partner's
// own key among them.
func keysRootedIn(ids func(*accessFixture) []string) func(t *testing.T, fx *accessFixture, res response) {
	return func(t *testing.T, fx *accessFixture, res response) {
		data := res.json(t)["data"].([]any)
		var own bool
		for _, item := range data {
			k := item.(map[string]any)
			root, _ := k["root_customer_id"].(string)
			if !slices.Contains(ids(fx), root) {
				t.Errorf("key %v confined to %v listed", k["id"], k["root_customer_id"])
			}
			own = own || k["id"] == fx.a.keyID
		}
		if !own {
			t.Errorf("the partner's own key is not listed: %s", res.Body)
		}
	}
}

func keyPrefixOf(fx *accessFixture) any { return fx.a.key[:15] }

func revoked(t *testing.T, _ *accessFixture, res response) {
	if k := res.json(t); k["revoked_at"] == nil {
		t.Errorf("revoked_at = nil after revoking: %v", k)
	}
}
