package postgres

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/centric-crm/centric/internal/crm"
)

// TestCompileRuleBindsEveryValue compiles a condition for every field and operator and checks
// that the SQL has one placeholder per argument and none of the values in its text.
func TestCompileRuleBindsEveryValue(t *testing.T) {
	values := map[crm.FieldType]map[crm.Op]string{}
	scalar := map[crm.FieldType]string{
		crm.FieldText: `"zz'q"`, crm.FieldNumber: `"12.5"`, crm.FieldTime: `"2026-01-01T00:00:00Z"`,
		crm.FieldUUID: `"01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e"`, crm.FieldSubtree: `"01927c5e-7a4b-7cc3-9d2e-4f1a2b3c4d5e"`,
		crm.FieldTags: `"zz'q"`, crm.FieldAttribute: `"zz'q"`,
	}
	ordered := map[crm.FieldType]string{crm.FieldNumber: `"12.5"`, crm.FieldTime: `"2026-01-01T00:00:00Z"`, crm.FieldAttribute: `"12.5"`}
	fields := map[string]crm.RuleField{"attributes.key-zz": {Type: crm.FieldAttribute}}
	for name, info := range crm.RuleFields {
		fields[name] = info
	}
	n := 0
	for name, info := range fields {
		if info.Type == crm.FieldEnum {
			scalar[crm.FieldEnum] = `"` + info.Values[0] + `"`
		}
		if values[info.Type] == nil {
			values[info.Type] = map[crm.Op]string{}
		}
		for _, op := range []crm.Op{crm.OpEq, crm.OpNe, crm.OpIn, crm.OpNotIn, crm.OpGt, crm.OpGte, crm.OpLt, crm.OpLte, crm.OpBetween, crm.OpContains, crm.OpExists} {
			var value string
			switch op {
			case crm.OpExists:
				value = "true"
			case crm.OpIn, crm.OpNotIn:
				value = "[" + scalar[info.Type] + "]"
			case crm.OpBetween:
				value = "[" + ordered[info.Type] + "," + ordered[info.Type] + "]"
			case crm.OpGt, crm.OpGte, crm.OpLt, crm.OpLte:
				value = ordered[info.Type]
			case crm.OpContains:
				value = `"zz'q"`
			default:
				value = scalar[info.Type]
			}
			if value == "" || value == "[,]" {
				value = `"zz"`
			}
			var raw any
			if err := json.Unmarshal([]byte(`{"field": "`+name+`", "op": "`+string(op)+`", "value": `+value+`}`), &raw); err != nil {
				t.Fatalf("%s %s: %v", name, op, err)
			}
			r, err := crm.ParseRule(raw, "")
			if err != nil {
				continue
			}
			p, err := compileRule(r)
			if err != nil {
				t.Errorf("%s %s: %v", name, op, err)
				continue
			}
			n++
			if got := strings.Count(p.sql, "?"); got != len(p.args) {
				t.Errorf("%s %s: %d placeholders for %d arguments in %s", name, op, got, len(p.args), p.sql)
			}
			if strings.Contains(p.sql, "zz") || strings.Contains(p.sql, "12.5") {
				t.Errorf("%s %s: a value reached the SQL text: %s", name, op, p.sql)
			}
		}
	}
	if n < 150 {
		t.Errorf("compiled only %d conditions", n)
	}
}
