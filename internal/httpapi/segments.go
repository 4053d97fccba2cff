package httpapi

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/oapi-codegen/nullable"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/pkg/rfm"
)

// CreateSegment creates a custom rule segment with its members.
func (s *Server) CreateSegment(ctx context.Context, req api.CreateSegmentRequestObject) (api.CreateSegmentResponseObject, error) {
	if req.Body == nil {
		return nil, errEmptyBody
	}
	definition, err := ruleFromAPI(&req.Body.Definition)
	if err != nil {
		return nil, err
	}
	seg, err := s.Segments.Create(ctx, scopeOf(ctx), crm.SegmentInput{
		Name: req.Body.Name, Description: deref(req.Body.Description), Strategy: deref(req.Body.Strategy), Definition: definition,
	})
	if err != nil {
		return nil, err
	}
	etag, location := seg.ETag(), "/v1/segments/"+seg.ID.String()
	return api.CreateSegment201JSONResponse{Body: segmentToAPI(seg), Headers: api.CreateSegment201ResponseHeaders{ETag: &etag, Location: &location}}, nil
}

// ListSegments returns one page of segments.
func (s *Server) ListSegments(ctx context.Context, req api.ListSegmentsRequestObject) (api.ListSegmentsResponseObject, error) {
	f := crm.SegmentFilter{Page: crm.PageRequest{Limit: deref(req.Params.Limit), Cursor: deref(req.Params.Cursor)}}
	if req.Params.Family != nil {
		f.Family = crm.SegmentFamily(*req.Params.Family)
	}
	page, err := s.Segments.List(ctx, scopeOf(ctx), f)
	if err != nil {
		return nil, err
	}
	out := api.ListSegments200JSONResponse{Data: make([]api.Segment, len(page.Segments)), HasMore: page.NextCursor != "", NextCursor: nullableString(page.NextCursor)}
	for i := range page.Segments {
		out.Data[i] = segmentToAPI(&page.Segments[i])
	}
	return out, nil
}

// GetSegment returns a segment.
func (s *Server) GetSegment(ctx context.Context, req api.GetSegmentRequestObject) (api.GetSegmentResponseObject, error) {
	seg, err := s.Segments.Get(ctx, scopeOf(ctx), req.SegmentId)
	if err != nil {
		return nil, err
	}
	etag := seg.ETag()
	return api.GetSegment200JSONResponse{Body: segmentToAPI(seg), Headers: api.GetSegment200ResponseHeaders{ETag: &etag}}, nil
}

// UpdateSegment changes a segment.
func (s *Server) UpdateSegment(ctx context.Context, req api.UpdateSegmentRequestObject) (api.UpdateSegmentResponseObject, error) {
	if req.Body == nil {
		return nil, errEmptyBody
	}
	patch := crm.SegmentPatch{Name: req.Body.Name, Description: req.Body.Description, Strategy: req.Body.Strategy}
	if req.Body.Definition != nil {
		definition, err := ruleFromAPI(req.Body.Definition)
		if err != nil {
			return nil, err
		}
		patch.Definition = definition
	}
	seg, err := s.Segments.Update(ctx, scopeOf(ctx), req.SegmentId, deref(req.Params.IfMatch), patch)
	if err != nil {
		return nil, err
	}
	etag := seg.ETag()
	return api.UpdateSegment200JSONResponse{Body: segmentToAPI(seg), Headers: api.UpdateSegment200ResponseHeaders{ETag: &etag}}, nil
}

// DeleteSegment deletes a custom segment.
func (s *Server) DeleteSegment(ctx context.Context, req api.DeleteSegmentRequestObject) (api.DeleteSegmentResponseObject, error) {
	if err := s.Segments.Delete(ctx, scopeOf(ctx), req.SegmentId, deref(req.Params.IfMatch)); err != nil {
		return nil, err
	}
	return api.DeleteSegment204Response{}, nil
}

// RefreshSegment recomputes a segment's members.
func (s *Server) RefreshSegment(ctx context.Context, req api.RefreshSegmentRequestObject) (api.RefreshSegmentResponseObject, error) {
	seg, err := s.Segments.Refresh(ctx, scopeOf(ctx), req.SegmentId)
	if err != nil {
		return nil, err
	}
	return api.RefreshSegment200JSONResponse(segmentToAPI(seg)), nil
}

