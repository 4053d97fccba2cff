package crm

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/centric-crm/centric/pkg/rfm"
)

// UsageThresholds fix the usage tiers by purchase occasions instead of terciles: light below
// MediumFrom, medium below HeavyFrom, heavy from HeavyFrom.
type UsageThresholds struct {
	MediumFrom int
	HeavyFrom  int
}

// TierThresholds are the edges the last full refresh of the built-in families computed; nil
// when there was nothing to compute them from.
type TierThresholds struct {
	ValueAMin      *string
	ValueBMin      *string
	CLVAMin        *string
	CLVBMin        *string
	UsageLightMax  *float64
	UsageMediumMax *float64
}

// SegmentSettings configure the built-in families.
type SegmentSettings struct {
	// Usage fixes the usage tiers; nil uses terciles.
	Usage *UsageThresholds
	// RFMMap maps RFM scores to segment names; scores it does not list are rfm.OtherSegment.
	RFMMap []rfm.SegmentRule
	// Thresholds and RefreshedAt are read-only: the edges of the last full refresh.
	Thresholds  TierThresholds
	RefreshedAt *time.Time
}

// Limits of a configured RFM map.
const (
	maxRFMSegments    = 20
	maxRFMSegmentName = 64
)

// SegmentSettingsStore persists the settings of the built-in families.
type SegmentSettingsStore interface {
	// SegmentSettings returns the settings and the thresholds of the last full refresh.
	SegmentSettings(ctx context.Context) (*SegmentSettings, error)
	// UpdateSegmentSettings stores the settings, creates and removes RFM segments to match
	// the map, and refreshes every built-in family, in one transaction.
	UpdateSegmentSettings(ctx context.Context, s *SegmentSettings, now time.Time) (*SegmentSettings, error)
}

// Settings returns the settings of the built-in families.
func (s *SegmentService) Settings(ctx context.Context) (*SegmentSettings, error) {
	return s.settings.SegmentSettings(ctx)
}

// UpdateSettings validates and stores the settings of the built-in families and refreshes
// them. A nil RFM map restores the default map.
func (s *SegmentService) UpdateSettings(ctx context.Context, in SegmentSettings) (*SegmentSettings, error) {
	var fields []FieldError
	if u := in.Usage; u != nil && (u.MediumFrom < 2 || u.HeavyFrom <= u.MediumFrom) {
		fields = append(fields, FieldError{Pointer: "/usage_thresholds", Message: "must have medium_from of at least 2 and heavy_from above it (light buyers have fewer than medium_from purchase occasions)"})
	}
	if in.RFMMap == nil {
		in.RFMMap = rfm.DefaultSegmentRules()
	}
	if len(in.RFMMap) == 0 || len(in.RFMMap) > maxRFMSegments {
		fields = append(fields, FieldError{Pointer: "/rfm_map", Message: fmt.Sprintf("must have 1 to %d segments", maxRFMSegments)})
	}
	seen := map[string]bool{}
	for i, r := range in.RFMMap {
		name := strings.TrimSpace(r.Name)
		switch {
		case name == "" || len(name) > maxRFMSegmentName:
			fields = append(fields, FieldError{Pointer: fmt.Sprintf("/rfm_map/%d/name", i), Message: fmt.Sprintf("must be 1 to %d characters", maxRFMSegmentName)})
		case strings.EqualFold(name, rfm.OtherSegment) || seen[strings.ToLower(name)]:
			fields = append(fields, FieldError{Pointer: fmt.Sprintf("/rfm_map/%d/name", i), Message: fmt.Sprintf("must be unique and not %q, which holds the scores no segment lists", rfm.OtherSegment)})
		}
		seen[strings.ToLower(name)] = true
		in.RFMMap[i].Name = name
		for j, score := range r.Scores {
			if sc, err := rfm.ParseScore(score); err != nil || sc.R > 4 || sc.F > 4 || sc.M > 4 {
				fields = append(fields, FieldError{Pointer: fmt.Sprintf("/rfm_map/%d/scores/%d", i, j), Message: "must be three digits from 1 to 4 (recency, frequency, monetary quartile scores)"})
			}
		}
	}
	if fields == nil {
		if _, err := rfm.NewSegmenter(in.RFMMap, rfm.OtherSegment); err != nil {
			fields = append(fields, FieldError{Pointer: "/rfm_map", Message: "must list each score in at most one segment: " + strings.TrimPrefix(err.Error(), "new segmenter: ")})
		}
	}
	if fields != nil {
		return nil, Invalid(fields...)
	}
	return s.settings.UpdateSegmentSettings(ctx, &in, s.stamp())
}
