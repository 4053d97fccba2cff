// Package demo generates a realistic synthetic customer base: a distributor → dealer →
// customer hierarchy of consumers and business accounts, and years of their purchases,
// refunds and costs, drawn from the very models the analytics fit — BG/NBD for when customers
// buy and when they stop, Gamma-Gamma for how much they spend — so a model run on demo data
// recovers known parameters.
//
// Generation is pure and deterministic: no I/O, no clock, no global random source. The same
// Options give the same records, ids included. Records stream through iterators, so ten
// million transactions never sit in memory at once: every customer has random streams of its
// own, derived from the seed and its index, which makes any customer's records reproducible
// without generating the ones before it.
//
// # The population
//
// Options.Customers accounts are generated. The first few are channel partners: distributors
// (one per 100,000 accounts plus two, from 3 to 20) with 3 to 10 dealers each, onboarded
// before the history starts; they have no purchases of their own. The rest are end customers,
// acquired one after another over the Options.Years before Options.End (stratified uniformly,
// so their ids, UUIDv7 stamped with their creation time, ascend): 98% consumers, 1.5%
// enterprise and 0.5% institutional accounts. 15% of end customers were sold to by a dealer
// and hang under it (parent_id = dealer, ancestors = [distributor, dealer]), carry the
// distributor's reference for them, and have the dealer on their purchases; big dealers sell
// more (dealer weights are Pareto distributed).
//
// # Purchases
//
// A customer's first purchase is its acquisition. From then on it buys as a Poisson process
// with rate λ ~ Gamma(r, α) per day and drops out after each repeat purchase with probability
// p ~ Beta(a, b) (BG/NBD, [btyd.BGNBD.SimulateHistory]); each purchase is worth a Gamma(p, ν)
// draw with ν ~ Gamma(q, γ) per customer (Gamma-Gamma, [btyd.GammaGamma.SimulateSpend]),
// multiplied by 12 for enterprise and 8 for institutional accounts, and rounded to cents.
// DefaultOptions documents the default parameters.
//
// A purchase is refunded with probability RefundRate, 1 to 21 days later, in full or for 10–90%
// of its amount (a refund's metadata names its purchase in "refund_of"). It causes a support
// cost (category "support") with probability SupportRate within 10 days. Consumers acquired
// through paid channels have an acquisition cost on their record; business accounts not
// brought in by a dealer were won by 2 to 7 sales visits in the weeks before acquisition, each
// recorded as a cost transaction in category "acquisition". No transaction occurs at or after
// End.
package demo

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/pkg/btyd"
	"github.com/centric-crm/centric/pkg/rfm"
)

// Options say what to generate.
type Options struct {
	// Customers is the number of accounts, channel partners included; at least 20.
	Customers int
	// Seed selects the data set.
	Seed uint64
	// End is the end of the history: every record is dated before it.
	End time.Time
	// Years is the length of the history: customers are acquired from Years before End on.
	Years float64
	// Currency is the ISO 4217 code of every amount.
	Currency string
	// Purchases are the BG/NBD parameters of the purchase process, with time in days.
	Purchases btyd.BetaGeoParams
	// Spend are the Gamma-Gamma parameters of consumers' spend per purchase.
	Spend btyd.GammaGammaParams
	// RefundRate is the probability that a purchase is refunded.
	RefundRate float64
	// SupportRate is the probability that a purchase causes a support cost.
	SupportRate float64
}

// DefaultOptions returns the default demo: 5,000 accounts with three years of history ending
// at end, in euros, with seed 1.
//
// The purchase process has r = 1, α = 28 days, a = 0.8, b = 7: purchase rates are
// exponentially distributed across customers with a mean of one purchase every 28 days (13 a
// year), and a customer stops after a repeat purchase with probability 10% on average, with
// wide heterogeneity (a < 1: many loyal customers, some who leave almost at once). Over
// three years this gives 9.6 purchases per customer on average and, with refunds and costs,
// about 10 transactions per account: 1,000,000 accounts give about 10,000,000 transactions.
// Spend follows p = 6, q = 3.7, γ = 30: a mean consumer purchase of pγ/(q−1) ≈ 67 in the
// currency (the CDNOW estimates with the scale doubled to today's basket sizes). 3% of
// purchases are refunded and 2% cause a support cost.
func DefaultOptions(end time.Time) Options {
	return Options{
		Customers:   5000,
		Seed:        1,
		End:         end,
		Years:       3,
		Currency:    "EUR",
		Purchases:   btyd.BetaGeoParams{R: 1, Alpha: 28, A: 0.8, B: 7},
		Spend:       btyd.GammaGammaParams{P: 6, Q: 3.7, Gamma: 30},
		RefundRate:  0.03,
		SupportRate: 0.02,
	}
}

