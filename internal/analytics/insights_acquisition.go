package analytics

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/centric-crm/centric/internal/crm"
)

// AcquisitionGrouping is how acquired customers are grouped.
type AcquisitionGrouping string

// The groupings of acquisition analyses.
const (
	GroupByCohort  AcquisitionGrouping = "cohort"
	GroupByChannel AcquisitionGrouping = "channel"
)

// UnknownChannel is the channel of customers acquired without a recorded channel.
const UnknownChannel = "unknown"

// AcquisitionQuery asks for acquisition cost and value by group. Zero fields take their
// defaults.
type AcquisitionQuery struct {
	// GroupBy is the grouping; default cohort.
	GroupBy AcquisitionGrouping
	// Unit is the length of cohorts when grouping by cohort; default month.
	Unit CohortUnit
	// Currency is the currency to analyse; default the latest model run's, else the most used
	// purchase currency.
	Currency string
}

// Acquisition is acquisition cost and value by group.
//
// A customer counts as acquired when it has an acquired_at or at least one purchase (in any
// currency); its cohort is the period (UTC) of acquired_at, else of its first purchase. A
// group's acquisition cost is its customers' acquisition_cost recorded in the currency plus
// their cost transactions in the currency with category "acquisition"; spend on prospects who
// were never acquired belongs to no group and is not counted. Amounts are exact sums rounded
// to cents with halves away from zero; ratios use the unrounded amounts.
type Acquisition struct {
	GroupBy  AcquisitionGrouping
	Currency string
	// Groups are ordered by cohort start or by channel name.
	Groups []AcquisitionGroup
}

// AcquisitionGroup is the acquisition cost and value of one group of customers.
type AcquisitionGroup struct {
	// Cohort is the start of the cohort, when grouping by cohort.
	Cohort time.Time
	// Channel is the acquisition channel (UnknownChannel when unset), when grouping by channel.
	Channel string
	// NewCustomers counts the customers acquired.
	NewCustomers int
	// Cost is the acquisition spend.
	Cost string
	// CAC is Cost per new customer; nil without customers.
	CAC *string
	// AverageCLV is the average predicted CLV of the group's scored customers; nil without
	// scores.
	AverageCLV *string
	// CLVToCAC is AverageCLV / CAC; nil when either is unknown or CAC is zero.
	CLVToCAC *float64
}

// Acquisition reports new customers, acquisition spend, CAC, average CLV and CLV:CAC by
// acquisition cohort or channel.
func (s *Insights) Acquisition(ctx context.Context, scope crm.Scope, q AcquisitionQuery) (Acquisition, error) {
	if q.GroupBy == "" {
		q.GroupBy = GroupByCohort
	}
	if q.Unit == "" {
		q.Unit = DefaultCohortUnit
	}
	var fields []crm.FieldError
	if q.GroupBy != GroupByCohort && q.GroupBy != GroupByChannel {
		fields = append(fields, crm.FieldError{Pointer: "query:group_by", Message: "must be one of cohort, channel"})
	}
	if !q.Unit.valid() {
		fields = append(fields, crm.FieldError{Pointer: "query:cohort", Message: "must be one of week, month, quarter"})
	}
	if fields != nil {
		return Acquisition{}, crm.Invalid(fields...)
	}
	currency, err := s.currency(ctx, scope, q.Currency)
	if err != nil {
		return Acquisition{}, err
	}
	rows, err := s.store.AcquisitionGroups(ctx, scope, q, currency)
	if err != nil {
		return Acquisition{}, fmt.Errorf("read acquisition groups: %w", err)
	}
	out := Acquisition{GroupBy: q.GroupBy, Currency: currency, Groups: make([]AcquisitionGroup, len(rows))}
	for i, row := range rows {
		if out.Groups[i], err = acquisitionGroupOf(row); err != nil {
			return Acquisition{}, err
		}
	}
	return out, nil
}

// acquisitionGroupOf computes a group's ratios from the store's exact sums.
func acquisitionGroupOf(row AcquisitionRow) (AcquisitionGroup, error) {
	g := AcquisitionGroup{Cohort: row.Cohort, Channel: row.Channel, NewCustomers: row.Customers}
	cost, err := parseDecimal(row.Cost)
	if err != nil {
		return g, fmt.Errorf("acquisition cost: %w", err)
	}
	g.Cost = formatCents(cost)
	var cac, avg *big.Rat
	if row.Customers > 0 {
		cac = new(big.Rat).Quo(cost, big.NewRat(int64(row.Customers), 1))
		g.CAC = new(formatCents(cac))
	}
	if row.Scored > 0 {
		sum, err := parseDecimal(row.CLV)
		if err != nil {
			return g, fmt.Errorf("clv: %w", err)
		}
		avg = new(big.Rat).Quo(sum, big.NewRat(int64(row.Scored), 1))
		g.AverageCLV = new(formatCents(avg))
	}
	if cac != nil && avg != nil && cac.Sign() != 0 {
		ratio, _ := new(big.Rat).Quo(avg, cac).Float64()
		g.CLVToCAC = &ratio
	}
	return g, nil
}
