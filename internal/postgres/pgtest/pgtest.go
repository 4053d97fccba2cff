// Package pgtest gives database tests a real, isolated PostgreSQL database with all of
// Centric's migrations applied; the database is never mocked.
//
// A package with database tests calls Main from its TestMain, and each test asks DSN for a
// database of its own:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		pool, err := pgxpool.New(ctx, pgtest.DSN(t))
//		...
//	}
//
// The first DSN call in a test binary starts a throwaway PostgreSQL server (package pgembed:
// the machine's PostgreSQL 15+, with durability switched off for speed, in a temporary
// directory, on the memory-backed /dev/shm when it has room), or uses the existing server named by TEST_DATABASE_URL. It then creates a template
// database, applies the migrations to it once, and closes its connections; every DSN call after
// that copies the template (CREATE DATABASE ... TEMPLATE), which takes milliseconds, and drops
// the copy when the test ends. Main stops the server and removes the template when the tests are
// done, so several test binaries can share one TEST_DATABASE_URL concurrently.
//
// When no PostgreSQL can be found or started, database tests are skipped with a message saying
// how to get one, unless the environment variable CI is set: then they fail.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver for the migrations

	"github.com/centric-crm/centric/internal/pgembed"
	"github.com/centric-crm/centric/migrations"
)

const (
	// tempPrefix names the temporary directories of throwaway servers.
	tempPrefix = "centric-pgtest-"
	// ownerFile, in such a directory, holds the pid of the test binary that made it.
	ownerFile = "owner.pid"
)

// harness is the state of one test binary, and this package's only global: the binary starts
// at most one server (on the first DSN call) and Main tears it down after the tests ran.
var harness struct {
	mainCalled atomic.Bool
	once       sync.Once
	env        *env
	err        error
	noServer   bool // err means no PostgreSQL could be found or started (skip, unless CI)
}

// env is what the first DSN call set up.
type env struct {
	baseURL  string        // connection string of the maintenance database
	admin    *pgxpool.Pool // connections to it, for CREATE and DROP DATABASE
	template string        // migrated template database copied by DSN
	server   *pgembed.Server
	tempDir  string // the throwaway server's directory, removed at exit
	shared   bool   // baseURL came from TEST_DATABASE_URL
}

// Main runs the tests of a package that uses DSN and exits with their result. Call it from
// TestMain. After the tests it stops the throwaway server, or drops the template database
// from the TEST_DATABASE_URL server, if DSN started either.
func Main(m *testing.M) {
	harness.mainCalled.Store(true)
	code := m.Run()
	if harness.env != nil {
		if err := harness.env.close(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: tear down: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// DSN returns the connection URL of a new database for this test only, with all migrations
// applied, and drops the database when the test and its subtests end. It is safe to call from
// parallel tests; the test binary's TestMain must call Main.
func DSN(t testing.TB) string {
	t.Helper()
	if !harness.mainCalled.Load() {
		t.Fatal("pgtest: this package's TestMain must call pgtest.Main(m) for pgtest.DSN to work")
	}
	harness.once.Do(func() { harness.env, harness.noServer, harness.err = setup() })
	if err := harness.err; err != nil {
		if harness.noServer {
			const how = "install PostgreSQL 15 or newer (e.g. apt-get install postgresql), point " + pgembed.BinDirEnv +
				" at its bin directory, or set TEST_DATABASE_URL to an existing server"
			if os.Getenv("CI") == "" {
				t.Skipf("pgtest: skipping database test, no PostgreSQL available: %v\nTo run it, %s.", err, how)
			}
			t.Fatalf("pgtest: no PostgreSQL available, and CI is set so this is a failure, not a skip: %v\nTo fix it, %s.", err, how)
		}
		t.Fatalf("pgtest: %v", err)
	}
	e := harness.env

	name := "test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stmt := fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", pgx.Identifier{name}.Sanitize(), pgx.Identifier{e.template}.Sanitize())
	if _, err := e.admin.Exec(ctx, stmt); err != nil {
		t.Fatalf("pgtest: create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop test database %s: %v", name, err)
		}
	})
	dsn, err := withDatabase(e.baseURL, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// setup connects to TEST_DATABASE_URL or starts a throwaway server, then builds the migrated
// template database. noServer reports that the error is the lack of a PostgreSQL server.
func setup() (_ *env, noServer bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	e := &env{}
	defer func() {
		if err != nil {
			if closeErr := e.close(); closeErr != nil {
				err = errors.Join(err, closeErr)
			}
		}
	}()

	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		e.baseURL, e.shared = u, true
	} else if err := e.startServer(ctx); err != nil {
		return nil, true, err
	}
	serverReady := time.Since(began)

	cfg, err := pgxpool.ParseConfig(e.baseURL)
	if err != nil {
		return nil, false, fmt.Errorf("parse TEST_DATABASE_URL: %w", err)
	}
	cfg.MaxConns = 4
	if e.admin, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, false, fmt.Errorf("connect: %w", err)
	}
	if err := e.admin.Ping(ctx); err != nil {
		return nil, false, fmt.Errorf("connect: %w", err)
	}

	// The name is unique per test binary: go test runs packages in parallel, and with
	// TEST_DATABASE_URL they share one server.
	e.template = "centric_template_" + randomHex(6)
	quoted := pgx.Identifier{e.template}.Sanitize()
	if _, err := e.admin.Exec(ctx, "CREATE DATABASE "+quoted); err != nil {
		return nil, false, fmt.Errorf("create template database: %w", err)
	}
	migrateBegan := time.Now()
	if err := migrate(ctx, e.baseURL, e.template); err != nil {
		return nil, false, err
	}
	// No one may connect to the template any more: CREATE DATABASE ... TEMPLATE needs it idle.
	if _, err := e.admin.Exec(ctx, "ALTER DATABASE "+quoted+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return nil, false, fmt.Errorf("seal template database: %w", err)
	}
	if testing.Verbose() {
		where := "TEST_DATABASE_URL"
		if e.server != nil {
			where = fmt.Sprintf("throwaway PostgreSQL %d", e.server.MajorVersion())
		}
		fmt.Fprintf(os.Stderr, "pgtest: %s ready in %s; template %s migrated in %s\n",
			where, serverReady.Round(time.Millisecond), e.template, time.Since(migrateBegan).Round(time.Millisecond))
	}
	return e, false, nil
}