// Shares and sizes of the population.
const (
	minCustomers     = 20
	enterpriseShare  = 0.015
	institutionShare = 0.005
	underDealerShare = 0.15
	enterpriseSpend  = 12
	institutionSpend = 8
	maxDistributors  = 20
	webshopRefShare  = 0.6
)

// streams of a customer's random numbers.
const (
	streamAccount = iota
	streamProfile
	streamHistory
	streamSetup
)

// Generator generates one demo data set.
type Generator struct {
	opts      Options
	start     time.Time
	spanDays  float64
	purchase  *btyd.BGNBD
	spend     *btyd.GammaGamma
	words     *vocabulary
	countries []country
	countryW  []float64
	// partners are the distributors, then the dealers; partner i is account i.
	partners []account
	// dealers index the dealers in partners; dealerW are their cumulative weights.
	dealers []int
	dealerW []float64
}

// account is what every record of a customer depends on.
type account struct {
	index      int
	id         uuid.UUID
	kind       crm.Kind
	role       crm.Role
	parent     int // index of the parent partner, or -1
	createdAt  time.Time
	acquiredAt time.Time
	// acquiredDay is the acquisition in days after the start of the history.
	acquiredDay float64
	channel     string
	// visits are the sales visits that won a business account, over leadDays before acquisition.
	visits   int
	leadDays float64
	// source is a distributor's reference source (partners only).
	source string
}

// New validates opts and returns a Generator.
func New(opts Options) (*Generator, error) {
	var problems []string
	if opts.Customers < minCustomers {
		problems = append(problems, fmt.Sprintf("customers must be at least %d, got %d", minCustomers, opts.Customers))
	}
	if !(opts.Years > 0 && opts.Years <= 50) {
		problems = append(problems, fmt.Sprintf("years must be in (0, 50], got %v", opts.Years))
	}
	if opts.End.IsZero() {
		problems = append(problems, "end is required")
	}
	if len(opts.Currency) != 3 || strings.ToUpper(opts.Currency) != opts.Currency {
		problems = append(problems, fmt.Sprintf("currency must be an ISO 4217 code such as EUR, got %q", opts.Currency))
	}
	if !(opts.RefundRate >= 0 && opts.RefundRate <= 1) || !(opts.SupportRate >= 0 && opts.SupportRate <= 1) {
		problems = append(problems, "refund and support rates must be in [0, 1]")
	}
	purchase, err := btyd.NewBGNBD(opts.Purchases, rfm.Day)
	if err != nil {
		problems = append(problems, "purchase parameters: "+err.Error())
	}
	spend, err := btyd.NewGammaGamma(opts.Spend)
	if err != nil {
		problems = append(problems, "spend parameters: "+err.Error())
	}
	if len(problems) > 0 {
		return nil, errors.New("demo options: " + strings.Join(problems, "; "))
	}
	end := opts.End.UTC().Truncate(time.Microsecond)
	opts.End = end
	spanDays := opts.Years * 365.25
	g := &Generator{
		opts:      opts,
		start:     end.Add(-time.Duration(spanDays * float64(24*time.Hour))).Truncate(time.Microsecond),
		spanDays:  spanDays,
		purchase:  purchase,
		spend:     spend,
		words:     newVocabulary(),
		countries: countriesFor(opts.Currency),
	}
	g.countryW = cumulative(len(g.countries), func(i int) float64 { return g.countries[i].weight })
	g.setUpPartners()
	return g, nil
}

// Options returns the options in effect, End normalised to UTC microseconds.
func (g *Generator) Options() Options { return g.opts }

// Partners returns the number of channel partners (distributors and dealers), the first
// accounts generated.
func (g *Generator) Partners() int { return len(g.partners) }

