//go:build linux || darwin

package pgembed

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDownloadFromMirror runs the embedded-postgres download path against a local Maven
// repository that serves a jar laid out like zonky.io's, whose binaries are small wrappers
// around this machine's PostgreSQL (Maven Central itself is not reachable from CI).
func TestDownloadFromMirror(t *testing.T) {
	requirePostgres(t)
	xz, err := exec.LookPath("xz")
	if err != nil {
		t.Skip("xz not installed: cannot build the test archive")
	}
	// embedded-postgres leaves a log file in the temporary directory; keep it in the test's.
	t.Setenv("TMPDIR", reachableTempDir(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	system, err := probeBinDir(ctx, candidateDirs()[0], nil)
	if err != nil {
		t.Fatal(err)
	}

	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for _, dir := range []string{"bin/", "lib/", "share/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"postgres", "initdb", "pg_ctl"} {
		script := "#!/bin/sh\nexec " + filepath.Join(system.dir, name) + " \"$@\"\n"
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/" + name, Mode: 0o755, Size: int64(len(script))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(script)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	compress := exec.Command(xz, "-c", "-0")
	compress.Stdin = &tarball
	txz, err := compress.Output()
	if err != nil {
		t.Fatal(err)
	}
	var jar bytes.Buffer
	zw := zip.NewWriter(&jar)
	w, err := zw.Create("postgres-linux-x86_64.txz")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(txz); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(jar.Bytes())

	var mu sync.Mutex
	var jarRequests []string
	repo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, ".jar"):
			mu.Lock()
			jarRequests = append(jarRequests, r.URL.Path)
			mu.Unlock()
			_, _ = w.Write(jar.Bytes())
		case strings.HasSuffix(r.URL.Path, ".jar.sha256"):
			_, _ = w.Write([]byte(hex.EncodeToString(sum[:])))
		case r.URL.Path == "/maven2/":
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	}))
	defer repo.Close()

	acct, err := serviceAccount(t.TempDir()) // the account a root process would run PostgreSQL as
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(reachableTempDir(t), "cache")
	opts := Options{DownloadURL: repo.URL + "/maven2", CacheDir: cache}
	began := time.Now()
	b, err := findBinaries(ctx, opts, nil, 0, acct, testLogger())
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	t.Logf("download and unpack took %s", time.Since(began).Round(time.Millisecond))
	if !strings.HasPrefix(b.dir, cache+string(filepath.Separator)) || b.major != system.major {
		t.Errorf("got binaries %+v, want PostgreSQL %d under %s", b, system.major, cache)
	}
	if len(jarRequests) != 1 || !strings.Contains(jarRequests[0], "/io/zonky/test/postgres/embedded-postgres-binaries-") ||
		!strings.HasSuffix(jarRequests[0], "-17.5.0.jar") {
		t.Errorf("jar requests = %v", jarRequests)
	}

	// Cached: no second download.
	if _, err := findBinaries(ctx, opts, nil, 0, acct, testLogger()); err != nil {
		t.Fatal(err)
	}
	if len(jarRequests) != 1 {
		t.Errorf("binaries downloaded again: %v", jarRequests)
	}

	// The downloaded binaries run a server, as the unprivileged account when root.
	s := start(t, Options{DataDir: filepath.Join(reachableTempDir(t), "pg"), BinDir: b.dir, Ephemeral: true})
	connect(t, s.URL("postgres"))
}