// migrate applies all migrations to the database and closes every connection it opened.
func migrate(ctx context.Context, baseURL, database string) error {
	dsn, err := withDatabase(baseURL, database)
	if err != nil {
		return err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("open template database: %w", err)
	}
	if err := migrations.Up(ctx, db); err != nil {
		db.Close()
		return fmt.Errorf("migrate template database: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close template database: %w", err)
	}
	return nil
}

// startServer starts a throwaway server in a new temporary directory.
func (e *env) startServer(ctx context.Context) error {
	base := memoryTempDir()
	if base == "" {
		base = os.TempDir()
	}
	removeStaleTempDirs(base)
	dir, err := os.MkdirTemp(base, tempPrefix)
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	e.tempDir = dir
	// The server may run as an unprivileged account (when tests run as root): it must be able
	// to pass through this directory, whose name is random and whose listing stays private.
	if err := os.Chmod(dir, 0o711); err != nil {
		return fmt.Errorf("chmod temporary directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", ownerFile, err)
	}
	e.server, err = pgembed.Start(ctx, pgembed.Options{
		DataDir:   filepath.Join(dir, "data"),
		Ephemeral: true,
		BinDir:    os.Getenv(pgembed.BinDirEnv),
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return fmt.Errorf("start throwaway PostgreSQL: %w", err)
	}
	e.baseURL = e.server.URL("postgres")
	return nil
}

// close drops the template from a shared server, or stops the throwaway server and removes
// its files.
func (e *env) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	if e.admin != nil {
		if e.shared && e.template != "" {
			if _, err := e.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{e.template}.Sanitize()+" WITH (FORCE)"); err != nil {
				errs = append(errs, fmt.Errorf("drop template database: %w", err))
			}
		}
		e.admin.Close()
	}
	if e.server != nil {
		if err := e.server.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop PostgreSQL: %w", err))
		}
		// The cluster lives elsewhere only if pgembed had to relocate it (see its package doc).
		if data := e.server.DataDir(); e.tempDir == "" || !strings.HasPrefix(data, e.tempDir+string(filepath.Separator)) {
			if err := os.RemoveAll(data); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if e.tempDir != "" {
		if err := os.RemoveAll(e.tempDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeStaleTempDirs removes the directories of throwaway servers whose test binary died
// without tearing down (killed by a timeout, a panic, or Ctrl-C).
func removeStaleTempDirs(base string) {
	if runtime.GOOS == "windows" {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(base, tempPrefix+"*")) // the pattern is well-formed
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			// Not written yet by a binary starting right now, or never: give it an hour.
			if fi, err := os.Stat(dir); err == nil && time.Since(fi.ModTime()) > time.Hour {
				_ = os.RemoveAll(dir)
			}
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || processAlive(pid) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return !errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone)
}

// withDatabase returns the connection string dsn pointed at another database. Both the URL
// form and the keyword/value form are accepted (in the latter, a later keyword wins).
func withDatabase(dsn, database string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("parse connection URL: %w", err)
		}
		u.Path, u.RawPath = "/"+database, ""
		return u.String(), nil
	}
	return dsn + " dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(database) + "'", nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails
	return hex.EncodeToString(b)
}
