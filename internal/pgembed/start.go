//go:build linux || darwin

package pgembed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Start starts a private PostgreSQL server on the cluster in opts.DataDir, creating the cluster
// first if needed, and returns once the server accepts connections. The caller must call Stop.
func Start(ctx context.Context, opts Options) (*Server, error) {
	began := time.Now()
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if opts.DataDir == "" {
		return nil, errors.New("a data directory is required")
	}
	if opts.FallbackDir == "" {
		opts.FallbackDir = defaultFallbackDir
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = defaultStartTimeout
	}

	abs, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	resolved, err := resolvePath(abs)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	acct, err := serviceAccount(resolved)
	if err != nil {
		return nil, err
	}
	dataDir, err := placeCluster(abs, resolved, opts.FallbackDir, acct, logger)
	if err != nil {
		return nil, err
	}
	major, err := clusterMajor(dataDir)
	if err != nil {
		return nil, err
	}
	bins, err := findBinaries(ctx, opts, candidateDirs(), major, acct, logger)
	if err != nil {
		return nil, err
	}
	logger.Debug("using PostgreSQL binaries", "bin_dir", bins.dir, "version", bins.version)

	socketDir, err := makeSocketDir(acct)
	if err != nil {
		return nil, err
	}
	s := &Server{logger: logger, dataDir: dataDir, socketDir: socketDir, major: bins.major}
	ok := false
	defer func() {
		if !ok {
			s.removeSocketDir()
		}
	}()

	if major == 0 {
		if err := initCluster(ctx, bins, dataDir, socketDir, opts.Ephemeral, acct, logger); err != nil {
			return nil, err
		}
	}
	if s.password, err = readPassword(dataDir); err != nil {
		return nil, err
	}
	if err := clearStalePID(dataDir, logger); err != nil {
		return nil, err
	}

	for attempt := 1; ; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		} else if err := checkPortFree(port); err != nil {
			return nil, err
		}
		err := s.launch(ctx, bins, port, opts, acct)
		if err == nil {
			break
		}
		var inUse *portInUseError
		if opts.Port == 0 && attempt < 5 && errors.As(err, &inUse) {
			logger.Debug("port was taken before PostgreSQL could bind it; trying another", "port", port)
			continue
		}
		return nil, err
	}

	if opts.Database != "" {
		if err := s.EnsureDatabase(ctx, opts.Database); err != nil {
			if stopErr := s.Stop(context.WithoutCancel(ctx)); stopErr != nil {
				logger.Warn("stopping PostgreSQL after a failed start", "err", stopErr)
			}
			return nil, err
		}
	}
	ok = true
	user := "current user"
	if acct != nil {
		user = acct.name
	}
	logger.Info("private PostgreSQL ready", "version", bins.version, "port", s.port, "pid", s.cmd.Process.Pid,
		"data_dir", dataDir, "run_as", user, "elapsed", time.Since(began).Round(time.Millisecond))
	return s, nil
}

// launch starts the postmaster on port and waits until it accepts connections.
func (s *Server) launch(ctx context.Context, bins binaries, port int, opts Options, acct *account) error {
	s.port = port
	settings := []string{
		"listen_addresses=127.0.0.1",
		"unix_socket_directories=" + s.socketDir,
		"unix_socket_permissions=0700",
		"TimeZone=UTC",
		"log_timezone=UTC",
		"logging_collector=off",
		"log_destination=stderr",
	}
	if opts.Ephemeral {
		settings = append(settings, "fsync=off", "synchronous_commit=off", "full_page_writes=off")
	}
	args := []string{"-D", s.dataDir, "-p", strconv.Itoa(port)}
	for _, kv := range settings {
		args = append(args, "-c", kv)
	}
	cmd := exec.Command(filepath.Join(bins.dir, "postgres"), args...)
	cmd.Dir = s.dataDir
	cmd.SysProcAttr = serverAttr(acct)
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("create pipe for server log: %w", err)
	}
	cmd.Stdout, cmd.Stderr = w, w

	s.cmd = cmd
	s.done = make(chan struct{})
	s.pumpDone = make(chan struct{})
	s.tail = newLineRing(50)
	started := make(chan error, 1)
	go func() {
		// The parent-death signal (Linux) is tied to the thread that forks the child: keep this
		// goroutine on its thread until the server exits, so the signal fires only if the whole
		// process dies.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	err = <-started
	w.Close()
	if err != nil {
		r.Close()
		return fmt.Errorf("start postgres%s: %w", acct.suffix(), err)
	}
	go s.pump(r)

	if err := s.waitReady(ctx, opts.StartTimeout); err != nil {
		s.kill()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
		return err
	}
	return nil
}

// waitReady polls until the server accepts a connection, exits, or time runs out.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	url := s.URL("postgres")
	for {
		select {
		case <-s.done:
			s.awaitOutput()
			tail := s.tail.String()
			if strings.Contains(tail, "could not bind") || strings.Contains(tail, "Address already in use") {
				return &portInUseError{port: s.port, log: tail}
			}
			return fmt.Errorf("postgres exited during start-up (%v); last server log lines:\n%s", s.waitErr, tail)
		default:
		}
		attemptCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(attemptCtx, url)
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000") {
			return fmt.Errorf("postgres rejected the superuser password stored in %s: %w",
				filepath.Join(s.dataDir, PasswordFile), err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("wait for postgres to start: %w", ctx.Err())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within %s (last error: %v); last server log lines:\n%s",
				timeout, err, s.tail.String())
		}
		select {
		case <-ctx.Done():
		case <-s.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pump forwards the server's output to the logger and keeps its tail for error messages.
func (s *Server) pump(r *os.File) {
	defer close(s.pumpDone)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		s.tail.add(line)
		s.logger.Log(context.Background(), serverLogLevel(line), "postgres", "line", line)
	}
	_, _ = io.Copy(io.Discard, r) // after an over-long line: keep draining so the server never blocks
}

// awaitOutput waits briefly for the last of the server's output after it exited.
func (s *Server) awaitOutput() {
	select {
	case <-s.pumpDone:
	case <-time.After(2 * time.Second):
	}
}

// kill kills the postmaster and any backends left in its process group.
func (s *Server) kill() {
	if err := syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		_ = s.cmd.Process.Kill()
	}
}

// portInUseError reports that the server could not listen on its port.
type portInUseError struct {
	port int
	log  string
}

func (e *portInUseError) Error() string {
	msg := fmt.Sprintf("port %d on 127.0.0.1 is already in use (by another PostgreSQL?); choose another port, or 0 for a free one", e.port)
	if e.log != "" {
		msg += "; last server log lines:\n" + e.log
	}
	return msg
}

// freePort returns a TCP port on 127.0.0.1 that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkPortFree fails with a clear message if port is taken on 127.0.0.1.
func checkPortFree(port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return &portInUseError{port: port}
	}
	return l.Close()
}
