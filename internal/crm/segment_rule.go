package crm

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Limits of the rule language, so that a rule compiles to a statement of bounded size.
const (
	MaxRuleDepth      = 5
	MaxRuleNodes      = 100
	MaxRuleListValues = 100
	maxRuleText       = 200
)

// FieldType is the type of a field a rule condition can test.
type FieldType string

// The field types of the rule language.
const (
	FieldText      FieldType = "text"
	FieldEnum      FieldType = "enum"
	FieldNumber    FieldType = "number"
	FieldTime      FieldType = "time"
	FieldUUID      FieldType = "uuid"
	FieldTags      FieldType = "tags"
	FieldSubtree   FieldType = "subtree"
	FieldAttribute FieldType = "attribute"
)

// RuleField describes one field of the rule language's allow-list.
type RuleField struct {
	Type FieldType
	// Values are the allowed values of an enum field.
	Values []string
	// Score says the field comes from the customer's scores (unscored customers have none).
	Score bool
}

// AttributePrefix starts a field that tests a custom attribute: attributes.<key>.
const AttributePrefix = "attributes."

// RuleFields is the allow-list of fields a rule may test, by name.
var RuleFields = map[string]RuleField{
	"kind":                   {Type: FieldEnum, Values: []string{"consumer", "business"}},
	"role":                   {Type: FieldEnum, Values: []string{"enterprise", "institution", "distributor", "dealer", "reseller", "other"}},
	"country":                {Type: FieldText},
	"industry":               {Type: FieldText},
	"owner":                  {Type: FieldText},
	"acquisition_channel":    {Type: FieldText},
	"acquired_at":            {Type: FieldTime},
	"created_at":             {Type: FieldTime},
	"parent_id":              {Type: FieldUUID},
	"subtree":                {Type: FieldSubtree},
	"tags":                   {Type: FieldTags},
	"clv":                    {Type: FieldNumber, Score: true},
	"churn_risk":             {Type: FieldNumber, Score: true},
	"p_alive":                {Type: FieldNumber, Score: true},
	"frequency":              {Type: FieldNumber, Score: true},
	"recency":                {Type: FieldNumber, Score: true},
	"monetary":               {Type: FieldNumber, Score: true},
	"purchases":              {Type: FieldNumber, Score: true},
	"revenue":                {Type: FieldNumber, Score: true},
	"net_value":              {Type: FieldNumber, Score: true},
	"expected_purchases_90d": {Type: FieldNumber, Score: true},
	"first_purchase_at":      {Type: FieldTime, Score: true},
	"last_purchase_at":       {Type: FieldTime, Score: true},
	"rfm_recency":            {Type: FieldNumber, Score: true},
	"rfm_frequency":          {Type: FieldNumber, Score: true},
	"rfm_monetary":           {Type: FieldNumber, Score: true},
	"rfm_segment":            {Type: FieldText, Score: true},
	"churn_band":             {Type: FieldEnum, Values: []string{"low", "medium", "high"}, Score: true},
	"value_tier":             {Type: FieldEnum, Values: []string{"A", "B", "C"}, Score: true},
	"clv_tier":               {Type: FieldEnum, Values: []string{"A", "B", "C"}, Score: true},
	"value_class":            {Type: FieldEnum, Values: []string{"vip", "potential", "mass"}, Score: true},
	"usage_tier":             {Type: FieldEnum, Values: []string{"heavy", "medium", "light"}, Score: true},
}

// Op is a comparison of a rule condition.
type Op string

// The operators of the rule language.
const (
	OpEq       Op = "eq"
	OpNe       Op = "ne"
	OpIn       Op = "in"
	OpNotIn    Op = "not_in"
	OpGt       Op = "gt"
	OpGte      Op = "gte"
	OpLt       Op = "lt"
	OpLte      Op = "lte"
	OpBetween  Op = "between"
	OpContains Op = "contains"
	OpExists   Op = "exists"
)