// ListSegmentMembers returns one page of a segment's members.
func (s *Server) ListSegmentMembers(ctx context.Context, req api.ListSegmentMembersRequestObject) (api.ListSegmentMembersResponseObject, error) {
	f := crm.MemberFilter{Page: crm.PageRequest{Limit: deref(req.Params.Limit), Cursor: deref(req.Params.Cursor)}}
	if req.Params.Sort != nil {
		f.Sort = crm.MemberSort(*req.Params.Sort)
	}
	page, err := s.Segments.Members(ctx, scopeOf(ctx), req.SegmentId, f)
	if err != nil {
		return nil, err
	}
	out := api.ListSegmentMembers200JSONResponse{Data: make([]api.SegmentMember, len(page.Members)), HasMore: page.NextCursor != "", NextCursor: nullableString(page.NextCursor)}
	for i := range page.Members {
		out.Data[i] = api.SegmentMember{EnteredAt: page.Members[i].EnteredAt, Customer: customerToAPI(&page.Members[i].Customer)}
	}
	return out, nil
}

// PreviewSegment evaluates a rule without saving it.
func (s *Server) PreviewSegment(ctx context.Context, req api.PreviewSegmentRequestObject) (api.PreviewSegmentResponseObject, error) {
	if req.Body == nil {
		return nil, errEmptyBody
	}
	definition, err := ruleFromAPI(&req.Body.Definition)
	if err != nil {
		return nil, err
	}
	preview, err := s.Segments.Preview(ctx, scopeOf(ctx), definition, deref(req.Body.Limit))
	if err != nil {
		return nil, err
	}
	out := api.PreviewSegment200JSONResponse{Count: preview.Count, Data: make([]api.Customer, len(preview.Customers))}
	for i := range preview.Customers {
		out.Data[i] = customerToAPI(&preview.Customers[i])
	}
	return out, nil
}

// GetSegmentSummary describes a segment.
func (s *Server) GetSegmentSummary(ctx context.Context, req api.GetSegmentSummaryRequestObject) (api.GetSegmentSummaryResponseObject, error) {
	summary, err := s.Segments.Summary(ctx, scopeOf(ctx), req.SegmentId)
	if err != nil {
		return nil, err
	}
	return api.GetSegmentSummary200JSONResponse(segmentSummaryToAPI(summary)), nil
}

// CompareSegments describes several segments side by side.
func (s *Server) CompareSegments(ctx context.Context, req api.CompareSegmentsRequestObject) (api.CompareSegmentsResponseObject, error) {
	summaries, err := s.Segments.Compare(ctx, scopeOf(ctx), req.Params.SegmentId)
	if err != nil {
		return nil, err
	}
	out := api.CompareSegments200JSONResponse{Data: make([]api.SegmentSummary, len(summaries))}
	for i := range summaries {
		out.Data[i] = segmentSummaryToAPI(&summaries[i])
	}
	return out, nil
}

// ruleFromAPI turns a rule of the contract into the decoded JSON the domain checks, so that
// every node keeps its place for error pointers.
func ruleFromAPI(r *api.SegmentRule) (any, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode rule: %w", err)
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("decode rule: %w", err)
	}
	return out, nil
}

func segmentToAPI(seg *crm.Segment) api.Segment {
	out := api.Segment{
		Id: seg.ID, Family: api.SegmentFamily(seg.Family), Name: seg.Name, Description: seg.Description,
		Strategy: seg.Strategy, Builtin: seg.Builtin(), MemberCount: seg.MemberCount, Version: seg.Version,
		CreatedAt: seg.CreatedAt, UpdatedAt: seg.UpdatedAt, RefreshedAt: nullableOf(seg.RefreshedAt),
		Tier: nullable.NewNullNullable[string](), Definition: nullable.NewNullNullable[api.SegmentRule](),
	}
	if seg.Builtin() {
		out.Tier.Set(seg.Tier)
	}
	if seg.Definition != nil {
		var rule api.SegmentRule
		if raw, err := json.Marshal(seg.Definition); err == nil && json.Unmarshal(raw, &rule) == nil {
			out.Definition.Set(rule)
		}
	}
	return out
}

