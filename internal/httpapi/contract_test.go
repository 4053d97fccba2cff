package httpapi_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/crm"
)

// TestContractOperations checks what every /v1 operation of the contract must declare: a
// known permission in x-required-scope, the shared 429 response of the rate limiter, and, for
// a POST, the Idempotency-Key parameter the idempotency middleware honours.
func TestContractOperations(t *testing.T) {
	spec, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range spec.Paths.Map() {
		if !strings.HasPrefix(path, "/v1/") {
			continue
		}
		for method, op := range item.Operations() {
			name := method + " " + path
			scope, _ := op.Extensions["x-required-scope"].(string)
			if !slices.Contains(crm.Permissions, crm.Permission(scope)) {
				t.Errorf("%s: x-required-scope %q is not a permission", name, scope)
			}
			if r := op.Responses.Value("429"); r == nil || r.Ref != "#/components/responses/TooManyRequests" {
				t.Errorf("%s does not list the shared 429 response", name)
			}
			idempotent := slices.ContainsFunc(op.Parameters, func(p *openapi3.ParameterRef) bool {
				return p.Ref == "#/components/parameters/IdempotencyKey"
			})
			if (method == "POST") != idempotent {
				t.Errorf("%s: lists the Idempotency-Key parameter: %v, want it on every POST only", name, idempotent)
			}
		}
	}
}
