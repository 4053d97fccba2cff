package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/centric-crm/centric/internal/crm"
)

// ruleColumns maps every field of the rule language's allow-list to its SQL expression over
// customers c, customer_scores s and customer_tiers t. Rule text never reaches SQL: a field
// name only selects an entry here, and every value is a bound parameter.
var ruleColumns = map[string]string{
	"kind":                   "c.kind",
	"role":                   "c.role",
	"country":                "c.country",
	"industry":               "c.industry",
	"owner":                  "c.owner",
	"acquisition_channel":    "c.acquisition_channel",
	"acquired_at":            "c.acquired_at",
	"created_at":             "c.created_at",
	"parent_id":              "c.parent_id",
	"tags":                   "c.tags",
	"clv":                    "s.clv",
	"churn_risk":             "s.churn_risk",
	"p_alive":                "s.p_alive",
	"frequency":              "s.frequency",
	"recency":                "s.recency",
	"monetary":               "s.monetary",
	"purchases":              "s.purchases",
	"revenue":                "s.revenue",
	"net_value":              "s.net_value",
	"expected_purchases_90d": "s.expected_purchases_90d",
	"first_purchase_at":      "s.first_purchase_at",
	"last_purchase_at":       "s.last_purchase_at",
	"rfm_recency":            "s.rfm_recency",
	"rfm_frequency":          "s.rfm_frequency",
	"rfm_monetary":           "s.rfm_monetary",
	"rfm_segment":            "s.rfm_segment",
	"churn_band":             "s.churn_band",
	"value_tier":             "t.value_tier",
	"clv_tier":               "t.clv_tier",
	"value_class":            "t.value_class",
	"usage_tier":             "t.usage_tier",
}

// predicate is a rule compiled to a boolean SQL expression with ? placeholders and their
// arguments, and the joins it needs.
type predicate struct {
	sql    string
	args   []any
	scores bool
	tiers  bool
}

// from returns the FROM clause the predicate needs over the customers c.
func (p predicate) from() string {
	var b strings.Builder
	b.WriteString("customers c")
	if p.scores {
		b.WriteString(" LEFT JOIN customer_scores s ON s.customer_id = c.id")
	}
	if p.tiers {
		b.WriteString(" LEFT JOIN customer_tiers t ON t.customer_id = c.id")
	}
	return b.String()
}

// compileRule turns a checked rule into a predicate. Each condition is two-valued: a condition
// on a field the customer lacks (no score, no such attribute) is false, except exists false.
func compileRule(r *crm.Rule) (predicate, error) {
	c := ruleCompiler{}
	var b strings.Builder
	if err := c.node(&b, r); err != nil {
		return predicate{}, err
	}
	return predicate{sql: b.String(), args: c.args, scores: c.scores, tiers: c.tiers}, nil
}

type ruleCompiler struct {
	args   []any
	scores bool
	tiers  bool
}

func (c *ruleCompiler) arg(v any) string {
	c.args = append(c.args, v)
	return "?"
}

func (c *ruleCompiler) node(b *strings.Builder, r *crm.Rule) error {
	switch {
	case len(r.All) > 0 || len(r.Any) > 0:
		children, join := r.All, " AND "
		if len(r.Any) > 0 {
			children, join = r.Any, " OR "
		}
		b.WriteByte('(')
		for i := range children {
			if i > 0 {
				b.WriteString(join)
			}
			if err := c.node(b, &children[i]); err != nil {
				return err
			}
		}
		b.WriteByte(')')
		return nil
	case r.Not != nil:
		b.WriteString("(NOT ")
		if err := c.node(b, r.Not); err != nil {
			return err
		}
		b.WriteByte(')')
		return nil
	}
	b.WriteString("coalesce(")
	if err := c.condition(b, r); err != nil {
		return err
	}
	b.WriteString(", false)")
	return nil
}