// setUpPartners creates the distributors and their dealers, onboarded in the four months
// before the history starts.
func (g *Generator) setUpPartners() {
	r := g.rng(0, streamSetup)
	n := g.opts.Customers
	distributors := min(max(n/100_000+2, 3), maxDistributors)
	// Partners are at most a tenth of the accounts.
	perDistributor := max((n/10-distributors)/distributors, 1)
	for d := range distributors {
		name := g.words.distributors[d%len(g.words.distributors)]
		if d >= len(g.words.distributors) {
			name += " " + strconv.Itoa(d/len(g.words.distributors)+1)
		}
		created := g.start.Add(-120*24*time.Hour + time.Duration(d)*24*time.Hour)
		g.partners = append(g.partners, account{
			index: d, kind: crm.KindBusiness, role: crm.RoleDistributor, parent: -1,
			createdAt: created, acquiredAt: created, channel: "partner program",
			source: slug(name) + "-erp", id: uuidV7(created, r.Uint64(), r.Uint64()),
		})
	}
	for d := range distributors {
		dealers := min(3+r.IntN(8), perDistributor)
		for k := range dealers {
			created := g.start.Add(-90*24*time.Hour + time.Duration(d*24+k*2)*time.Hour)
			i := len(g.partners)
			g.partners = append(g.partners, account{
				index: i, kind: crm.KindBusiness, role: crm.RoleDealer, parent: d,
				createdAt: created, acquiredAt: created, channel: "partner program",
				id: uuidV7(created, r.Uint64(), r.Uint64()),
			})
			g.dealers = append(g.dealers, i)
		}
	}
	weights := make([]float64, len(g.dealers))
	for i := range weights {
		weights[i] = math.Pow(1-r.Float64(), -1/1.2) // Pareto: a few big dealers
	}
	g.dealerW = cumulative(len(weights), func(i int) float64 { return weights[i] })
}

// rng returns the random stream of one purpose for one account.
func (g *Generator) rng(index int, stream uint64) *rand.Rand {
	s := splitmix(g.opts.Seed ^ splitmix(uint64(index)<<2|stream))
	return rand.New(rand.NewPCG(s, splitmix(s)))
}

// splitmix is the SplitMix64 finaliser, a good hash of integers.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// uuidV7 returns a version 7 UUID for time t with random bits from a and b. It is built
// here rather than by uuid.NewV7, which reads the clock and the system's random source, so
// that the data set is reproducible.
func uuidV7(t time.Time, a, b uint64) uuid.UUID {
	var u uuid.UUID
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint64(u[8:], b)
	binary.BigEndian.PutUint64(u[0:8], ms<<16|a&0xffff)
	u[6] = 0x70 | u[6]&0x0f // version 7
	u[8] = 0x80 | u[8]&0x3f // RFC 9562 variant
	return u
}

func cumulative(n int, weight func(int) float64) []float64 {
	out := make([]float64, n)
	sum := 0.0
	for i := range out {
		sum += weight(i)
		out[i] = sum
	}
	return out
}

// pick returns an index drawn with the cumulative weights cum.
func pick(r *rand.Rand, cum []float64) int {
	i, _ := slices.BinarySearch(cum, r.Float64()*cum[len(cum)-1])
	return min(i, len(cum)-1)
}

func slug(name string) string {
	return strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			return c
		case c >= 'A' && c <= 'Z':
			return c + 'a' - 'A'
		case c == ' ' || c == '-':
			return '-'
		}
		return -1
	}, name)
}

// day returns the instant days after the start of the history, to the microsecond.
func (g *Generator) day(days float64) time.Time {
	return g.start.Add(time.Duration(days * float64(24*time.Hour))).Truncate(time.Microsecond)
}

// account returns account i.
func (g *Generator) account(i int) account {
	if i < len(g.partners) {
		return g.partners[i]
	}
	r := g.rng(i, streamAccount)
	ends := g.opts.Customers - len(g.partners)
	k := i - len(g.partners)
	a := account{index: i, kind: crm.KindConsumer, parent: -1}
	a.acquiredDay = (float64(k) + r.Float64()) / float64(ends) * g.spanDays
	a.acquiredAt = g.day(a.acquiredDay)
	switch x := r.Float64(); {
	case x < enterpriseShare:
		a.kind, a.role = crm.KindBusiness, crm.RoleEnterprise
	case x < enterpriseShare+institutionShare:
		a.kind, a.role = crm.KindBusiness, crm.RoleInstitution
	}
	underDealer := r.Float64() < underDealerShare
	channel := r.Float64()
	lead, visits := 14+r.Float64()*76, 2+r.IntN(6)
	switch {
	case underDealer:
		a.parent = g.dealers[pick(r, g.dealerW)]
		a.channel = "dealer"
	case a.kind == crm.KindBusiness:
		a.channel = "sales"
		if channel < 0.25 {
			a.channel = "event"
		}
		a.visits, a.leadDays = visits, lead
	default:
		a.channel = consumerChannel(channel)
	}
	a.createdAt = a.acquiredAt.Add(-time.Duration(a.leadDays * float64(24*time.Hour))).Truncate(time.Microsecond)
	a.id = uuidV7(a.createdAt, r.Uint64(), r.Uint64())
	return a
}

