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
	DB           *postgres.DB
	Customers    *crm.CustomerService
	Transactions *crm.TransactionService
	Keys         *crm.KeyService
	Analytics    *analytics.Service
	Insights     *analytics.Insights
	Segments     *crm.SegmentService

	logger   *slog.Logger
	embedded *pgembed.Server
}

// Open connects to cfg.DatabaseURL, or starts the private PostgreSQL in cfg.DataDir, and
// applies the migrations.
func Open(ctx context.Context, cfg config.Config, logger *slog.Logger) (*App, error) {
	a := &App{logger: logger}
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
	a.Analytics = analytics.NewService(postgres.NewAnalyticsStore(db), logger, time.Now, cfg.RefitInterval)
	a.Insights = analytics.NewInsights(postgres.NewInsightStore(db), time.Now)
	a.Customers = crm.NewCustomerService(customers, validator, time.Now)
	a.Transactions = crm.NewTransactionService(postgres.NewTransactionStore(db), customers, a.Analytics, validator, time.Now)
	a.Keys = crm.NewKeyService(postgres.NewAPIKeyStore(db), time.Now)
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
		Customers:    a.Customers,
		Transactions: a.Transactions,
		Keys:         a.Keys,
		Analytics:    a.Analytics,
		Insights:     a.Insights,
		Segments:     a.Segments,
		Database:     a.DB,
	}, a.logger)
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
