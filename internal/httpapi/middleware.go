package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/labstack/echo/v4"

	"github.com/centric-crm/centric/internal/crm"
)

type principalKey struct{}

// principalOf returns the authenticated caller of the request.
func principalOf(ctx context.Context) *crm.Principal {
	p, _ := ctx.Value(principalKey{}).(*crm.Principal)
	return p
}

// scopeOf returns the part of the hierarchy the caller may see.
func scopeOf(ctx context.Context) crm.Scope {
	if p := principalOf(ctx); p != nil {
		return p.Scope
	}
	return crm.Scope{}
}

// authenticator checks the API key of every /v1 request and stores the caller in the request
// context, where the strict handlers can read it.
func authenticator(keys *crm.KeyService) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !strings.HasPrefix(c.Request().URL.Path, "/v1/") {
				return next(c)
			}
			header := c.Request().Header.Get(echo.HeaderAuthorization)
			token, ok := strings.CutPrefix(header, "Bearer ")
			if !ok || token == "" {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="centric"`)
				return crm.Errorf(crm.CodeUnauthorized, "Send an API key as Authorization: Bearer <key>.")
			}
			p, err := keys.Authenticate(c.Request().Context(), strings.TrimSpace(token))
			if err != nil {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="centric", error="invalid_token"`)
				return err
			}
			ctx := crm.WithActor(context.WithValue(c.Request().Context(), principalKey{}, p), p.KeyID)
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	}
}

// contractValidator checks every request against the OpenAPI contract: the route exists, the
// caller holds the permission in the operation's x-required-scope, and parameters and body
// match their schemas. Violations become problems with a pointer to each bad field.
type contractValidator struct {
	router routers.Router
	opts   openapi3filter.Options
	// bulk holds the parallel body validators of bulk operations, by operation id.
	bulk map[string]*bulkBody
}

func newContractValidator(spec *openapi3.T) (*contractValidator, error) {
	spec.Servers = nil
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("route contract: %w", err)
	}
	bulk := map[string]*bulkBody{}
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			if b := bulkBodyOf(op); b != nil {
				bulk[op.OperationID] = b
			}
		}
	}
	return &contractValidator{router: router, bulk: bulk, opts: openapi3filter.Options{
		MultiError:          true,
		SkipSettingDefaults: true,
		AuthenticationFunc:  func(context.Context, *openapi3filter.AuthenticationInput) error { return nil },
	}}, nil
}

func (v *contractValidator) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		route, params, err := v.router.FindRoute(req)
		if err != nil {
			if errors.Is(err, routers.ErrMethodNotAllowed) {
				return echo.ErrMethodNotAllowed
			}
			if strings.HasPrefix(req.URL.Path, "/v1/") {
				return echo.ErrNotFound
			}
			return next(c)
		}
		if scope, ok := route.Operation.Extensions["x-required-scope"].(string); ok {
			if p := principalOf(req.Context()); p == nil || !p.Allows(crm.Permission(scope)) {
				return crm.Errorf(crm.CodeForbidden, "This API key lacks the %s permission this operation needs.", scope)
			}
		}
		if reason, ok := route.Operation.Extensions["x-unconfined-key-only"].(string); ok && scopeOf(req.Context()).Root != nil {
			return crm.Errorf(crm.CodeForbidden, "This API key is confined to a customer subtree, and %s", reason)
		}
		opts := &v.opts
		bulk := v.bulk[route.Operation.OperationID]
		if bulk != nil {
			withoutBody := v.opts
			withoutBody.ExcludeRequestBody = true
			opts = &withoutBody
		}
		input := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
		if err := openapi3filter.ValidateRequest(req.Context(), input); err != nil {
			return contractError(err)
		}
		if bulk != nil {
			if err := bulk.validate(req); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// unsupportedProperty matches the reason kin-openapi gives for a property the schema does not
// allow; its error points at the object, so the property's name is added to the pointer.
var unsupportedProperty = regexp.MustCompile(`^property "(.*)" is unsupported$`)

// contractError turns a validation failure into a requestError with a pointer per field:
// parameters as "in:name", body fields as JSON Pointers.
func contractError(err error) error {
	out := &requestError{status: http.StatusBadRequest}
	var visit func(error)
	visit = func(err error) {
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, inner := range e {
				visit(inner)
			}
		case *openapi3filter.RequestError:
			var parseErr *openapi3filter.ParseError
			var schemaErr *openapi3.SchemaError
			switch {
			case e.Parameter != nil:
				msg := e.Reason
				if errors.As(e.Err, &schemaErr) {
					msg = schemaErr.Reason
				} else if e.Err != nil {
					msg = e.Err.Error()
				}
				out.fields = append(out.fields, crm.FieldError{Pointer: e.Parameter.In + ":" + e.Parameter.Name, Message: msg})
			case e.RequestBody != nil && errors.Is(e.Err, openapi3filter.ErrInvalidRequired):
				out.detail = "The request body is required."
			case e.RequestBody != nil && errors.As(e.Err, &parseErr):
				out.detail = "The request body is not valid JSON: " + parseErr.Error() + "."
			case e.RequestBody != nil && e.Err != nil:
				visit(e.Err)
			case strings.Contains(e.Error(), "header Content-Type has unexpected value"):
				out.status = http.StatusUnsupportedMediaType
				out.detail = "The request body must be JSON (Content-Type: application/json)."
			default:
				out.detail = e.Error()
			}
		case *openapi3.SchemaError:
			out.status = http.StatusUnprocessableEntity
			path := e.JSONPointer()
			if m := unsupportedProperty.FindStringSubmatch(e.Reason); m != nil {
				path = append(path, m[1])
			}
			out.fields = append(out.fields, crm.FieldError{Pointer: "/" + strings.Join(escapePointer(path), "/"), Message: e.Reason})
		default:
			out.detail = err.Error()
		}
	}
	visit(err)
	if out.detail == "" {
		out.detail = fmt.Sprintf("The request has %d invalid fields.", len(out.fields))
		if len(out.fields) == 1 {
			out.detail = fmt.Sprintf("Invalid %s: %s.", out.fields[0].Pointer, out.fields[0].Message)
		}
	}
	return out
}

func escapePointer(tokens []string) []string {
	out := make([]string, len(tokens))
	r := strings.NewReplacer("~", "~0", "/", "~1")
	for i, t := range tokens {
		out[i] = r.Replace(t)
	}
	return out
}

// requestLogger logs one structured line per request.
func requestLogger(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			req := c.Request()
			level := slog.LevelInfo
			if c.Response().Status >= 500 {
				level = slog.LevelError
			}
			logger.LogAttrs(req.Context(), level, "request",
				slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
				slog.String("method", req.Method),
				slog.String("path", req.URL.Path),
				slog.Int("status", c.Response().Status),
				slog.Int64("bytes", c.Response().Size),
				slog.Duration("duration", time.Since(start)),
			)
			return nil
		}
	}
}