// consumerChannel maps a uniform draw to a consumer's acquisition channel.
func consumerChannel(x float64) string {
	switch {
	case x < 0.30:
		return "organic"
	case x < 0.55:
		return "search"
	case x < 0.70:
		return "social"
	case x < 0.80:
		return "referral"
	case x < 0.90:
		return "email"
	}
	return "marketplace"
}

// acquisitionCost returns the mean cost of acquiring a consumer through a channel, or 0 for
// unpaid channels.
func acquisitionCost(channel string) float64 {
	switch channel {
	case "search":
		return 35
	case "social":
		return 22
	case "email":
		return 8
	case "marketplace":
		return 12
	case "referral":
		return 10
	case "dealer":
		return 25
	}
	return 0
}

// Customers returns the accounts in creation order, every parent before its children.
func (g *Generator) Customers() iter.Seq[crm.Customer] {
	return func(yield func(crm.Customer) bool) {
		for i := range g.opts.Customers {
			if !yield(g.customer(g.account(i))) {
				return
			}
		}
	}
}

// Customer returns account i, 0 ≤ i < Options.Customers.
func (g *Generator) Customer(i int) crm.Customer { return g.customer(g.account(i)) }

// customer builds the full record of an account.
func (g *Generator) customer(a account) crm.Customer {
	r := g.rng(a.index, streamProfile)
	c := crm.Customer{
		ID: a.id, Kind: a.kind, Version: 1, CreatedAt: a.createdAt, UpdatedAt: a.createdAt,
		Ancestors: []uuid.UUID{}, Tags: []string{}, ExternalRefs: []crm.ExternalRef{},
	}
	acquired, channel := a.acquiredAt, a.channel
	c.AcquiredAt, c.AcquisitionChannel = &acquired, &channel
	if a.role != "" {
		role := a.role
		c.Role = &role
	}
	if a.parent >= 0 {
		parent := g.partners[a.parent]
		c.ParentID = &parent.id
		if parent.parent >= 0 {
			c.Ancestors = append(c.Ancestors, g.partners[parent.parent].id)
		}
		c.Ancestors = append(c.Ancestors, parent.id)
	}
	ctry := g.countries[pick(r, g.countryW)]
	country := ctry.code
	c.Country = &country
	w := g.words
	switch a.role {
	case crm.RoleDistributor:
		name := w.distributors[a.index%len(w.distributors)] + " Distribution"
		if a.index >= len(w.distributors) {
			name += " " + strconv.Itoa(a.index/len(w.distributors)+1)
		}
		g.business(r, &c, name, "wholesale", ctry)
		c.Tags = []string{"distributor", "partner"}
		c.ExternalRefs = []crm.ExternalRef{{Source: "erp", ExternalID: fmt.Sprintf("DIST-%03d", a.index+1)}}
		return c
	case crm.RoleDealer:
		dist := g.partners[a.parent]
		name := w.distributors[dist.index%len(w.distributors)] + " " + w.cities[r.IntN(len(w.cities))] + " " + strconv.Itoa(a.index)
		g.business(r, &c, name, "retail", ctry)
		c.Tags = []string{"dealer", "partner"}
		c.ExternalRefs = []crm.ExternalRef{{Source: dist.source, ExternalID: fmt.Sprintf("D-%04d", 1000+a.index)}}
		return c
	case crm.RoleEnterprise, crm.RoleInstitution:
		head, tail := w.companyHeads[r.IntN(len(w.companyHeads))], w.companyTails[r.IntN(len(w.companyTails))]
		industry := w.industries[r.IntN(len(w.industries))]
		if a.role == crm.RoleInstitution {
			industry = []string{"education", "healthcare", "public sector"}[r.IntN(3)]
		}
		g.business(r, &c, head+" "+tail+" "+strconv.Itoa(a.index), industry, ctry)
		c.Tags = []string{"b2b"}
		if a.role == crm.RoleEnterprise && r.Float64() < 0.3 {
			c.Tags = append(c.Tags, "key-account")
		}
		if a.role == crm.RoleInstitution {
			c.Tags = append(c.Tags, "public-sector")
		}
	default:
		first, last := w.firstNames[r.IntN(len(w.firstNames))], w.lastNames[r.IntN(len(w.lastNames))]
		name := first + " " + last
		email := strings.ToLower(first) + "." + strings.ToLower(last) + "." + strconv.Itoa(a.index) + "@" + w.domains[r.IntN(len(w.domains))]
		c.Name, c.Email = &name, &email
		if r.Float64() < 0.4 {
			c.Tags = append(c.Tags, "newsletter")
		}
		if r.Float64() < 0.25 {
			c.Tags = append(c.Tags, "loyalty-member")
		}
		if r.Float64() < 0.2 {
			c.Tags = append(c.Tags, "app-user")
		}
		slices.Sort(c.Tags)
		c.Attributes = map[string]any{"preferred_category": w.categories[a.index%len(w.categories)].name}
		if mean := acquisitionCost(a.channel); mean > 0 {
			c.AcquisitionCost = &crm.Money{Amount: formatCents(max(1, int64(math.Round(mean*(0.5+r.Float64())*100)))), Currency: g.opts.Currency}
		}
		if a.channel == "referral" && a.index > len(g.partners) {
			referrer := g.account(len(g.partners) + r.IntN(a.index-len(g.partners))).id
			c.ReferredBy = &referrer
		}
	}
	switch {
	case a.parent >= 0:
		dist := g.partners[g.partners[a.parent].parent]
		c.ExternalRefs = []crm.ExternalRef{{Source: dist.source, ExternalID: fmt.Sprintf("C-%07d", a.index)}}
	case a.kind == crm.KindBusiness:
		c.ExternalRefs = []crm.ExternalRef{{Source: "erp", ExternalID: fmt.Sprintf("ACC-%07d", a.index)}}
	case r.Float64() < webshopRefShare:
		c.ExternalRefs = []crm.ExternalRef{{Source: "webshop", ExternalID: fmt.Sprintf("WS-%07d", a.index)}}
	}
	return c
}