func segmentRefsToAPI(refs []crm.SegmentRef) []api.SegmentRef {
	out := make([]api.SegmentRef, len(refs))
	for i, r := range refs {
		out[i] = api.SegmentRef{Id: r.ID, Name: r.Name, Family: api.SegmentFamily(r.Family)}
	}
	return out
}

func segmentSummaryToAPI(s *crm.SegmentSummary) api.SegmentSummary {
	return api.SegmentSummary{
		SegmentId: s.SegmentID, Name: s.Name, Family: api.SegmentFamily(s.Family), Members: s.Members,
		ScoredMembers: s.ScoredMembers, ShareOfCustomers: s.ShareOfCustomers, Currency: s.Currency,
		Revenue: s.Revenue, RevenueShare: s.RevenueShare, NetValue: s.NetValue, NetValueShare: s.NetValueShare,
		TotalClv: s.TotalCLV, AverageClv: nullableOf(s.AverageCLV), AverageChurnRisk: nullableOf(s.AverageChurnRisk),
		RetentionRate: nullableOf(s.RetentionRate), AverageOrderValue: nullableOf(s.AverageOrderValue),
		AverageFrequency: nullableOf(s.AverageFrequency), AsOf: s.AsOf,
	}
}

// GetSegmentSettings returns the settings of the built-in segments.
func (s *Server) GetSegmentSettings(ctx context.Context, _ api.GetSegmentSettingsRequestObject) (api.GetSegmentSettingsResponseObject, error) {
	st, err := s.Segments.Settings(ctx)
	if err != nil {
		return nil, err
	}
	return api.GetSegmentSettings200JSONResponse(segmentSettingsToAPI(st)), nil
}

// UpdateSegmentSettings configures the built-in segments and refreshes them.
func (s *Server) UpdateSegmentSettings(ctx context.Context, req api.UpdateSegmentSettingsRequestObject) (api.UpdateSegmentSettingsResponseObject, error) {
	if req.Body == nil {
		return nil, errEmptyBody
	}
	var in crm.SegmentSettings
	if u, err := req.Body.UsageThresholds.Get(); err == nil {
		in.Usage = &crm.UsageThresholds{MediumFrom: u.MediumFrom, HeavyFrom: u.HeavyFrom}
	}
	if rules, err := req.Body.RfmMap.Get(); err == nil {
		in.RFMMap = make([]rfm.SegmentRule, len(rules))
		for i, r := range rules {
			in.RFMMap[i] = rfm.SegmentRule{Name: r.Name, Scores: r.Scores}
		}
	}
	st, err := s.Segments.UpdateSettings(ctx, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateSegmentSettings200JSONResponse(segmentSettingsToAPI(st)), nil
}

func segmentSettingsToAPI(st *crm.SegmentSettings) api.SegmentSettings {
	out := api.SegmentSettings{
		UsageThresholds: nullable.NewNullNullable[api.UsageThresholds](),
		RfmMap:          make([]api.RFMSegmentRule, len(st.RFMMap)),
		RefreshedAt:     nullableOf(st.RefreshedAt),
		Thresholds: api.SegmentThresholds{
			ValueAMin: nullableOf(st.Thresholds.ValueAMin), ValueBMin: nullableOf(st.Thresholds.ValueBMin),
			ClvAMin: nullableOf(st.Thresholds.CLVAMin), ClvBMin: nullableOf(st.Thresholds.CLVBMin),
			UsageLightMax: nullableOf(st.Thresholds.UsageLightMax), UsageMediumMax: nullableOf(st.Thresholds.UsageMediumMax),
		},
	}
	if u := st.Usage; u != nil {
		out.UsageThresholds.Set(api.UsageThresholds{MediumFrom: u.MediumFrom, HeavyFrom: u.HeavyFrom})
	}
	for i, r := range st.RFMMap {
		out.RfmMap[i] = api.RFMSegmentRule{Name: r.Name, Scores: r.Scores}
	}
	return out
}
