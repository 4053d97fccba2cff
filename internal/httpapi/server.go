// Package httpapi serves the Centric API over HTTP: it implements the strict server generated
// from openapi.yaml, maps between API and domain types, and renders every error as an RFC 9457
// problem document.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/centric-crm/centric/api"
	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/crm"
)

// maxBodyBytes bounds request bodies; a full transaction batch stays well below it.
const maxBodyBytes = "32M"

// Pinger reports whether the database answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Services are the domain services the API calls.
type Services struct {
	Customers       *crm.CustomerService
	CustomerBatches *crm.CustomerBatchService
	Transactions    *crm.TransactionService
	Keys            *crm.KeyService
	Changes         *crm.ChangeService
	Idempotency     crm.IdempotencyStore
	Analytics       *analytics.Service
	Insights        *analytics.Insights
	Segments        *crm.SegmentService
	Database        Pinger
}

// Server implements the generated strict server interface.
type Server struct {
	Services
}

var _ api.StrictServerInterface = (*Server)(nil)

// New returns the HTTP handler of the API: routing, request ids, logging, authentication, rate
// limits per API key, contract validation, the handlers, and problem+json errors.
// Every API key is limited by its own rate limit or else by limit, the default (no limit when
// limit.PerSecond is 0).
func New(services Services, limit crm.RateLimit, logger *slog.Logger) (*echo.Echo, error) {
	spec, err := api.GetSpec()
	if err != nil {
		return nil, err
	}
	validator, err := newContractValidator(spec)
	if err != nil {
		return nil, err
	}
	rawSpec, err := rawContract()
	if err != nil {
		return nil, err
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(logger)
	e.Use(
		middleware.RequestIDWithConfig(middleware.RequestIDConfig{Generator: func() string { return uuid.Must(uuid.NewV7()).String() }}),
		requestLogger(logger),
		middleware.Recover(),
		middleware.BodyLimit(maxBodyBytes),
		authenticator(services.Keys),
		rateLimiter(limit, time.Now),
		validator.middleware,
		idempotency(services.Idempotency, time.Now, logger),
	)
	e.GET("/openapi.yaml", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/yaml", rawSpec) })
	api.RegisterHandlers(e, api.NewStrictHandler(&Server{Services: services}, nil))
	return e, nil
}

// GetHealth answers the liveness probe.
func (s *Server) GetHealth(context.Context, api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	return api.GetHealth200JSONResponse{Status: "ok"}, nil
}

// GetReadiness answers the readiness probe by pinging the database.
func (s *Server) GetReadiness(ctx context.Context, _ api.GetReadinessRequestObject) (api.GetReadinessResponseObject, error) {
	if err := s.Database.Ping(ctx); err != nil {
		return nil, &requestError{status: http.StatusServiceUnavailable, detail: "The database does not answer."}
	}
	return api.GetReadiness200JSONResponse{Status: "ok"}, nil
}
