// Package app wires Centric together: the database (a private PostgreSQL when none is
// configured), migrations, the domain services and the HTTP API.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/centric-crm/centric/internal/analytics"
	"github.com/centric-crm/centric/internal/config"
	"github.com/centric-crm/centric/internal/crm"
	"github.com/centric-crm/centric/internal/httpapi"
	"github.com/centric-crm/centric/internal/pgembed"
	"github.com/centric-crm/centric/internal/postgres"
	"github.com/centric-crm/centric/migrations"
)

// App is a connected, migrated Centric.
type App struct {
	DB              *postgres.DB
	Customers       *crm.CustomerService
	CustomerBatches *crm.CustomerBatchService
	Transactions    *crm.TransactionService
	Keys            *crm.KeyService
	Changes         *crm.ChangeService
	Idempotency     *postgres.IdempotencyStore
	Analytics       *analytics.Service
	Insights        *analytics.Insights
	Segments        *crm.SegmentService

	logger    *slog.Logger
	rateLimit crm.RateLimit
	embedded  *pgembed.Server
}

// Open connects to cfg.DatabaseURL, or starts the private PostgreSQL in cfg.DataDir, and
// applies the migrations.
func Open(ctx context.Context, cfg config.Config, logger *slog.Logger) (*App, error) {
	a := &App{logger: logger, rateLimit: crm.RateLimit{PerSecond: cfg.RateLimit, Burst: cfg.RateBurst}}
	url := cfg.DatabaseURL
	if url == "" {
		srv, err := pgembed.Start(ctx, pgembed.Options{
			DataDir:  filepath.Join(cfg.DataDir, "postgres"),
			Database: "centric",
			BinDir:   cfg.PostgresBinDir,
			Logger:   logger,
		})
		if err != nil {
			return nil, fmt.Errorf("start private PostgreSQL (or set DATABASE_URL): %w", err)
		}
		a.embedded = srv
		url = srv.URL("centric")
	}
	db, err := postgres.Open(ctx, url, postgres.Options{MaxConns: cfg.MaxDBConns})
	if err != nil {
		return nil, errors.Join(err, a.Close(ctx))
	}
	a.DB = db
	if err := migrations.Up(ctx, db.SQL()); err != nil {
		return nil, errors.Join(err, a.Close(ctx))
	}
	validator := crm.NewValidator()
	customers := postgres.NewCustomerStore(db)
	a.Analytics = analytics.NewService(postgres.NewAnalyticsStore(db, cfg.RefreshConnections), logger, time.Now, cfg.RefitInterval)
	a.Insights = analytics.NewInsights(postgres.NewInsightStore(db), time.Now)
	a.Customers = crm.NewCustomerService(customers, validator, time.Now)
	a.CustomerBatches = crm.NewCustomerBatchService(postgres.NewCustomerBatchStore(db), validator, time.Now)
	a.Transactions = crm.NewTransactionService(postgres.NewTransactionStore(db), customers, a.Analytics, validator, time.Now)
	a.Keys = crm.NewKeyService(postgres.NewAPIKeyStore(db), time.Now)
	a.Changes = crm.NewChangeService(postgres.NewChangeStore(db), time.Now)
	a.Idempotency = postgres.NewIdempotencyStore(db)
	segments := postgres.NewSegmentStore(db)
	a.Segments = crm.NewSegmentService(segments, segments, logger, time.Now)
	if err := a.Segments.EnsureBuiltins(ctx); err != nil {
		return nil, errors.Join(err, a.Close(ctx))
	}
	a.Analytics.SetMembershipUpdater(a.Segments)
	a.Customers.SetProfileUpdater(a.Segments)
	return a, nil
}

// Handler returns the HTTP API.
func (a *App) Handler() (*echo.Echo, error) {
	return httpapi.New(httpapi.Services{
		Customers:       a.Customers,
		CustomerBatches: a.CustomerBatches,
		Transactions:    a.Transactions,
		Keys:            a.Keys,
		Changes:         a.Changes,
		Idempotency:     a.Idempotency,
		Analytics:       a.Analytics,
		Insights:        a.Insights,
		Segments:        a.Segments,
		Database:        a.DB,
	}, a.rateLimit, a.logger)
}

// Serve answers HTTP on addr until ctx ends, then shuts down gracefully within timeout.
func (a *App) Serve(ctx context.Context, addr string, timeout time.Duration) error {
	handler, err := a.Handler()
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	workCtx, stopWork := context.WithCancel(ctx)
	defer stopWork()
	go a.Analytics.Work(workCtx)
	go a.cleanUp(workCtx, time.Hour)
	errs := make(chan error, 1)
	go func() { errs <- srv.ListenAndServe() }()
	a.logger.Info("serving", "addr", addr)
	select {
	case err := <-errs:
		return fmt.Errorf("serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	a.logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// cleanUp deletes expired idempotency keys and changes older than the change log's retention
// now and then every interval, until ctx ends.
func (a *App) cleanUp(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if n, err := a.Idempotency.PruneIdempotencyKeys(ctx, time.Now()); err != nil {
			a.logger.Error("prune idempotency keys", "error", err)
		} else if n > 0 {
			a.logger.Info("pruned idempotency keys", "deleted", n)
		}
		if n, err := a.Changes.Prune(ctx); err != nil {
			a.logger.Error("prune change log", "error", err)
		} else if n > 0 {
			a.logger.Info("pruned change log", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Close closes the database and stops the private PostgreSQL, if one was started.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.DB != nil {
		errs = append(errs, a.DB.Close())
	}
	if a.embedded != nil {
		errs = append(errs, a.embedded.Stop(ctx))
	}
	return errors.Join(errs...)
}
