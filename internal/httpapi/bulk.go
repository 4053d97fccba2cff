package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime"
	"strconv"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/centric-crm/centric/internal/crm"
)

// bulkThreshold is the maxItems from which a top-level array of a request body is validated
// item by item on every processor rather than in one pass.
const bulkThreshold = 1000

// bulkBody validates the JSON body of a bulk operation: the envelope against a copy of the
// body schema whose array items accept anything, then the items against their own schema in
// parallel. It gives the same verdict as validating the whole body at once.
type bulkBody struct {
	envelope *openapi3.Schema
	field    string
	item     *openapi3.Schema
}

// bulkBodyOf returns the bulk validator of an operation, or nil if its body has no large
// top-level array.
func bulkBodyOf(op *openapi3.Operation) *bulkBody {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil
	}
	media := op.RequestBody.Value.Content.Get("application/json")
	if media == nil || media.Schema == nil || media.Schema.Value == nil {
		return nil
	}
	schema := media.Schema.Value
	for name, prop := range schema.Properties {
		p := prop.Value
		if p == nil || !p.Type.Is(openapi3.TypeArray) || p.MaxItems == nil || *p.MaxItems < bulkThreshold || p.Items == nil {
			continue
		}
		lenient := *p
		lenient.Items = openapi3.NewSchemaRef("", &openapi3.Schema{})
		envelope := *schema
		envelope.Properties = make(openapi3.Schemas, len(schema.Properties))
		for k, v := range schema.Properties {
			envelope.Properties[k] = v
		}
		envelope.Properties[name] = openapi3.NewSchemaRef("", &lenient)
		return &bulkBody{envelope: &envelope, field: name, item: p.Items.Value}
	}
	return nil
}

// validate checks the request body and puts it back for the handler.
func (b *bulkBody) validate(req *http.Request) error {
	if media, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); media != "application/json" {
		return &requestError{status: http.StatusUnsupportedMediaType, detail: "The request body must be JSON (Content-Type: application/json)."}
	}
	data, err := io.ReadAll(req.Body)
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(data))
	if len(data) == 0 {
		return &requestError{status: http.StatusBadRequest, detail: "The request body is required."}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var body any
	if err := dec.Decode(&body); err != nil {
		return &requestError{status: http.StatusBadRequest, detail: "The request body is not valid JSON: " + err.Error() + "."}
	}
	opts := []openapi3.SchemaValidationOption{openapi3.VisitAsRequest(), openapi3.MultiErrors()}
	if err := b.envelope.VisitJSON(body, opts...); err != nil {
		return contractError(&openapi3filter.RequestError{RequestBody: &openapi3.RequestBody{}, Err: err})
	}
	items, _ := body.(map[string]any)[b.field].([]any)
	errs := make([]error, len(items))
	workers := min(runtime.GOMAXPROCS(0), (len(items)+bulkThreshold-1)/bulkThreshold)
	chunk := (len(items) + max(workers, 1) - 1) / max(workers, 1)
	var wg sync.WaitGroup
	for start := 0; start < len(items); start += chunk {
		end := min(start+chunk, len(items))
		wg.Go(func() {
			for i := start; i < end; i++ {
				errs[i] = b.item.VisitJSON(items[i], opts...)
			}
		})
	}
	wg.Wait()
	var fields []crm.FieldError
	for i, err := range errs {
		if err == nil {
			continue
		}
		prefix := "/" + b.field + "/" + strconv.Itoa(i)
		var re *requestError
		if errors.As(contractError(&openapi3filter.RequestError{RequestBody: &openapi3.RequestBody{}, Err: err}), &re) {
			for _, f := range re.fields {
				f.Pointer = prefix + f.Pointer
				if f.Pointer == prefix+"/" {
					f.Pointer = prefix
				}
				fields = append(fields, f)
			}
		}
	}
	if fields != nil {
		return &requestError{status: http.StatusUnprocessableEntity, detail: fmt.Sprintf("%d fields of the request are invalid.", len(fields)), fields: fields}
	}
	return nil
}