// business fills a business account's profile.
func (g *Generator) business(r *rand.Rand, c *crm.Customer, name, industry string, ctry country) {
	email := "info@" + slug(name) + ".example.com"
	phone := fmt.Sprintf("%s %d %07d", ctry.phone, 20+r.IntN(80), r.IntN(10_000_000))
	owner := g.words.owners[r.IntN(len(g.words.owners))]
	c.Name, c.Email, c.Phone, c.Industry, c.Owner = &name, &email, &phone, &industry, &owner
	c.Attributes = map[string]any{"employees": 10 + r.IntN(5000)}
}

// Transactions returns every transaction, customer by customer in creation order, each
// customer's in time order. Transactions share their Product, Category, Quantity, Channel and
// DealerID values with the Generator and each other: treat them as read-only.
func (g *Generator) Transactions() iter.Seq[crm.Transaction] {
	return func(yield func(crm.Transaction) bool) {
		var buf []crm.Transaction
		for i := len(g.partners); i < g.opts.Customers; i++ {
			buf = g.history(g.account(i), buf[:0])
			for _, t := range buf {
				if !yield(t) {
					return
				}
			}
		}
	}
}

// CustomerTransactions returns the transactions of account i in time order.
func (g *Generator) CustomerTransactions(i int) []crm.Transaction {
	if i < len(g.partners) {
		return nil
	}
	return g.history(g.account(i), nil)
}

