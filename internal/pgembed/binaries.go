//go:build linux || darwin

package pgembed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// binaries is a directory holding a usable postgres and initdb.
type binaries struct {
	dir     string // symbolic links resolved
	major   int    // e.g. 15
	version string // e.g. "15.18"
}

// findBinaries picks the PostgreSQL installation to run: opts.BinDir if set, else the first
// usable one of candidates, else a download. want is the major version of an existing cluster
// (0 for a new one): only that version can open it.
func findBinaries(ctx context.Context, opts Options, candidates []string, want int, acct *account, logger *slog.Logger) (binaries, error) {
	if opts.BinDir != "" {
		b, err := probeBinDir(ctx, opts.BinDir, acct)
		if err != nil {
			return binaries{}, fmt.Errorf("PostgreSQL bin directory %s: %w", opts.BinDir, err)
		}
		if err := checkMajor(b, want); err != nil {
			return binaries{}, err
		}
		return b, nil
	}

	nf := &NotFoundError{}
	var other []binaries // usable, but not the version the existing cluster needs
	for _, dir := range candidates {
		nf.Searched = append(nf.Searched, dir)
		b, err := probeBinDir(ctx, dir, acct)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				nf.Rejected = append(nf.Rejected, fmt.Sprintf("%s: %v", dir, err))
			}
			logger.Debug("skipping PostgreSQL candidate", "dir", dir, "err", err)
			continue
		}
		if b.major < MinMajorVersion {
			nf.Rejected = append(nf.Rejected, fmt.Sprintf("%s is PostgreSQL %s", dir, b.version))
			continue
		}
		if want == 0 || b.major == want {
			return b, nil
		}
		other = append(other, b)
	}

	if !opts.DisableDownload {
		b, err := download(ctx, opts, want, acct, logger)
		if err == nil {
			return b, nil
		}
		nf.Download = err
	}
	if len(other) > 0 {
		var found []string
		for _, b := range other {
			found = append(found, fmt.Sprintf("%s (PostgreSQL %s)", b.dir, b.version))
		}
		msg := fmt.Sprintf("the data directory holds a PostgreSQL %d cluster but only %s were found; install PostgreSQL %d"+
			" and point %s at its bin directory, or upgrade the cluster with pg_upgrade", want, strings.Join(found, ", "), want, BinDirEnv)
		if nf.Download != nil {
			return binaries{}, fmt.Errorf("%s (download of PostgreSQL %d failed: %w)", msg, want, nf.Download)
		}
		return binaries{}, errors.New(msg)
	}
	return binaries{}, nf
}

func checkMajor(b binaries, want int) error {
	if b.major < MinMajorVersion {
		return fmt.Errorf("%s holds PostgreSQL %s; version %d or newer is required", b.dir, b.version, MinMajorVersion)
	}
	if want != 0 && b.major != want {
		return fmt.Errorf("the data directory holds a PostgreSQL %d cluster but %s holds PostgreSQL %s;"+
			" use PostgreSQL %d binaries or upgrade the cluster with pg_upgrade", want, b.dir, b.version, want)
	}
	return nil
}

// candidateDirs lists the existing directories to look for binaries in, in order of preference:
// the directory of postgres on PATH, then the standard locations, highest version first.
func candidateDirs() []string {
	var dirs []string
	seen := map[string]bool{}
	add := func(dir string) {
		resolved, err := filepath.EvalSymlinks(dir)
		if err != nil || seen[resolved] {
			return
		}
		seen[resolved] = true
		dirs = append(dirs, resolved)
	}
	if p, err := exec.LookPath("postgres"); err == nil {
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			add(filepath.Dir(resolved))
		}
	}
	for _, pattern := range standardLocations() {
		matches, _ := filepath.Glob(pattern) // the only error is a malformed pattern
		sortByVersionDesc(matches)
		for _, m := range matches {
			add(m)
		}
	}
	return dirs
}

// sortByVersionDesc orders paths that differ in a version number, highest first.
func sortByVersionDesc(paths []string) {
	key := func(p string) []int {
		var nums []int
		for _, f := range strings.FieldsFunc(p, func(r rune) bool { return r < '0' || r > '9' }) {
			n, _ := strconv.Atoi(f)
			nums = append(nums, n)
		}
		return nums
	}
	sort.SliceStable(paths, func(i, j int) bool {
		a, b := key(paths[i]), key(paths[j])
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return a[k] > b[k]
			}
		}
		return len(a) > len(b)
	})
}

// probeBinDir checks that dir holds postgres and initdb and asks postgres for its version, as the
// account that will run it (which also proves that account can execute it).
func probeBinDir(ctx context.Context, dir string, acct *account) (binaries, error) {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return binaries{}, err
	}
	for _, name := range []string{"postgres", "initdb"} {
		fi, err := os.Stat(filepath.Join(resolved, name))
		if err != nil {
			return binaries{}, err
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return binaries{}, fmt.Errorf("%s is not an executable file", filepath.Join(resolved, name))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(resolved, "postgres"), "--version")
	cmd.SysProcAttr = commandAttr(acct)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		return binaries{}, fmt.Errorf("run postgres --version%s: %w: %s", acct.suffix(), err, strings.TrimSpace(string(out)))
	}
	version, major, err := parseVersion(string(out))
	if err != nil {
		return binaries{}, err
	}
	return binaries{dir: resolved, major: major, version: version}, nil
}

// parseVersion reads the output of postgres --version, e.g.
// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)" or "postgres (PostgreSQL) 18beta1".
func parseVersion(out string) (version string, major int, err error) {
	const marker = "(PostgreSQL) "
	i := strings.Index(out, marker)
	if i < 0 {
		return "", 0, fmt.Errorf("unrecognised postgres --version output %q", strings.TrimSpace(out))
	}
	fields := strings.Fields(out[i+len(marker):])
	if len(fields) == 0 {
		return "", 0, fmt.Errorf("unrecognised postgres --version output %q", strings.TrimSpace(out))
	}
	version = fields[0]
	end := strings.IndexFunc(version, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(version)
	}
	major, err = strconv.Atoi(version[:end])
	if err != nil {
		return "", 0, fmt.Errorf("unrecognised postgres --version output %q", strings.TrimSpace(out))
	}
	return version, major, nil
}
