package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/crm"
)

// problemContentType is the media type of RFC 9457 problem documents.
const problemContentType = "application/problem+json"

// statusOf maps each domain error code to its HTTP status and problem code.
var statusOf = map[crm.ErrorCode]struct {
	status int
	code   api.ProblemCode
}{
	crm.CodeInvalid:              {http.StatusUnprocessableEntity, api.ValidationFailed},
	crm.CodeNotFound:             {http.StatusNotFound, api.NotFound},
	crm.CodeConflict:             {http.StatusConflict, api.Conflict},
	crm.CodePreconditionFailed:   {http.StatusPreconditionFailed, api.PreconditionFailed},
	crm.CodeUnauthorized:         {http.StatusUnauthorized, api.Unauthorized},
	crm.CodeForbidden:            {http.StatusForbidden, api.Forbidden},
	crm.CodeCursorExpired:        {http.StatusGone, api.CursorExpired},
	crm.CodeIdempotencyKeyReused: {http.StatusUnprocessableEntity, api.IdempotencyKeyReused},
	crm.CodeIdempotencyKeyInUse:  {http.StatusConflict, api.IdempotencyKeyInUse},
	crm.CodeInternal:             {http.StatusInternalServerError, api.Internal},
}

// codeOfStatus names the problem code of statuses that arise outside the domain.
var codeOfStatus = map[int]api.ProblemCode{
	http.StatusBadRequest:            api.InvalidRequest,
	http.StatusUnauthorized:          api.Unauthorized,
	http.StatusForbidden:             api.Forbidden,
	http.StatusNotFound:              api.NotFound,
	http.StatusMethodNotAllowed:      api.MethodNotAllowed,
	http.StatusConflict:              api.Conflict,
	http.StatusPreconditionFailed:    api.PreconditionFailed,
	http.StatusRequestEntityTooLarge: api.PayloadTooLarge,
	http.StatusUnsupportedMediaType:  api.UnsupportedMediaType,
	http.StatusTooManyRequests:       api.RateLimited,
	http.StatusUnprocessableEntity:   api.ValidationFailed,
	http.StatusServiceUnavailable:    api.Unavailable,
}

// requestError is a client error found before the domain was reached: a malformed body, a bad
// parameter, or a request that does not match the contract.
type requestError struct {
	status int
	detail string
	fields []crm.FieldError
}

func (e *requestError) Error() string { return e.detail }

// bindingError matches the message of the generated code's parameter binding errors.
var bindingError = regexp.MustCompile(`^Invalid format for parameter ([A-Za-z0-9_-]+): `)

// problemOf turns any error into a problem document.
func problemOf(err error) api.Problem {
	var (
		domainErr *crm.Error
		reqErr    *requestError
		httpErr   *echo.HTTPError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &domainErr):
		s := statusOf[domainErr.Code]
		if s.status == 0 {
			s = statusOf[crm.CodeInternal]
		}
		return newProblem(s.status, s.code, domainErr.Message, domainErr.Fields)
	case errors.As(err, &reqErr):
		return newProblem(reqErr.status, codeOfStatus[reqErr.status], reqErr.detail, reqErr.fields)
	case errors.As(err, &syntaxErr), errors.Is(err, errEmptyBody):
		return newProblem(http.StatusBadRequest, api.InvalidRequest, "The request body is not valid JSON: "+err.Error()+".", nil)
	case errors.As(err, &typeErr):
		pointer := "/" + strings.ReplaceAll(typeErr.Field, ".", "/")
		return newProblem(http.StatusBadRequest, api.InvalidRequest, "The request body has a value of the wrong type.",
			[]crm.FieldError{{Pointer: pointer, Message: fmt.Sprintf("must be %s, not %s", typeErr.Type, typeErr.Value)}})
	case errors.As(err, &httpErr):
		return problemOfHTTPError(httpErr)
	}
	return newProblem(http.StatusInternalServerError, api.Internal, "Something went wrong on our side; the request id identifies it in our logs.", nil)
}

// errEmptyBody is reported for a request without the body its operation requires.
var errEmptyBody = errors.New("the body is empty")

func problemOfHTTPError(e *echo.HTTPError) api.Problem {
	msg := fmt.Sprint(e.Message)
	code, ok := codeOfStatus[e.Code]
	if !ok {
		if e.Code >= 500 {
			return newProblem(http.StatusInternalServerError, api.Internal, "Something went wrong on our side; the request id identifies it in our logs.", nil)
		}
		code = api.InvalidRequest
	}
	switch e.Code {
	case http.StatusNotFound:
		msg = "No such resource or route. Check the path against /openapi.yaml."
	case http.StatusMethodNotAllowed:
		msg = "The route does not support this method. Check the method against /openapi.yaml."
	case http.StatusRequestEntityTooLarge:
		msg = "The request body is too large."
	case http.StatusBadRequest:
		if m := bindingError.FindStringSubmatch(msg); m != nil {
			return newProblem(e.Code, code, fmt.Sprintf("The parameter %s is malformed.", m[1]),
				[]crm.FieldError{{Pointer: "path:" + m[1], Message: "must be a valid value of its type (for ids, a UUID)"}})
		}
	}
	return newProblem(e.Code, code, msg, nil)
}

func newProblem(status int, code api.ProblemCode, detail string, fields []crm.FieldError) api.Problem {
	title := http.StatusText(status)
	p := api.Problem{
		Type:   "urn:centric:problem:" + strings.ReplaceAll(string(code), "_", "-"),
		Title:  title,
		Status: status,
		Code:   code,
	}
	if detail != "" {
		p.Detail = &detail
	}
	if len(fields) > 0 {
		errs := fieldErrorsToAPI(fields)
		p.Errors = &errs
	}
	return p
}

func fieldErrorsToAPI(fields []crm.FieldError) []api.FieldError {
	out := make([]api.FieldError, len(fields))
	for i, f := range fields {
		out[i] = api.FieldError{Pointer: f.Pointer, Message: f.Message}
	}
	return out
}

// batchItemError is a failed batch item's error, as a problem would tell it.
func batchItemError(err *crm.Error) *api.BatchItemError {
	return &api.BatchItemError{Code: string(problemOf(err).Code), Message: err.Message, Errors: fieldErrorsToAPI(err.Fields)}
}

// errorHandler renders every error as a problem document: the one place errors become HTTP.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		p := problemOf(err)
		p.RequestId = c.Response().Header().Get(echo.HeaderXRequestID)
		if p.Status >= 500 {
			logger.ErrorContext(c.Request().Context(), "request failed",
				"request_id", p.RequestId, "method", c.Request().Method, "path", c.Request().URL.Path, "error", err)
		}
		body, mErr := json.Marshal(p)
		if mErr != nil {
			logger.Error("encode problem", "error", mErr)
			return
		}
		if c.Request().Method == http.MethodHead {
			err = c.NoContent(p.Status)
		} else {
			err = c.Blob(p.Status, problemContentType, body)
		}
		if err != nil {
			logger.Error("write problem", "request_id", p.RequestId, "error", err)
		}
	}
}
