package pgtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/centric-crm/centric/internal/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func scan[T any](t *testing.T, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func TestDSNsAreMigratedAndIsolated(t *testing.T) {
	ctx := context.Background()
	dsnA, dsnB := pgtest.DSN(t), pgtest.DSN(t)
	if dsnA == dsnB {
		t.Fatalf("two DSN calls returned the same database: %s", dsnA)
	}
	a, b := connect(t, dsnA), connect(t, dsnB)
	if nameA, nameB := scan[string](t, a, "SELECT current_database()"), scan[string](t, b, "SELECT current_database()"); nameA == nameB {
		t.Fatalf("both connections are to %s", nameA)
	}
	for _, conn := range []*pgx.Conn{a, b} {
		if !scan[bool](t, conn, "SELECT to_regclass('public.customers') IS NOT NULL") {
			t.Error("table customers missing: migrations not applied")
		}
		if v := scan[int64](t, conn, "SELECT max(version_id) FROM goose_db_version"); v < 1 {
			t.Errorf("goose version = %d", v)
		}
	}

	if _, err := a.Exec(ctx, "CREATE TABLE isolation_probe (x int); INSERT INTO isolation_probe VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if scan[bool](t, b, "SELECT to_regclass('public.isolation_probe') IS NOT NULL") {
		t.Error("a table created in one test database is visible in another")
	}
	// Changes never reach the template: a later database starts clean.
	c := connect(t, pgtest.DSN(t))
	if scan[bool](t, c, "SELECT to_regclass('public.isolation_probe') IS NOT NULL") {
		t.Error("a later test database contains another test's table")
	}
}

func TestDatabaseIsDroppedWhenTestEnds(t *testing.T) {
	var name string
	t.Run("user", func(t *testing.T) {
		conn := connect(t, pgtest.DSN(t))
		name = scan[string](t, conn, "SELECT current_database()")
		// The connection is deliberately left open: the drop must not depend on the test
		// closing its connections first.
	})
	conn := connect(t, pgtest.DSN(t))
	if scan[bool](t, conn, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name) {
		t.Errorf("database %s still exists after its test ended", name)
	}
}

func TestSequentialDSNTiming(t *testing.T) {
	for range 5 {
		began := time.Now()
		pgtest.DSN(t)
		t.Logf("DSN took %s", time.Since(began).Round(time.Microsecond))
	}
}

func TestParallelDSNs(t *testing.T) {
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			began := time.Now()
			dsn := pgtest.DSN(t)
			t.Logf("DSN took %s", time.Since(began).Round(time.Microsecond))
			conn := connect(t, dsn)
			if _, err := conn.Exec(context.Background(), "CREATE TABLE mine (n int)"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(context.Background(), "INSERT INTO mine VALUES ($1)", i); err != nil {
				t.Fatal(err)
			}
			if n := scan[int](t, conn, "SELECT n FROM mine"); n != i {
				t.Errorf("read %d, want %d", n, i)
			}
		})
	}
}