func (c *ruleCompiler) condition(b *strings.Builder, r *crm.Rule) error {
	info := r.FieldInfo()
	switch info.Type {
	case crm.FieldAttribute:
		return c.attribute(b, r)
	case crm.FieldSubtree:
		return c.subtree(b, r)
	case crm.FieldTags:
		return c.tags(b, r)
	}
	col, ok := ruleColumns[r.Field]
	if !ok {
		return fmt.Errorf("compile rule: field %q has no column", r.Field)
	}
	switch col[0] {
	case 's':
		c.scores = true
	case 't':
		c.tiers = true
	}
	cast := map[crm.FieldType]string{
		crm.FieldNumber: "numeric", crm.FieldTime: "timestamptz", crm.FieldUUID: "uuid",
		crm.FieldText: "text", crm.FieldEnum: "text",
	}[info.Type]
	switch r.Op {
	case crm.OpExists:
		if r.Value.(bool) {
			fmt.Fprintf(b, "%s IS NOT NULL", col)
		} else {
			fmt.Fprintf(b, "%s IS NULL", col)
		}
	case crm.OpEq, crm.OpNe, crm.OpGt, crm.OpGte, crm.OpLt, crm.OpLte:
		fmt.Fprintf(b, "%s %s %s::%s", col, comparisons[r.Op], c.arg(sqlValue(r.Value)), cast)
	case crm.OpBetween:
		bounds := r.Value.([]any)
		fmt.Fprintf(b, "%s BETWEEN %s::%s AND %s::%s", col, c.arg(sqlValue(bounds[0])), cast, c.arg(sqlValue(bounds[1])), cast)
	case crm.OpIn, crm.OpNotIn:
		list := c.arg(arrayValue(r.Value.([]any)))
		if r.Op == crm.OpIn {
			fmt.Fprintf(b, "%s = ANY(%s::%s[])", col, list, cast)
		} else {
			fmt.Fprintf(b, "NOT (%s = ANY(%s::%s[]))", col, list, cast)
		}
	case crm.OpContains:
		fmt.Fprintf(b, "%s ILIKE %s", col, c.arg(likePattern(r.Value.(string))))
	default:
		return fmt.Errorf("compile rule: operator %q on %q", r.Op, r.Field)
	}
	return nil
}

var comparisons = map[crm.Op]string{crm.OpEq: "=", crm.OpNe: "<>", crm.OpGt: ">", crm.OpGte: ">=", crm.OpLt: "<", crm.OpLte: "<="}

func (c *ruleCompiler) subtree(b *strings.Builder, r *crm.Rule) error {
	switch r.Op {
	case crm.OpEq, crm.OpNe:
		id := r.Value.(uuid.UUID)
		expr := fmt.Sprintf("(c.ancestors @> ARRAY[%s]::uuid[] OR c.id = %s)", c.arg(id), c.arg(id))
		if r.Op == crm.OpNe {
			expr = "NOT " + expr
		}
		b.WriteString(expr)
	case crm.OpIn, crm.OpNotIn:
		ids := arrayValue(r.Value.([]any))
		expr := fmt.Sprintf("(c.ancestors && %s::uuid[] OR c.id = ANY(%s::uuid[]))", c.arg(ids), c.arg(ids))
		if r.Op == crm.OpNotIn {
			expr = "NOT " + expr
		}
		b.WriteString(expr)
	default:
		return fmt.Errorf("compile rule: operator %q on subtree", r.Op)
	}
	return nil
}

func (c *ruleCompiler) tags(b *strings.Builder, r *crm.Rule) error {
	switch r.Op {
	case crm.OpContains:
		fmt.Fprintf(b, "c.tags @> ARRAY[%s::text]", c.arg(r.Value.(string)))
	case crm.OpIn:
		fmt.Fprintf(b, "c.tags && %s::text[]", c.arg(arrayValue(r.Value.([]any))))
	case crm.OpNotIn:
		fmt.Fprintf(b, "NOT (c.tags && %s::text[])", c.arg(arrayValue(r.Value.([]any))))
	case crm.OpExists:
		if r.Value.(bool) {
			b.WriteString("cardinality(c.tags) > 0")
		} else {
			b.WriteString("cardinality(c.tags) = 0")
		}
	default:
		return fmt.Errorf("compile rule: operator %q on tags", r.Op)
	}
	return nil
}