// opsOf lists the operators each field type supports.
var opsOf = map[FieldType][]Op{
	FieldText:      {OpEq, OpNe, OpIn, OpNotIn, OpContains, OpExists},
	FieldEnum:      {OpEq, OpNe, OpIn, OpNotIn, OpExists},
	FieldNumber:    {OpEq, OpNe, OpIn, OpNotIn, OpGt, OpGte, OpLt, OpLte, OpBetween, OpExists},
	FieldTime:      {OpEq, OpNe, OpGt, OpGte, OpLt, OpLte, OpBetween, OpExists},
	FieldUUID:      {OpEq, OpNe, OpIn, OpNotIn, OpExists},
	FieldSubtree:   {OpEq, OpNe, OpIn, OpNotIn},
	FieldTags:      {OpContains, OpIn, OpNotIn, OpExists},
	FieldAttribute: {OpEq, OpNe, OpIn, OpNotIn, OpGt, OpGte, OpLt, OpLte, OpBetween, OpContains, OpExists},
}

// Rule is a node of a segment rule: exactly one of All, Any, Not or a condition (Field, Op,
// Value). Values are checked and typed: a string, a decimal string for numbers, a time, a
// uuid, a bool for exists, a []any of those for in, not_in and between, or, for attributes, any
// JSON scalar.
type Rule struct {
	All   []Rule
	Any   []Rule
	Not   *Rule
	Field string
	Op    Op
	Value any
}

// FieldInfo returns the allow-list entry of a condition's field.
func (r *Rule) FieldInfo() RuleField {
	if strings.HasPrefix(r.Field, AttributePrefix) {
		return RuleField{Type: FieldAttribute}
	}
	return RuleFields[r.Field]
}

// AttributeKey returns the custom attribute a condition on attributes.<key> tests.
func (r *Rule) AttributeKey() string { return strings.TrimPrefix(r.Field, AttributePrefix) }

// UsesScores reports whether any condition of the rule tests a score.
func (r *Rule) UsesScores() bool {
	for i := range r.All {
		if r.All[i].UsesScores() {
			return true
		}
	}
	for i := range r.Any {
		if r.Any[i].UsesScores() {
			return true
		}
	}
	if r.Not != nil {
		return r.Not.UsesScores()
	}
	return r.Field != "" && r.FieldInfo().Score
}

// ParseRule checks a rule decoded from JSON (maps, slices, strings, float64 or json.Number,
// bools) and returns it typed, or an Invalid error with a JSON Pointer, under pointer, to every
// bad node.
func ParseRule(raw any, pointer string) (*Rule, error) {
	p := ruleParser{}
	r := p.parse(raw, pointer, 1)
	if p.fields != nil {
		return nil, Invalid(p.fields...)
	}
	return r, nil
}

type ruleParser struct {
	nodes  int
	fields []FieldError
}

func (p *ruleParser) fail(pointer, format string, args ...any) {
	p.fields = append(p.fields, FieldError{Pointer: pointer, Message: fmt.Sprintf(format, args...)})
}

var ruleKeys = map[string]bool{"all": true, "any": true, "not": true, "field": true, "op": true, "value": true}

