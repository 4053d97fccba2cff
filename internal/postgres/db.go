// Package postgres stores Centric's domain in PostgreSQL through GORM, with pgx COPY for bulk
// writes. Its stores implement the crm package's interfaces.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	gormpostgres "gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/centric-crm/centric/internal/crm"
)

// DB is a connection pool to Centric's database.
type DB struct {
	gorm *gorm.DB
	sql  *sql.DB
}

// Options tune the connection pool.
type Options struct {
	MaxConns int
}

// Open connects to the database at url. Every session runs in UTC.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	sqlDB := stdlib.OpenDB(*cfg)
	if opts.MaxConns > 0 {
		sqlDB.SetMaxOpenConns(opts.MaxConns)
		sqlDB.SetMaxIdleConns(opts.MaxConns)
	}
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	g, err := gorm.Open(gormpostgres.New(gormpostgres.Config{Conn: sqlDB}), &gorm.Config{
		SkipDefaultTransaction: true,
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open gorm: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	return &DB{gorm: g, sql: sqlDB}, nil
}

// SQL returns the underlying database/sql pool, for migrations.
func (db *DB) SQL() *sql.DB { return db.sql }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.sql.PingContext(ctx) }

// Close closes the pool.
func (db *DB) Close() error { return db.sql.Close() }

// session returns a fresh GORM session bound to ctx, so no conditions carry over.
func (db *DB) session(ctx context.Context) *gorm.DB {
	return db.gorm.WithContext(ctx).Session(&gorm.Session{})
}

// transact runs fn in a transaction, committing if it returns nil. The change log records the
// transaction's writes as made by ctx's actor.
func (db *DB) transact(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return db.session(ctx).Transaction(func(tx *gorm.DB) error {
		if actor, ok := crm.ActorOf(ctx); ok {
			if err := tx.Exec(setActorSQL, actor.String()).Error; err != nil {
				return fmt.Errorf("set actor: %w", err)
			}
		}
		return fn(tx)
	})
}

// setActorSQL names the API key behind a transaction's writes for the change log's triggers.
const setActorSQL = `SELECT set_config('centric.actor', $1, true)`

// withPgx runs fn in a pgx transaction on one pooled connection, for COPY and batches.
func (db *DB) withPgx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return db.withConn(ctx, func(conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if actor, ok := crm.ActorOf(ctx); ok {
				if _, err := tx.Exec(ctx, setActorSQL, actor.String()); err != nil {
					return fmt.Errorf("set actor: %w", err)
				}
			}
			return fn(tx)
		})
	})
}

// constraintOf returns the name of the constraint a PostgreSQL error violated, if any.
func constraintOf(err error) (code, constraint string) {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code, pgErr.ConstraintName
	}
	return "", ""
}

// withConn runs fn on one pooled connection, for work spanning several transactions or
// holding session-level locks.
func (db *DB) withConn(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(driverConn any) error {
		return fn(driverConn.(*stdlib.Conn).Conn())
	})
}