// history appends the transactions of an end customer to buf, in time order.
func (g *Generator) history(a account, buf []crm.Transaction) []crm.Transaction {
	r := g.rng(a.index, streamHistory)
	h, err := g.purchase.SimulateHistory(r, a.acquiredDay, g.spanDays)
	if err != nil {
		// New validated the parameters and 0 ≤ acquiredDay < spanDays: this cannot happen.
		panic(fmt.Sprintf("demo: simulate history: %v", err))
	}
	if err := g.spend.SimulateSpend(r, &h); err != nil {
		panic(fmt.Sprintf("demo: simulate spend: %v", err))
	}
	factor := 1.0
	switch a.role {
	case crm.RoleEnterprise:
		factor = enterpriseSpend
	case crm.RoleInstitution:
		factor = institutionSpend
	}
	w := g.words
	var dealer *uuid.UUID
	if a.parent >= 0 {
		dealer = &g.partners[a.parent].id
	}
	currency, end := g.opts.Currency, g.opts.End
	favourite := &w.categories[a.index%len(w.categories)]
	for v := range a.visits {
		at := a.createdAt.Add(time.Duration((float64(v) + r.Float64()) / float64(a.visits) * a.leadDays * float64(24*time.Hour))).Truncate(time.Microsecond)
		buf = append(buf, crm.Transaction{
			ID: uuidV7(at, r.Uint64(), r.Uint64()), CustomerID: a.id, Type: crm.TypeCost, OccurredAt: at, CreatedAt: at,
			Amount: formatCents(int64(math.Round((150 + 250*r.Float64()) * 100))), Currency: currency,
			Category: &w.acquisition, Channel: &w.channels[channelSales],
		})
	}
	for j, day := range h.Purchases {
		at := g.day(day)
		if j == 0 {
			at = a.acquiredAt
		}
		if !at.Before(end) {
			break
		}
		cat := favourite
		if r.Float64() < 0.4 {
			cat = &w.categories[r.IntN(len(w.categories))]
		}
		channel := &w.channels[channelOnline]
		switch {
		case dealer != nil:
			channel = &w.channels[channelDealer]
		case a.kind == crm.KindBusiness:
			channel = &w.channels[channelSales]
		case r.Float64() < 0.35:
			channel = &w.channels[channelStore]
		}
		quantity := &w.quantities[min(int(r.ExpFloat64()*0.6), len(w.quantities)-1)]
		cents := max(1, int64(math.Round(h.Amounts[j]*factor*100)))
		purchase := crm.Transaction{
			ID: uuidV7(at, r.Uint64(), r.Uint64()), CustomerID: a.id, Type: crm.TypePurchase, OccurredAt: at, CreatedAt: at,
			Amount: formatCents(cents), Currency: currency, Product: &cat.products[r.IntN(len(cat.products))],
			Category: &cat.name, Quantity: quantity, Channel: channel, DealerID: dealer,
		}
		buf = append(buf, purchase)
		if r.Float64() < g.opts.RefundRate {
			refundAt := at.Add(time.Duration((1 + 20*r.Float64()) * float64(24*time.Hour))).Truncate(time.Microsecond)
			refund := cents
			if r.Float64() < 0.5 {
				refund = max(1, min(cents, int64(math.Round(float64(cents)*(0.1+0.8*r.Float64())))))
			}
			if refundAt.Before(end) {
				buf = append(buf, crm.Transaction{
					ID: uuidV7(refundAt, r.Uint64(), r.Uint64()), CustomerID: a.id, Type: crm.TypeRefund,
					OccurredAt: refundAt, CreatedAt: refundAt, Amount: formatCents(refund), Currency: currency,
					Product: purchase.Product, Category: purchase.Category, Quantity: purchase.Quantity,
					Channel: channel, DealerID: dealer, Metadata: map[string]any{"refund_of": purchase.ID.String()},
				})
			}
		}
		if r.Float64() < g.opts.SupportRate {
			supportAt := at.Add(time.Duration(10 * r.Float64() * float64(24*time.Hour))).Truncate(time.Microsecond)
			cost := (5 + 15*r.ExpFloat64()) * math.Sqrt(factor)
			if supportAt.Before(end) {
				buf = append(buf, crm.Transaction{
					ID: uuidV7(supportAt, r.Uint64(), r.Uint64()), CustomerID: a.id, Type: crm.TypeCost,
					OccurredAt: supportAt, CreatedAt: supportAt, Amount: formatCents(int64(math.Round(cost * 100))),
					Currency: currency, Category: &w.support, Channel: &w.channels[channelOnline],
				})
			}
		}
	}
	slices.SortStableFunc(buf, func(x, y crm.Transaction) int { return x.OccurredAt.Compare(y.OccurredAt) })
	return buf
}

// formatCents formats an amount in cents as a decimal with two places.
func formatCents(cents int64) string {
	var b [24]byte
	s := strconv.AppendInt(b[:0], cents/100, 10)
	c := cents % 100
	s = append(s, '.', byte('0'+c/10), byte('0'+c%10))
	return string(s)
}