func (p *ruleParser) parse(raw any, pointer string, depth int) *Rule {
	p.nodes++
	if p.nodes == MaxRuleNodes+1 {
		p.fail(pointer, "makes the rule larger than %d nodes", MaxRuleNodes)
	}
	if p.nodes > MaxRuleNodes {
		return nil
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		p.fail(pointer, `must be an object: {"all": [...]}, {"any": [...]}, {"not": {...}} or {"field", "op", "value"}`)
		return nil
	}
	for k := range obj {
		if !ruleKeys[k] {
			p.fail(pointer+"/"+escapeToken(k), "is not a rule key; use all, any, not, or field, op and value")
		}
	}
	_, hasAll := obj["all"]
	_, hasAny := obj["any"]
	_, hasNot := obj["not"]
	_, hasField := obj["field"]
	n := 0
	for _, b := range []bool{hasAll, hasAny, hasNot, hasField} {
		if b {
			n++
		}
	}
	if n != 1 {
		p.fail(pointer, "must have exactly one of all, any, not or field")
		return nil
	}
	if (hasAll || hasAny || hasNot) && depth >= MaxRuleDepth {
		p.fail(pointer, "nests deeper than %d levels", MaxRuleDepth)
		return nil
	}
	r := &Rule{}
	switch {
	case hasAll:
		r.All = p.children(obj["all"], pointer+"/all", depth)
	case hasAny:
		r.Any = p.children(obj["any"], pointer+"/any", depth)
	case hasNot:
		if child := p.parse(obj["not"], pointer+"/not", depth+1); child != nil {
			r.Not = child
		}
	default:
		p.condition(r, obj, pointer)
	}
	return r
}

func (p *ruleParser) children(raw any, pointer string, depth int) []Rule {
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		p.fail(pointer, "must be a non-empty array of rules")
		return nil
	}
	out := make([]Rule, 0, len(list))
	for i, item := range list {
		if child := p.parse(item, fmt.Sprintf("%s/%d", pointer, i), depth+1); child != nil {
			out = append(out, *child)
		}
	}
	return out
}

// attributeKeyPattern bounds custom attribute keys a rule may name.
var attributeKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

func (p *ruleParser) condition(r *Rule, obj map[string]any, pointer string) {
	field, ok := obj["field"].(string)
	if !ok {
		p.fail(pointer+"/field", "must be a string naming a field")
		return
	}
	r.Field = field
	var info RuleField
	if key, isAttr := strings.CutPrefix(field, AttributePrefix); isAttr {
		if !attributeKeyPattern.MatchString(key) {
			p.fail(pointer+"/field", "must name an attribute key of 1 to 64 letters, digits, '_', '.', ':' or '-' after attributes.")
			return
		}
		info = RuleField{Type: FieldAttribute}
	} else if info, ok = RuleFields[field]; !ok {
		p.fail(pointer+"/field", "is not a field rules can test; use one of %s, or attributes.<key>", strings.Join(ruleFieldNames(), ", "))
		return
	}
	op, ok := obj["op"].(string)
	if !ok {
		p.fail(pointer+"/op", "must be a string naming an operator")
		return
	}
	r.Op = Op(op)
	if !slices.Contains(opsOf[info.Type], r.Op) {
		p.fail(pointer+"/op", "is not an operator of %s; use one of %s", field, joinOps(opsOf[info.Type]))
		return
	}
	raw, has := obj["value"]
	vp := pointer + "/value"
	if !has {
		p.fail(vp, "is required")
		return
	}
	switch r.Op {
	case OpExists:
		b, ok := raw.(bool)
		if !ok {
			p.fail(vp, "must be true or false")
			return
		}
		r.Value = b
	case OpIn, OpNotIn:
		list, ok := raw.([]any)
		if !ok || len(list) == 0 || len(list) > MaxRuleListValues {
			p.fail(vp, "must be an array of 1 to %d values", MaxRuleListValues)
			return
		}
		values := make([]any, len(list))
		for i, item := range list {
			v, msg := scalarOf(info, item)
			if msg != "" {
				p.fail(fmt.Sprintf("%s/%d", vp, i), "%s", msg)
				continue
			}
			values[i] = v
		}
		r.Value = values
	case OpBetween:
		list, ok := raw.([]any)
		if !ok || len(list) != 2 {
			p.fail(vp, "must be an array of two values, the lower and upper bound (both included)")
			return
		}
		values := make([]any, 2)
		for i, item := range list {
			v, msg := orderedOf(info, item)
			if msg != "" {
				p.fail(fmt.Sprintf("%s/%d", vp, i), "%s", msg)
				return
			}
			values[i] = v
		}
		if less(values[1], values[0]) {
			p.fail(vp, "must have the lower bound first")
			return
		}
		r.Value = values
	case OpGt, OpGte, OpLt, OpLte:
		v, msg := orderedOf(info, raw)
		if msg != "" {
			p.fail(vp, "%s", msg)
			return
		}
		r.Value = v
	case OpContains:
		s, ok := raw.(string)
		if !ok || s == "" || len(s) > maxRuleText {
			p.fail(vp, "must be a non-empty string of at most %d characters", maxRuleText)
			return
		}
		r.Value = s
	default:
		v, msg := scalarOf(info, raw)
		if msg != "" {
			p.fail(vp, "%s", msg)
			return
		}
		r.Value = v
	}
}

