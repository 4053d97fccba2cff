//go:build linux || darwin

package pgembed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// hasCluster reports whether dir holds an initialised cluster.
func hasCluster(dir string) (bool, error) {
	_, err := os.Stat(filepath.Join(dir, "PG_VERSION"))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("inspect data directory: %w", err)
	}
}

// isEmptyOrMissing reports whether dir does not exist or is an empty directory.
func isEmptyOrMissing(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect data directory: %w", err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); errors.Is(err, io.EOF) {
		return true, nil
	} else if err != nil {
		return false, fmt.Errorf("inspect data directory: %w", err)
	}
	return false, nil
}

// clusterMajor returns the major version of the cluster in dir, or 0 if there is none.
func clusterMajor(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "PG_VERSION"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read PG_VERSION: %w", err)
	}
	major, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", filepath.Join(dir, "PG_VERSION"), err)
	}
	return major, nil
}

// initCluster runs initdb for a new cluster at dataDir. It initialises a sibling temporary
// directory and renames it into place, so that an interrupted initdb never leaves a half-made
// cluster behind, and stores the superuser's random password in the cluster's PasswordFile.
// socketDir is a private directory of the account's, used to hand initdb the password.
func initCluster(ctx context.Context, b binaries, dataDir, socketDir string, ephemeral bool, acct *account, logger *slog.Logger) error {
	began := time.Now()
	if empty, err := isEmptyOrMissing(dataDir); err != nil {
		return err
	} else if !empty {
		return fmt.Errorf("data directory %s is not empty but holds no PostgreSQL cluster (no PG_VERSION);"+
			" empty it or choose another directory", dataDir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dataDir), "."+filepath.Base(dataDir)+".initdb-")
	if err != nil {
		return fmt.Errorf("create temporary cluster directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := acct.chown(tmp); err != nil {
		return err
	}

	password, err := randomHex(16)
	if err != nil {
		return err
	}
	pwFile := filepath.Join(socketDir, "initdb-password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write initdb password file: %w", err)
	}
	defer os.Remove(pwFile)
	if err := acct.chown(pwFile); err != nil {
		return err
	}

	staged := filepath.Join(tmp, "data")
	args := []string{
		"-D", staged,
		"-U", Superuser,
		"--pwfile=" + pwFile,
		"-E", "UTF8",
		"--locale=C",
		"--auth-host=scram-sha-256",
		"--auth-local=scram-sha-256",
		"--no-instructions",
	}
	if ephemeral {
		args = append(args, "--no-sync")
	}
	cmd := exec.CommandContext(ctx, filepath.Join(b.dir, "initdb"), args...)
	cmd.SysProcAttr = commandAttr(acct)
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb%s: %w\n%s", acct.suffix(), err, lastLines(string(out), 20))
	}

	pwPath := filepath.Join(staged, PasswordFile)
	if err := os.WriteFile(pwPath, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	if err := acct.chown(pwPath); err != nil {
		return err
	}
	if err := os.Remove(dataDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replace empty data directory: %w", err)
	}
	if err := os.Rename(staged, dataDir); err != nil {
		if has, _ := hasCluster(dataDir); has {
			// Another process initialised the same directory at the same time: use its cluster.
			logger.Info("data directory was initialised concurrently; using that cluster", "data_dir", dataDir)
			return nil
		}
		return fmt.Errorf("move new cluster into place: %w", err)
	}
	logger.Info("initialised PostgreSQL cluster", "data_dir", dataDir, "version", b.version,
		"elapsed", time.Since(began).Round(time.Millisecond))
	return nil
}

// readPassword reads the superuser's password from the cluster in dataDir.
func readPassword(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, PasswordFile))
	if err != nil {
		return "", fmt.Errorf("read superuser password (the cluster was not created by Centric, or %s was removed;"+
			" restore it or remove the data directory to start afresh): %w", PasswordFile, err)
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("superuser password file %s is empty", filepath.Join(dataDir, PasswordFile))
	}
	return pw, nil
}

// clearStalePID removes a postmaster.pid left behind by a server that died without cleaning up,
// so that the new server does not mistake an unrelated process that reused the pid for itself.
// It fails if a postmaster is still running on dataDir.
func clearStalePID(dataDir string, logger *slog.Logger) error {
	path := filepath.Join(dataDir, "postmaster.pid")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err == nil && pid > 0 && pid != os.Getpid() && processIsPostmaster(pid) {
		return fmt.Errorf("data directory %s is in use by a running PostgreSQL server (pid %d);"+
			" stop it or use another data directory", dataDir, pid)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale postmaster.pid: %w", err)
	}
	logger.Warn("removed stale postmaster.pid left by a server that did not shut down cleanly", "data_dir", dataDir, "pid", pid)
	return nil
}

// makeSocketDir creates a private directory for the server's Unix socket, owned by the account.
// It lives in the temporary directory because socket paths are limited to about 100 bytes.
func makeSocketDir(acct *account) (string, error) {
	base := os.TempDir()
	if len(base) > 60 || (acct != nil && acct.blockedDir(base) != "") {
		base = "/tmp"
	}
	// A server that was killed leaves its (empty) socket directory behind. os.Remove removes
	// only empty directories, and the grace period spares one that is about to get a socket.
	if old, err := filepath.Glob(filepath.Join(base, "centric-pg-*")); err == nil {
		for _, d := range old {
			if fi, err := os.Lstat(d); err == nil && fi.IsDir() && time.Since(fi.ModTime()) > time.Minute {
				_ = os.Remove(d)
			}
		}
	}
	dir, err := os.MkdirTemp(base, "centric-pg-")
	if err != nil {
		return "", fmt.Errorf("create socket directory: %w", err)
	}
	if err := acct.chown(dir); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random bytes: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// lastLines returns at most the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