// attribute compiles a condition on a custom attribute. Equality compares JSON values (so 1
// equals 1.0 and "1" does not); ordering applies to numeric attributes only.
func (c *ruleCompiler) attribute(b *strings.Builder, r *crm.Rule) error {
	key := r.AttributeKey()
	value := func() string { return fmt.Sprintf("(c.attributes -> %s::text)", c.arg(key)) }
	number := func() string {
		return fmt.Sprintf("(CASE WHEN jsonb_typeof(c.attributes -> %s::text) = 'number' THEN (c.attributes ->> %s::text)::numeric END)", c.arg(key), c.arg(key))
	}
	switch r.Op {
	case crm.OpExists:
		if r.Value.(bool) {
			fmt.Fprintf(b, "%s IS NOT NULL", value())
		} else {
			fmt.Fprintf(b, "%s IS NULL", value())
		}
	case crm.OpEq, crm.OpNe:
		fmt.Fprintf(b, "%s %s %s::jsonb", value(), comparisons[r.Op], c.arg(jsonValue(r.Value)))
	case crm.OpGt, crm.OpGte, crm.OpLt, crm.OpLte:
		fmt.Fprintf(b, "%s %s %s::numeric", number(), comparisons[r.Op], c.arg(sqlValue(r.Value)))
	case crm.OpBetween:
		bounds := r.Value.([]any)
		fmt.Fprintf(b, "%s BETWEEN %s::numeric AND %s::numeric", number(), c.arg(sqlValue(bounds[0])), c.arg(sqlValue(bounds[1])))
	case crm.OpIn, crm.OpNotIn:
		list := make([]any, 0, len(r.Value.([]any)))
		for _, v := range r.Value.([]any) {
			list = append(list, jsonScalar(v))
		}
		raw, err := json.Marshal(list)
		if err != nil {
			return fmt.Errorf("compile rule: %w", err)
		}
		present := value() + " IS NOT NULL"
		in := fmt.Sprintf("%s::jsonb @> jsonb_build_array(%s)", c.arg(string(raw)), value())
		if r.Op == crm.OpIn {
			fmt.Fprintf(b, "(%s AND %s)", present, in)
		} else {
			fmt.Fprintf(b, "(%s AND NOT %s)", present, in)
		}
	case crm.OpContains:
		element, err := json.Marshal([]string{r.Value.(string)})
		if err != nil {
			return fmt.Errorf("compile rule: %w", err)
		}
		fmt.Fprintf(b, "(CASE jsonb_typeof(%s) WHEN 'string' THEN (c.attributes ->> %s::text) ILIKE %s WHEN 'array' THEN %s @> %s::jsonb END)",
			value(), c.arg(key), c.arg(likePattern(r.Value.(string))), value(), c.arg(string(element)))
	default:
		return fmt.Errorf("compile rule: operator %q on an attribute", r.Op)
	}
	return nil
}

// sqlValue converts a checked rule value to a driver value.
func sqlValue(v any) any {
	switch x := v.(type) {
	case crm.Decimal:
		return string(x)
	case time.Time:
		return x
	case uuid.UUID:
		return x.String()
	}
	return v
}

// arrayValue encodes a list of checked values as a PostgreSQL array literal, bound as one
// parameter and cast by the caller.
func arrayValue(list []any) textArray {
	out := make(textArray, len(list))
	for i, v := range list {
		switch x := v.(type) {
		case crm.Decimal:
			out[i] = string(x)
		case uuid.UUID:
			out[i] = x.String()
		case time.Time:
			out[i] = x.Format(time.RFC3339Nano)
		default:
			out[i] = fmt.Sprint(x)
		}
	}
	return out
}

// jsonScalar converts a checked attribute value to the JSON value it is compared with.
func jsonScalar(v any) any {
	if d, ok := v.(crm.Decimal); ok {
		return json.Number(d)
	}
	return v
}

func jsonValue(v any) string {
	raw, _ := json.Marshal(jsonScalar(v))
	return string(raw)
}

// likePattern matches s anywhere, with LIKE's wildcards in s escaped.
func likePattern(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(s) + "%"
}