// scalarOf checks a value compared for equality with a field of the given type.
func scalarOf(info RuleField, raw any) (any, string) {
	switch info.Type {
	case FieldNumber:
		return decimalOf(raw)
	case FieldTime:
		return timeOf(raw)
	case FieldUUID, FieldSubtree:
		s, ok := raw.(string)
		if !ok {
			return nil, "must be a UUID string"
		}
		id, err := uuid.Parse(s)
		if err != nil {
			return nil, "must be a UUID string"
		}
		return id, ""
	case FieldEnum:
		s, ok := raw.(string)
		if !ok || !slices.Contains(info.Values, s) {
			return nil, "must be one of " + strings.Join(info.Values, ", ")
		}
		return s, ""
	case FieldAttribute:
		switch v := raw.(type) {
		case string:
			if len(v) > maxRuleText {
				return nil, fmt.Sprintf("must be at most %d characters", maxRuleText)
			}
			return v, ""
		case bool:
			return v, ""
		default:
			return decimalOf(raw)
		}
	default:
		s, ok := raw.(string)
		if !ok || len(s) > maxRuleText {
			return nil, fmt.Sprintf("must be a string of at most %d characters", maxRuleText)
		}
		return s, ""
	}
}

// orderedOf checks a bound of gt, gte, lt, lte or between.
func orderedOf(info RuleField, raw any) (any, string) {
	switch info.Type {
	case FieldTime:
		return timeOf(raw)
	case FieldNumber, FieldAttribute:
		return decimalOf(raw)
	}
	return nil, "cannot be ordered"
}

// Decimal is a number in a rule, kept as its decimal text so it is compared exactly.
type Decimal string

var ruleNumberPattern = regexp.MustCompile(`^-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,10})?$`)

func decimalOf(raw any) (any, string) {
	const msg = "must be a number or a decimal string such as \"120.50\""
	var text string
	switch v := raw.(type) {
	case float64:
		text = strconv.FormatFloat(v, 'f', -1, 64)
	case interface{ String() string }:
		text = v.String()
	case string:
		text = v
	default:
		return nil, msg
	}
	if !ruleNumberPattern.MatchString(text) {
		return nil, msg
	}
	return Decimal(text), ""
}

func timeOf(raw any) (any, string) {
	s, ok := raw.(string)
	if !ok {
		return nil, "must be an RFC 3339 time such as \"2026-01-31T00:00:00Z\""
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, "must be an RFC 3339 time such as \"2026-01-31T00:00:00Z\""
	}
	return t.UTC(), ""
}

func less(a, b any) bool {
	switch x := a.(type) {
	case time.Time:
		return x.Before(b.(time.Time))
	case Decimal:
		fa, _ := strconv.ParseFloat(string(x), 64)
		fb, _ := strconv.ParseFloat(string(b.(Decimal)), 64)
		return fa < fb
	}
	return false
}

func ruleFieldNames() []string { return slices.Sorted(maps.Keys(RuleFields)) }

func joinOps(ops []Op) string {
	s := make([]string, len(ops))
	for i, op := range ops {
		s[i] = string(op)
	}
	return strings.Join(s, ", ")
}

// escapeToken escapes a key for use in a JSON Pointer.
func escapeToken(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
