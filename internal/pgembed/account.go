//go:build linux || darwin

package pgembed

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// account is the unprivileged user that runs initdb and postgres when this process is root.
// A nil *account means "run as the current user", which is what happens when not root.
type account struct {
	name     string
	uid, gid uint32
}

// suffix returns " as user NAME" for error messages, or "" for the current user.
func (a *account) suffix() string {
	if a == nil {
		return ""
	}
	return " as user " + a.name
}

// credential returns the credential that drops to the account, with no supplementary groups
// (root's groups must not leak into the server).
func (a *account) credential() *syscall.Credential {
	if a == nil {
		return nil
	}
	return &syscall.Credential{Uid: a.uid, Gid: a.gid, Groups: []uint32{}}
}

// chown gives path to the account; it does nothing when running as the current user.
func (a *account) chown(path string) error {
	if a == nil {
		return nil
	}
	if err := os.Chown(path, int(a.uid), int(a.gid)); err != nil {
		return fmt.Errorf("chown %s to %s: %w", path, a.name, err)
	}
	return nil
}

// serviceAccount chooses who runs PostgreSQL when this process is root: the owner of the
// existing cluster in dataDir, else the "postgres" system user, else "nobody". It returns nil
// when this process is not root.
func serviceAccount(dataDir string) (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		fi, err := os.Stat(dataDir)
		if err != nil {
			return nil, fmt.Errorf("stat data directory: %w", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid == 0 {
			return nil, fmt.Errorf("data directory %s is owned by root, but PostgreSQL refuses to run as root:"+
				" give it to an unprivileged user (e.g. chown -R postgres: %s)", dataDir, dataDir)
		}
		name := "uid " + strconv.FormatUint(uint64(st.Uid), 10)
		if u, err := user.LookupId(strconv.FormatUint(uint64(st.Uid), 10)); err == nil {
			name = u.Username
		}
		return &account{name: name, uid: st.Uid, gid: st.Gid}, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseInt(u.Uid, 10, 64)
		gid, err2 := strconv.ParseInt(u.Gid, 10, 64)
		if err1 != nil || err2 != nil || uid == 0 {
			continue
		}
		return &account{name: name, uid: uint32(uid), gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root, but PostgreSQL refuses root and there is neither a postgres nor a nobody user" +
		" to run it as; create one (e.g. useradd --system postgres)")
}

// searchable reports whether the account may traverse the directory described by fi. Only the
// mode bits are considered (not ACLs), with the account's primary group only, exactly the
// identity the child processes get.
func (a *account) searchable(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == a.uid:
		return perm&0o100 != 0
	case st.Gid == a.gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

// blockedDir returns the first existing directory on the way from / to dir (inclusive) that
// the account cannot traverse, or "" if there is none. dir must be absolute and free of links.
func (a *account) blockedDir(dir string) string {
	p := string(filepath.Separator)
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(dir), p), p)
	for i := 0; ; i++ {
		fi, err := os.Stat(p)
		if err != nil {
			return "" // the rest does not exist yet and will be created searchable
		}
		if !a.searchable(fi) {
			return p
		}
		if i == len(parts) || parts[i] == "" {
			return ""
		}
		p = filepath.Join(p, parts[i])
	}
}

// mkdirAllSearchable creates dir and its missing parents with mode 0755 (regardless of the
// umask), so that an unprivileged account can traverse them. It never changes existing ones.
func mkdirAllSearchable(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAllSearchable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return os.Chmod(dir, 0o755)
}

// placeCluster decides where the cluster for the data directory dataDir (the absolute path
// that was asked for) lives, given resolved, the same path with symbolic links resolved. Missing
// parents are created. When running as root and the account cannot reach it, the cluster is
// created under fallbackDir and dataDir becomes a symbolic link to it: loosening the permissions of
// someone's home directory (chmod o+x /root) would expose more than this one directory.
func placeCluster(dataDir, resolved, fallbackDir string, acct *account, logger *slog.Logger) (string, error) {
	parent := filepath.Dir(resolved)
	if acct == nil {
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return "", fmt.Errorf("create parent of data directory: %w", err)
		}
		return resolved, nil
	}
	if err := mkdirAllSearchable(parent); err != nil {
		return "", fmt.Errorf("create parent of data directory: %w", err)
	}
	blocked := acct.blockedDir(parent)
	if blocked == "" {
		return resolved, nil
	}
	if has, err := hasCluster(resolved); err != nil {
		return "", err
	} else if has {
		return "", fmt.Errorf("data directory %s holds a cluster, but user %s, which must run it, cannot reach it"+
			" (%s is not searchable by it); move the cluster somewhere it can reach and link it", resolved, acct.name, blocked)
	}
	if empty, err := isEmptyOrMissing(resolved); err != nil {
		return "", err
	} else if !empty {
		return "", fmt.Errorf("data directory %s is not empty but holds no PostgreSQL cluster (no PG_VERSION)", resolved)
	}

	sum := sha256.Sum256([]byte(dataDir))
	target := filepath.Join(fallbackDir, filepath.Base(dataDir)+"-"+hex.EncodeToString(sum[:4]))
	if err := mkdirAllSearchable(fallbackDir); err != nil {
		return "", fmt.Errorf("create fallback directory for the cluster: %w", err)
	}
	if b := acct.blockedDir(fallbackDir); b != "" {
		return "", fmt.Errorf("user %s cannot reach data directory %s (%s is not searchable by it), nor the fallback %s (%s is not);"+
			" choose a data directory outside private home directories", acct.name, dataDir, blocked, fallbackDir, b)
	}
	if err := os.Remove(resolved); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("replace empty data directory with a link: %w", err)
	}
	if err := os.Symlink(target, resolved); err != nil {
		return "", fmt.Errorf("link data directory to %s: %w", target, err)
	}
	logger.Info("the PostgreSQL user cannot reach the data directory; keeping the cluster in a reachable place and linking it",
		"user", acct.name, "not_searchable", blocked, "data_dir", dataDir, "cluster", target)
	return target, nil
}

// resolvePath makes p absolute and resolves symbolic links in its existing part. A dangling
// link (say, to a fallback directory that was wiped) resolves to its target, to be recreated.
func resolvePath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	for range 32 {
		resolved, evalErr := filepath.EvalSymlinks(abs)
		if evalErr == nil {
			return resolved, nil
		}
		fi, err := os.Lstat(abs)
		switch {
		case err == nil && fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(abs)
			if err != nil {
				return "", err
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(filepath.Dir(abs), target)
			}
			abs = target
		case err == nil:
			return "", evalErr
		case errors.Is(err, fs.ErrNotExist):
			// abs does not exist: resolve its parent and keep the last element.
			parent, err := resolvePath(filepath.Dir(abs))
			if err != nil {
				return "", err
			}
			return filepath.Join(parent, filepath.Base(abs)), nil
		default:
			return "", err
		}
	}
	return "", fmt.Errorf("too many levels of symbolic links in %s", p)
}

// commandAttr runs a short-lived helper (initdb, postgres --version) as the account.
func commandAttr(acct *account) *syscall.SysProcAttr {
	if acct == nil {
		return nil
	}
	return &syscall.SysProcAttr{Credential: acct.credential()}
}
