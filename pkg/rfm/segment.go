package rfm

import (
	"errors"
	"fmt"
)

// Segment names of the default segment map (pymc-marketing's rfm_segments).
const (
	PremiumCustomer  = "Premium Customer"
	RepeatCustomer   = "Repeat Customer"
	TopSpender       = "Top Spender"
	AtRiskCustomer   = "At Risk Customer"
	InactiveCustomer = "Inactive Customer"
	OtherSegment     = "Other"
)

// SegmentRule names a segment and lists the scores ("RFM" digits) that
// belong to it.
type SegmentRule struct {
	Name   string
	Scores []string
}

// DefaultSegmentRules returns pymc-marketing's default segment map. A score
// not listed belongs to [OtherSegment]. The returned slice is a fresh copy
// that the caller may modify.
func DefaultSegmentRules() []SegmentRule {
	return []SegmentRule{
		{PremiumCustomer, []string{"334", "443", "444", "344", "434", "433", "343", "333"}},
		{RepeatCustomer, []string{"244", "234", "232", "332", "143", "233", "243"}},
		{TopSpender, []string{"424", "414", "144", "314", "324", "124", "224", "423", "413", "133", "323", "313", "134"}},
		{AtRiskCustomer, []string{"422", "223", "212", "122", "222", "132", "322", "312", "412", "123", "214"}},
		{InactiveCustomer, []string{"411", "111", "113", "114", "112", "211", "311"}},
	}
}

// Segmenter maps RFM scores to segment names.
type Segmenter struct {
	byScore map[Score]string
	other   string
}

// NewSegmenter builds a segmenter from rules; scores listed by no rule map
// to other. A score listed by two rules is an error.
func NewSegmenter(rules []SegmentRule, other string) (*Segmenter, error) {
	if other == "" {
		return nil, errors.New("new segmenter: the name of the catch-all segment is empty")
	}
	byScore := make(map[Score]string)
	for _, rule := range rules {
		if rule.Name == "" {
			return nil, errors.New("new segmenter: a rule has an empty name")
		}
		for _, text := range rule.Scores {
			s, err := ParseScore(text)
			if err != nil {
				return nil, fmt.Errorf("new segmenter: segment %q: %w", rule.Name, err)
			}
			if prev, ok := byScore[s]; ok {
				return nil, fmt.Errorf("new segmenter: score %s is in both %q and %q", text, prev, rule.Name)
			}
			byScore[s] = rule.Name
		}
	}
	return &Segmenter{byScore: byScore, other: other}, nil
}

// DefaultSegmenter returns the segmenter of [DefaultSegmentRules] with
// [OtherSegment] as the catch-all.
func DefaultSegmenter() *Segmenter {
	s, err := NewSegmenter(DefaultSegmentRules(), OtherSegment)
	if err != nil {
		// The default rules are constant and valid; reaching this is a bug.
		panic("rfm: invalid default segment rules: " + err.Error())
	}
	return s
}

// Segment returns the segment of a score.
func (s *Segmenter) Segment(score Score) string {
	if name, ok := s.byScore[score]; ok {
		return name
	}
	return s.other
}

// Assignment is a customer's RFM values, score and segment.
type Assignment[K comparable] struct {
	Customer K
	Values   Values
	Score    Score
	Segment  string
}

// Segment scores every summarised customer against the quartile edges of the
// whole population and assigns segments with seg (nil means
// [DefaultSegmenter]). It also returns the edges used.
func Segment[K comparable](summaries []Summary[K], seg *Segmenter) ([]Assignment[K], Edges, error) {
	if seg == nil {
		seg = DefaultSegmenter()
	}
	values := make([]Values, len(summaries))
	for i, s := range summaries {
		values[i] = s.Values()
	}
	edges, err := ComputeEdges(values)
	if err != nil {
		return nil, Edges{}, fmt.Errorf("segment: %w", err)
	}
	out := make([]Assignment[K], len(summaries))
	for i, s := range summaries {
		score := edges.Score(values[i])
		out[i] = Assignment[K]{Customer: s.Customer, Values: values[i], Score: score, Segment: seg.Segment(score)}
	}
	return out, edges, nil
}
