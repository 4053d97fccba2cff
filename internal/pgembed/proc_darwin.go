package pgembed

import (
	"errors"
	"syscall"
)

// serverAttr starts the postmaster in its own process group, so that a Ctrl-C in the terminal
// reaches only Centric, which then stops the server in order. macOS has no parent-death signal:
// there the server outlives Centric if Centric is killed without calling Stop.
func serverAttr(acct *account) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: acct.credential()}
}

// processIsPostmaster reports whether pid is a running process; macOS offers no cheap way to
// tell whether it is PostgreSQL, so any live process counts.
func processIsPostmaster(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
