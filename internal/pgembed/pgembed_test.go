//go:build linux || darwin

package pgembed

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testLogger shows the package's logs with go test -v and hides them otherwise.
func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

// reachableTempDir returns a fresh temporary directory that any account can traverse, as the
// unprivileged one must when the tests run as root (t.TempDir makes its parent mode 0700).
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// requirePostgres skips the test when this machine has no PostgreSQL installation to run,
// unless CI is set, where that is a failure.
func requirePostgres(t *testing.T) {
	t.Helper()
	if len(candidateDirs()) == 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("no PostgreSQL installation found; CI must install PostgreSQL 15+")
		}
		t.Skip("no PostgreSQL installation found; install PostgreSQL 15+ to run this test")
	}
}

// start starts a server and stops it when the test ends.
func start(t *testing.T, opts Options) *Server {
	t.Helper()
	requirePostgres(t)
	if opts.Logger == nil {
		opts.Logger = testLogger()
	}
	opts.DisableDownload = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %s", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func queryString(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	var s string
	if err := conn.QueryRow(context.Background(), sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

func TestStartRestartKeepsDataAndStop(t *testing.T) {
	ctx := context.Background()
	dataDir := filepath.Join(reachableTempDir(t), "nested", "pgdata")
	s := start(t, Options{DataDir: dataDir, Database: "app"})

	conn := connect(t, s.URL("app"))
	for sql, want := range map[string]string{
		"SHOW TimeZone":         "UTC",
		"SHOW log_timezone":     "UTC",
		"SHOW listen_addresses": "127.0.0.1",
		"SHOW fsync":            "on",
		"SELECT current_user":   Superuser,
		"SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'app'": "UTF8",
		"SELECT datcollate FROM pg_database WHERE datname = 'app'":                    "C",
	} {
		if got := queryString(t, conn, sql); got != want {
			t.Errorf("%s = %q, want %q", sql, got, want)
		}
	}
	if got, _ := strconv.Atoi(queryString(t, conn, "SHOW server_version_num")); got < MinMajorVersion*10000 || got/10000 != s.MajorVersion() {
		t.Errorf("server_version_num = %d, MajorVersion() = %d", got, s.MajorVersion())
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('survives restarts')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	// The password is secret: a wrong one is rejected, the file is private.
	wrong := strings.Replace(s.URL("app"), s.password, "wrong", 1)
	if c, err := pgx.Connect(ctx, wrong); err == nil {
		c.Close(ctx)
		t.Error("connected with a wrong password")
	}
	fi, err := os.Stat(filepath.Join(s.DataDir(), PasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode = %v, want 0600", fi.Mode().Perm())
	}
	if os.Geteuid() == 0 {
		checkRunsUnprivileged(t, s)
	}

	pid := s.cmd.Process.Pid
	socketDir := s.socketDir
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-s.Done():
	default:
		t.Error("Done not closed after Stop")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("postmaster %d still exists after Stop (kill: %v)", pid, err)
	}
	if _, err := os.Stat(socketDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket directory %s not removed: %v", socketDir, err)
	}
	if _, err := os.Stat(filepath.Join(s.DataDir(), "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid left after a clean stop: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}

	s2 := start(t, Options{DataDir: dataDir, Database: "app"})
	if s2.password != s.password {
		t.Error("password changed across restarts")
	}
	conn2 := connect(t, s2.URL("app"))
	if got := queryString(t, conn2, "SELECT v FROM kept"); got != "survives restarts" {
		t.Errorf("after restart: %q", got)
	}
}

// checkRunsUnprivileged verifies the privilege drop: the server and its files belong to the
// unprivileged account, not root.
func checkRunsUnprivileged(t *testing.T, s *Server) {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 3 && (f[0] == "Uid:" || f[0] == "Gid:" || f[0] == "Groups:") {
			for _, id := range f[1:] {
				if id == "0" {
					t.Errorf("postmaster runs with root ids: %s", line)
				}
			}
		}
	}
	fi, err := os.Stat(s.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid == 0 {
		t.Error("data directory is owned by root")
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode = %v, want 0700", fi.Mode().Perm())
	}
}

func TestEphemeralSettingsAndEnsureDatabase(t *testing.T) {
	s := start(t, Options{DataDir: filepath.Join(reachableTempDir(t), "pg"), Ephemeral: true})
	conn := connect(t, s.URL("postgres"))
	for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		if got := queryString(t, conn, "SHOW "+name); got != "off" {
			t.Errorf("%s = %q, want off", name, got)
		}
	}
	for range 2 { // idempotent
		if err := s.EnsureDatabase(context.Background(), `odd "name"`); err != nil {
			t.Fatal(err)
		}
	}
	connect(t, s.URL(`odd "name"`))
}

func TestStalePIDFileIsRemoved(t *testing.T) {
	dataDir := filepath.Join(reachableTempDir(t), "pg")
	s := start(t, Options{DataDir: dataDir, Ephemeral: true})
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A crash leaves postmaster.pid behind; after a reboot or in a container its pid may be
	// free, or taken by an unrelated process. Both must be recognised as stale.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	for name, pid := range map[string]int{"unrelated process": sleeper.Process.Pid, "no process": exited.Process.Pid} {
		if name == "unrelated process" && runtime.GOOS == "darwin" {
			continue // macOS cannot tell postgres from other processes
		}
		t.Run(name, func(t *testing.T) {
			content := strconv.Itoa(pid) + "\n" + s.DataDir() + "\n1700000000\n5432\n"
			if err := os.WriteFile(filepath.Join(s.DataDir(), "postmaster.pid"), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			s := start(t, Options{DataDir: dataDir, Ephemeral: true})
			if err := s.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDataDirInUse(t *testing.T) {
	dataDir := filepath.Join(reachableTempDir(t), "pg")
	start(t, Options{DataDir: dataDir, Ephemeral: true})
	_, err := Start(context.Background(), Options{DataDir: dataDir, Logger: testLogger(), DisableDownload: true})
	if err == nil || !strings.Contains(err.Error(), "in use by a running PostgreSQL") {
		t.Fatalf("second Start on the same data directory: %v", err)
	}
}

func TestPortInUse(t *testing.T) {
	requirePostgres(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = Start(context.Background(), Options{
		DataDir: filepath.Join(reachableTempDir(t), "pg"), Port: port, Ephemeral: true,
		Logger: testLogger(), DisableDownload: true,
	})
	if err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(port)+" on 127.0.0.1 is already in use") {
		t.Fatalf("Start on a taken port: %v", err)
	}
}

func TestFixedPort(t *testing.T) {
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, Options{DataDir: filepath.Join(reachableTempDir(t), "pg"), Port: port, Ephemeral: true})
	if s.Port() != port || !strings.Contains(s.URL("x"), ":"+strconv.Itoa(port)+"/x?") {
		t.Errorf("Port() = %d, URL = %s, want port %d", s.Port(), s.URL("x"), port)
	}
}

// TestRootRelocatesUnreachableDataDir covers running as root with the data directory under a
// directory the unprivileged account cannot enter (like /root).
func TestRootRelocatesUnreachableDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only relevant when running as root")
	}
	private := t.TempDir() // mode 0700, owned by root
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	fallback := filepath.Join(reachableTempDir(t), "fallback")
	dataDir := filepath.Join(private, "home", "pgdata")
	s := start(t, Options{DataDir: dataDir, FallbackDir: fallback, Ephemeral: true, Database: "app"})

	target, err := os.Readlink(dataDir)
	if err != nil {
		t.Fatalf("data directory is not a link to the relocated cluster: %v", err)
	}
	if target != s.DataDir() || filepath.Dir(target) != fallback {
		t.Errorf("link points to %s; DataDir() = %s; fallback %s", target, s.DataDir(), fallback)
	}
	fi, err := os.Stat(private)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("permissions of the private directory changed to %v", fi.Mode().Perm())
	}
	conn := connect(t, s.URL("app"))
	if _, err := conn.Exec(context.Background(), "CREATE TABLE t (x int)"); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	s2 := start(t, Options{DataDir: dataDir, FallbackDir: fallback, Ephemeral: true})
	if s2.DataDir() != s.DataDir() {
		t.Errorf("restart used %s, first start %s", s2.DataDir(), s.DataDir())
	}
	if got := queryString(t, connect(t, s2.URL("app")), "SELECT to_regclass('t')::text"); got != "t" {
		t.Errorf("table lost across restart: %q", got)
	}
}

func TestNonEmptyDataDirWithoutCluster(t *testing.T) {
	requirePostgres(t)
	dataDir := filepath.Join(reachableTempDir(t), "pg")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, "precious.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{DataDir: dataDir, Logger: testLogger(), DisableDownload: true})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Start on a non-empty directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "precious.txt")); err != nil {
		t.Errorf("existing file touched: %v", err)
	}
}

func TestBinDirOverride(t *testing.T) {
	requirePostgres(t)
	_, err := findBinaries(context.Background(), Options{BinDir: t.TempDir()}, candidateDirs(), 0, nil, testLogger())
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL bin directory") {
		t.Fatalf("empty BinDir: %v", err)
	}
	dir := candidateDirs()[0]
	b, err := findBinaries(context.Background(), Options{BinDir: dir}, nil, 0, nil, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if b.major < MinMajorVersion {
		t.Errorf("major = %d", b.major)
	}
	if _, err := findBinaries(context.Background(), Options{BinDir: dir}, nil, b.major+1, nil, testLogger()); err == nil ||
		!strings.Contains(err.Error(), "pg_upgrade") {
		t.Errorf("version mismatch with the cluster: %v", err)
	}
}

func TestNotFoundErrorIsActionable(t *testing.T) {
	opts := Options{DownloadURL: "http://127.0.0.1:1/maven2", CacheDir: filepath.Join(reachableTempDir(t), "cache")}
	_, err := findBinaries(context.Background(), opts, nil, 0, nil, testLogger())
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("want *NotFoundError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{"no PostgreSQL 15+ binaries found in PATH", "/usr/lib/postgresql/*/bin",
		"install PostgreSQL 15 or newer", BinDirEnv, "cannot reach http://127.0.0.1:1/maven2"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}

	opts.DisableDownload = true
	_, err = findBinaries(context.Background(), opts, nil, 0, nil, testLogger())
	if !errors.As(err, &nf) || !strings.Contains(err.Error(), "downloading them is disabled") {
		t.Errorf("download disabled: %v", err)
	}
}

func TestParseVersion(t *testing.T) {
	for out, want := range map[string]int{
		"postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n": 15,
		"postgres (PostgreSQL) 17.5\n":                           17,
		"postgres (PostgreSQL) 18beta1\n":                        18,
		"postgres (PostgreSQL) 9.6.24\n":                         9,
	} {
		_, major, err := parseVersion(out)
		if err != nil || major != want {
			t.Errorf("parseVersion(%q) = %d, %v; want %d", out, major, err, want)
		}
	}
	for _, bad := range []string{"", "postgres (PostgreSQL) ", "bash: postgres: command not found"} {
		if _, _, err := parseVersion(bad); err == nil {
			t.Errorf("parseVersion(%q) succeeded", bad)
		}
	}
}

func TestSortByVersionDesc(t *testing.T) {
	got := []string{"/usr/lib/postgresql/9.6/bin", "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin"}
	sortByVersionDesc(got)
	want := "/usr/lib/postgresql/17/bin /usr/lib/postgresql/16/bin /usr/lib/postgresql/15/bin /usr/lib/postgresql/9.6/bin"
	if strings.Join(got, " ") != want {
		t.Errorf("got %v", got)
	}
}

func TestBlockedDir(t *testing.T) {
	acct := &account{name: "someone", uid: 54321, gid: 54321}
	base := reachableTempDir(t)
	if b := acct.blockedDir(filepath.Join(base, "missing", "deeper")); b != "" {
		t.Errorf("missing directories reported blocked at %s", b)
	}
	private := filepath.Join(base, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if b := acct.blockedDir(filepath.Join(private, "x")); b != private {
		t.Errorf("blockedDir = %q, want %q", b, private)
	}
	if err := os.Chmod(private, 0o711); err != nil {
		t.Fatal(err)
	}
	if b := acct.blockedDir(filepath.Join(private, "x")); b != "" {
		t.Errorf("search permission for others ignored: blocked at %s", b)
	}
}

func TestLineRing(t *testing.T) {
	r := newLineRing(3)
	for _, l := range []string{"a", "b", "c", "d", "e"} {
		r.add(l)
	}
	if got := r.String(); got != "c\nd\ne" {
		t.Errorf("tail = %q", got)
	}
}

func TestDoneAndRestartAfterCrash(t *testing.T) {
	requirePostgres(t)
	dataDir := filepath.Join(reachableTempDir(t), "pg")
	s, err := Start(context.Background(), Options{DataDir: dataDir, Logger: testLogger(), DisableDownload: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	conn := connect(t, s.URL("postgres"))
	if _, err := conn.Exec(context.Background(), "CREATE TABLE committed (x int)"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the server died")
	}
	if err := s.Stop(context.Background()); err == nil || !strings.Contains(err.Error(), "already exited") {
		t.Errorf("Stop after a crash: %v", err)
	}

	// The crash left postmaster.pid behind; the next start removes it and recovers.
	s2 := start(t, Options{DataDir: dataDir})
	if got := queryString(t, connect(t, s2.URL("postgres")), "SELECT to_regclass('committed')::text"); got != "committed" {
		t.Errorf("committed table lost in the crash: %q", got)
	}
}
