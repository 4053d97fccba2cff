package httpapi_test

import (
	"net/http"
	"testing"
)

func TestRetentionProjectionFH07(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.mustDo(request{Method: "POST", Path: "/v1/analytics/retention/projection", Body: map[string]any{
		"survivors": []int{1000, 631, 468, 382, 326, 289, 262, 241}, "periods": 12, "discount_rate": 0.1,
	}}, http.StatusOK).json(t)
	t.Logf("%v", res)
}
