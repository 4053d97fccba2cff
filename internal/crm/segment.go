package crm

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/centric-crm/centric/pkg/rfm"
)

// SegmentFamily is the kind of a segment: a custom rule or one of the built-in families.
type SegmentFamily string

// The segment families.
const (
	FamilyCustom     SegmentFamily = "custom"
	FamilyValueTier  SegmentFamily = "value_tier"
	FamilyCLVTier    SegmentFamily = "clv_tier"
	FamilyValueClass SegmentFamily = "value_class"
	FamilyUsageTier  SegmentFamily = "usage_tier"
	FamilyRFM        SegmentFamily = "rfm"
	FamilyChurnBand  SegmentFamily = "churn_band"
)

// BuiltinFamilies lists the built-in families in a stable order.
var BuiltinFamilies = []SegmentFamily{FamilyValueTier, FamilyCLVTier, FamilyValueClass, FamilyUsageTier, FamilyRFM, FamilyChurnBand}

// Segment is a group of customers: a built-in tier kept current from the scores, or a custom
// rule over profile fields and scores. Membership is materialised and refreshed on demand,
// after every model run, and for one customer whenever its scores change.
type Segment struct {
	ID     uuid.UUID
	Family SegmentFamily
	// Tier is a built-in segment's tier within its family (A, vip, heavy, Premium Customer, …).
	Tier        string
	Name        string
	Description string
	Strategy    string
	// Definition is a custom segment's rule as the client sent it (decoded JSON).
	Definition any
	// Rule is the checked form of Definition.
	Rule *Rule
	// ScopeRoot confines a custom segment created by a partner key to that key's subtree.
	ScopeRoot   *uuid.UUID
	MemberCount int64
	RefreshedAt *time.Time
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ETag returns the segment's version as a strong entity tag.
func (s *Segment) ETag() string { return ETagOf(s.Version) }

// Builtin reports whether the segment belongs to a built-in family.
func (s *Segment) Builtin() bool { return s.Family != FamilyCustom }

// SegmentRef names a segment a customer belongs to.
type SegmentRef struct {
	ID     uuid.UUID
	Name   string
	Family SegmentFamily
}

// BuiltinSegment describes one built-in segment.
type BuiltinSegment struct {
	Family      SegmentFamily
	Tier        string
	Name        string
	Description string
	Strategy    string
}

// BuiltinSegments returns every built-in segment, with the RFM segments of the given map
// (nil for the default map).
func BuiltinSegments(rfmMap []rfm.SegmentRule) []BuiltinSegment {
	out := []BuiltinSegment{
		{FamilyValueTier, "A", "Value tier A (historical net value)", "The smallest set of top customers by historical net value (revenue − refunds − cost) that makes 80% of the positive net value of all scored customers.", "Protect and grow: key-account care, first access, retention offers before any sign of churn."},
		{FamilyValueTier, "B", "Value tier B (historical net value)", "The customers after tier A that make the next 15% of positive net value.", "Develop towards tier A: cross-sell and loyalty programmes."},
		{FamilyValueTier, "C", "Value tier C (historical net value)", "Every other scored customer: the last 5% of positive net value, and customers whose net value is zero or negative.", "Serve efficiently through low-cost channels; review the cost to serve."},
		{FamilyCLVTier, "A", "Value tier A (predicted CLV)", "The smallest set of top customers by predicted CLV that makes 80% of the positive predicted CLV of all scored customers.", "Invest ahead of value: these customers are expected to bring most of the future margin."},
		{FamilyCLVTier, "B", "Value tier B (predicted CLV)", "The customers after tier A that make the next 15% of positive predicted CLV.", "Nurture with targeted offers."},
		{FamilyCLVTier, "C", "Value tier C (predicted CLV)", "Every other scored customer by predicted CLV.", "Serve efficiently; automate contact."},
		{FamilyValueClass, "vip", "VIP", "Value tier A by historical net value.", "Personal attention, retention first."},
		{FamilyValueClass, "potential", "Potential", "Value tier A by predicted CLV but not by historical net value: the customers worth developing.", "Develop: account planning, upgrades and cross-sell."},
		{FamilyValueClass, "mass", "Mass", "Every other scored customer.", "Standardised, low-cost service."},
		{FamilyUsageTier, "heavy", "Heavy buyers", "The most frequent buyers by purchase occasions (the top tercile unless thresholds are configured).", "Reward loyalty; protect against competitors."},
		{FamilyUsageTier, "medium", "Medium buyers", "The middle tercile by purchase occasions (or between the configured thresholds).", "Raise purchase frequency with reminders and bundles."},
		{FamilyUsageTier, "light", "Light buyers", "The least frequent buyers by purchase occasions.", "Activate with entry offers; keep contact cheap."},
	}
	if rfmMap == nil {
		rfmMap = rfm.DefaultSegmentRules()
	}
	for _, r := range rfmMap {
		out = append(out, BuiltinSegment{FamilyRFM, r.Name, "RFM: " + r.Name, "Customers whose RFM scores (quartiles of recency, frequency and monetary value; recency reversed) are one of " + strings.Join(r.Scores, ", ") + ".", ""})
	}
	out = append(out,
		BuiltinSegment{FamilyRFM, rfm.OtherSegment, "RFM: " + rfm.OtherSegment, "Customers whose RFM scores no segment of the map lists.", ""},
		BuiltinSegment{FamilyChurnBand, "low", "Churn risk low", "Customers whose churn risk (1 − P(alive)) is below 0.3.", "Keep satisfied; ask for referrals."},
		BuiltinSegment{FamilyChurnBand, "medium", "Churn risk medium", "Customers whose churn risk is from 0.3 to below 0.7.", "Re-engage before they drift: reminders and service check-ins."},
		BuiltinSegment{FamilyChurnBand, "high", "Churn risk high", "Customers whose churn risk is 0.7 or more.", "Win back the valuable ones; stop spending on the rest."},
	)
	return out
}

// SegmentInput is a new custom segment.
type SegmentInput struct {
	Name        string
	Description string
	Strategy    string
	Definition  any
}

// SegmentPatch changes a segment; nil fields are left alone. A built-in segment's definition
// cannot change.
type SegmentPatch struct {
	Name        *string
	Description *string
	Strategy    *string
	Definition  any
}

// SegmentFilter selects a page of segments.
type SegmentFilter struct {
	Family SegmentFamily
	Page   PageRequest
}

// SegmentPage is one page of segments.
type SegmentPage struct {
	Segments   []Segment
	NextCursor string
}

// MemberSort orders the members of a segment. Every order breaks ties by customer id.
type MemberSort string

// The member orders; a leading minus sorts descending. Unscored members sort as zero.
const (
	MemberSortCLVDesc   MemberSort = "-clv"
	MemberSortCLVAsc    MemberSort = "clv"
	MemberSortChurnDesc MemberSort = "-churn_risk"
	MemberSortChurnAsc  MemberSort = "churn_risk"
	MemberSortValueDesc MemberSort = "-net_value"
	MemberSortValueAsc  MemberSort = "net_value"
)

// MemberFilter selects a page of a segment's members.
type MemberFilter struct {
	Sort MemberSort
	Page PageRequest
}

// Member is a customer in a segment.
type Member struct {
	Customer  Customer
	EnteredAt time.Time
}

// MemberPage is one page of members.
type MemberPage struct {
	Members    []Member
	NextCursor string
}

// Preview is what a rule selects now, without saving it.
type Preview struct {
	Count     int64
	Customers []Customer
}

// SegmentSummary describes the members of a segment within the caller's scope.
type SegmentSummary struct {
	SegmentID        uuid.UUID
	Name             string
	Family           SegmentFamily
	Members          int64
	ScoredMembers    int64
	ShareOfCustomers float64
	Currency         string
	Revenue          string
	RevenueShare     float64
	NetValue         string
	NetValueShare    float64
	TotalCLV         string
	AverageCLV       *string
	AverageChurnRisk *float64
	// RetentionRate is the share of members who first bought more than a year ago and bought
	// again in the last year; nil when no member first bought more than a year ago.
	RetentionRate     *float64
	AverageOrderValue *string
	// AverageFrequency is the mean number of purchase occasions per scored member.
	AverageFrequency *float64
	AsOf             time.Time
}

// MaxCustomSegments bounds the custom segments, since a rescore evaluates every one of them.
const MaxCustomSegments = 500

// MaxComparedSegments bounds a comparison.
const MaxComparedSegments = 50

// Causes of membership changes.
const (
	CauseRefresh    = "refresh"
	CauseModelRun   = "model_run"
	CauseRescore    = "rescore"
	CauseProfile    = "profile"
	CauseDefinition = "definition"
	CauseDeleted    = "customer_deleted"
)

// SegmentStore persists segments and their membership. Every method honours the scope: a
// custom segment created under another root is not found, and members, counts and summaries
// include only customers inside the scope.
type SegmentStore interface {
	// EnsureBuiltinSegments creates the built-in segments that do not exist yet.
	EnsureBuiltinSegments(ctx context.Context, now time.Time) error
	// CreateSegment stores a custom segment and materialises its members, in one transaction.
	CreateSegment(ctx context.Context, scope Scope, s *Segment) error
	// Segment returns a segment or a NotFound error; its member count is the scope's.
	Segment(ctx context.Context, scope Scope, id uuid.UUID) (*Segment, error)
	// ListSegments returns one page of segments, built-in first, then custom by creation.
	ListSegments(ctx context.Context, scope Scope, f SegmentFilter) (SegmentPage, error)
	// UpdateSegment locks the segment, lets update change it and stores it; a changed rule
	// rematerialises the members in the same transaction.
	UpdateSegment(ctx context.Context, scope Scope, id uuid.UUID, update func(*Segment) error) (*Segment, error)
	// DeleteSegment deletes a custom segment and its members after check approves it.
	DeleteSegment(ctx context.Context, scope Scope, id uuid.UUID, check func(*Segment) error) error
	// RefreshSegment recomputes a custom segment's members, or the thresholds of every
	// built-in family for a built-in segment (moving the customers they move), and returns
	// the segment.
	RefreshSegment(ctx context.Context, scope Scope, id uuid.UUID, now time.Time) (*Segment, error)
	// RefreshAllSegments recomputes every built-in family, placing every customer again, and
	// every custom segment.
	RefreshAllSegments(ctx context.Context, cause string, now time.Time) error
	// UpdateMemberships re-evaluates the given customers against every custom segment; the
	// store of scores places them in the built-in families as it stores their scores.
	UpdateMemberships(ctx context.Context, customerIDs []uuid.UUID, now time.Time) error
	// UpdateSubtreeMemberships re-evaluates a customer and everyone below it against every
	// custom segment.
	UpdateSubtreeMemberships(ctx context.Context, customerID uuid.UUID, now time.Time) error
	// PreviewRule counts the customers a rule selects and returns the first of them.
	PreviewRule(ctx context.Context, scope Scope, r *Rule, limit int) (*Preview, error)
	// ListMembers returns one page of a segment's members.
	ListMembers(ctx context.Context, scope Scope, id uuid.UUID, f MemberFilter) (MemberPage, error)
	// SegmentSummaries describes the given segments.
	SegmentSummaries(ctx context.Context, scope Scope, ids []uuid.UUID, now time.Time) ([]SegmentSummary, error)
}

// SegmentService manages segments and keeps their membership current.
type SegmentService struct {
	store    SegmentStore
	settings SegmentSettingsStore
	logger   *slog.Logger
	now      func() time.Time
}

// NewSegmentService returns a SegmentService over store and settings.
func NewSegmentService(store SegmentStore, settings SegmentSettingsStore, logger *slog.Logger, now func() time.Time) *SegmentService {
	return &SegmentService{store: store, settings: settings, logger: logger, now: now}
}

func (s *SegmentService) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// EnsureBuiltins creates the built-in segments that do not exist yet.
func (s *SegmentService) EnsureBuiltins(ctx context.Context) error {
	return s.store.EnsureBuiltinSegments(ctx, s.stamp())
}

func checkSegmentText(name, description, strategy *string) []FieldError {
	var fields []FieldError
	if name != nil && (strings.TrimSpace(*name) == "" || len(*name) > 200) {
		fields = append(fields, FieldError{Pointer: "/name", Message: "must be 1 to 200 characters"})
	}
	if description != nil && len(*description) > 2000 {
		fields = append(fields, FieldError{Pointer: "/description", Message: "must be at most 2000 characters"})
	}
	if strategy != nil && len(*strategy) > 4000 {
		fields = append(fields, FieldError{Pointer: "/strategy", Message: "must be at most 4000 characters"})
	}
	return fields
}

// Create validates a custom segment, stores it and materialises its members.
func (s *SegmentService) Create(ctx context.Context, scope Scope, in SegmentInput) (*Segment, error) {
	fields := checkSegmentText(&in.Name, &in.Description, &in.Strategy)
	rule, err := ParseRule(in.Definition, "/definition")
	if e, ok := err.(*Error); ok {
		fields = append(fields, e.Fields...)
	}
	if fields != nil {
		return nil, Invalid(fields...)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	now := s.stamp()
	seg := &Segment{
		ID: id, Family: FamilyCustom, Name: strings.TrimSpace(in.Name), Description: in.Description, Strategy: in.Strategy,
		Definition: in.Definition, Rule: rule, ScopeRoot: scope.Root, Version: 1, CreatedAt: now, UpdatedAt: now, RefreshedAt: &now,
	}
	if err := s.store.CreateSegment(ctx, scope, seg); err != nil {
		return nil, err
	}
	return seg, nil
}

// Get returns a segment.
func (s *SegmentService) Get(ctx context.Context, scope Scope, id uuid.UUID) (*Segment, error) {
	return s.store.Segment(ctx, scope, id)
}

// List returns one page of segments.
func (s *SegmentService) List(ctx context.Context, scope Scope, f SegmentFilter) (SegmentPage, error) {
	return s.store.ListSegments(ctx, scope, f)
}

// Update changes a segment. With ifMatch set, it fails with PreconditionFailed unless the
// stored segment still has that entity tag.
func (s *SegmentService) Update(ctx context.Context, scope Scope, id uuid.UUID, ifMatch string, p SegmentPatch) (*Segment, error) {
	fields := checkSegmentText(p.Name, p.Description, p.Strategy)
	var rule *Rule
	if p.Definition != nil {
		r, err := ParseRule(p.Definition, "/definition")
		if e, ok := err.(*Error); ok {
			fields = append(fields, e.Fields...)
		}
		rule = r
	}
	if fields != nil {
		return nil, Invalid(fields...)
	}
	return s.store.UpdateSegment(ctx, scope, id, func(seg *Segment) error {
		if err := checkSegmentIfMatch(seg, ifMatch); err != nil {
			return err
		}
		if seg.Builtin() && scope.Root != nil {
			return sharedBuiltinRefused()
		}
		if rule != nil && seg.Builtin() {
			return Invalid(FieldError{Pointer: "/definition", Message: "cannot be set on a built-in segment: its family defines its members"})
		}
		if p.Name != nil {
			seg.Name = strings.TrimSpace(*p.Name)
		}
		if p.Description != nil {
			seg.Description = *p.Description
		}
		if p.Strategy != nil {
			seg.Strategy = *p.Strategy
		}
		if rule != nil {
			seg.Definition, seg.Rule = p.Definition, rule
		}
		seg.Version++
		seg.UpdatedAt = s.stamp()
		return nil
	})
}

// Delete deletes a custom segment with its members.
func (s *SegmentService) Delete(ctx context.Context, scope Scope, id uuid.UUID, ifMatch string) error {
	return s.store.DeleteSegment(ctx, scope, id, func(seg *Segment) error {
		if seg.Builtin() {
			return Errorf(CodeConflict, "Segment %s is built in and cannot be deleted.", seg.ID)
		}
		if err := checkSegmentIfMatch(seg, ifMatch); err != nil {
			return err
		}
		return nil
	})
}

// sharedBuiltinRefused refuses a confined key a change to a built-in segment, which every key
// shares.
func sharedBuiltinRefused() error {
	return Errorf(CodeForbidden, "This API key is confined to a customer subtree, and built-in segments are shared by every customer: changing or refreshing one needs an API key that is not confined. This key may read them and create its own segments.")
}

// Refresh recomputes a segment's members now. Refreshing a built-in segment recomputes every
// built-in family over all customers, which a confined key may not do.
func (s *SegmentService) Refresh(ctx context.Context, scope Scope, id uuid.UUID) (*Segment, error) {
	if scope.Root != nil {
		seg, err := s.store.Segment(ctx, scope, id)
		if err != nil {
			return nil, err
		}
		if seg.Builtin() {
			return nil, sharedBuiltinRefused()
		}
	}
	return s.store.RefreshSegment(ctx, scope, id, s.stamp())
}

// Preview evaluates a rule without saving it: the number of customers it selects and the
// first limit of them.
func (s *SegmentService) Preview(ctx context.Context, scope Scope, definition any, limit int) (*Preview, error) {
	rule, err := ParseRule(definition, "/definition")
	if err != nil {
		return nil, err
	}
	return s.store.PreviewRule(ctx, scope, rule, PageRequest{Limit: limit}.LimitOrDefault())
}

// Members returns one page of a segment's members.
func (s *SegmentService) Members(ctx context.Context, scope Scope, id uuid.UUID, f MemberFilter) (MemberPage, error) {
	return s.store.ListMembers(ctx, scope, id, f)
}

// Summary describes one segment.
func (s *SegmentService) Summary(ctx context.Context, scope Scope, id uuid.UUID) (*SegmentSummary, error) {
	out, err := s.store.SegmentSummaries(ctx, scope, []uuid.UUID{id}, s.now().UTC())
	if err != nil {
		return nil, err
	}
	return &out[0], nil
}

// Compare describes several segments side by side.
func (s *SegmentService) Compare(ctx context.Context, scope Scope, ids []uuid.UUID) ([]SegmentSummary, error) {
	if len(ids) == 0 || len(ids) > MaxComparedSegments {
		return nil, Invalid(FieldError{Pointer: "query:segment_id", Message: fmt.Sprintf("must name 1 to %d segments", MaxComparedSegments)})
	}
	return s.store.SegmentSummaries(ctx, scope, ids, s.now().UTC())
}

// ScoresChanged moves the given customers into and out of custom segments after their scores
// changed (their built-in families moved with the scores). Memberships are derived data: a
// failure is logged, and the segment's next refresh repairs it.
func (s *SegmentService) ScoresChanged(ctx context.Context, customerIDs []uuid.UUID) {
	if len(customerIDs) == 0 {
		return
	}
	if err := s.store.UpdateMemberships(ctx, customerIDs, s.stamp()); err != nil {
		s.logger.ErrorContext(ctx, "update segment memberships", "customers", len(customerIDs), "error", err)
	}
}

// ProfileChanged moves a created or changed customer, and everyone below it, into and out of
// custom segments. A failure is logged, and the next refresh repairs it.
func (s *SegmentService) ProfileChanged(ctx context.Context, customerID uuid.UUID) {
	if err := s.store.UpdateSubtreeMemberships(ctx, customerID, s.stamp()); err != nil {
		s.logger.ErrorContext(ctx, "update segment memberships after a profile change", "customer_id", customerID, "error", err)
	}
}

// ScoresRefreshed recomputes every segment after a model run rescored everyone; a failure is
// logged, and the next refresh repairs it.
func (s *SegmentService) ScoresRefreshed(ctx context.Context) {
	if err := s.store.RefreshAllSegments(ctx, CauseModelRun, s.stamp()); err != nil {
		s.logger.ErrorContext(ctx, "refresh segments after a model run", "error", err)
	}
}

// checkSegmentIfMatch fails with PreconditionFailed unless ifMatch is empty, "*", or lists the
// segment's entity tag (a strong comparison, as for customers).
func checkSegmentIfMatch(seg *Segment, ifMatch string) error {
	ifMatch = strings.TrimSpace(ifMatch)
	if ifMatch == "" || ifMatch == "*" {
		return nil
	}
	for _, tag := range strings.Split(ifMatch, ",") {
		if strings.TrimSpace(tag) == seg.ETag() {
			return nil
		}
	}
	return Errorf(CodePreconditionFailed, "The segment has changed: it is at version %s, not %s. Read it again and retry with the new ETag.", seg.ETag(), ifMatch)
}
