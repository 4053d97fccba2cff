package pgembed

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// serverAttr starts the postmaster in its own process group, so that a Ctrl-C in the terminal
// reaches only Centric, which then stops the server in order, and asks the kernel to send it
// SIGINT (fast shutdown) if Centric dies without stopping it. The parent-death signal fires when
// the starting OS thread exits, so Start keeps that thread locked until the server exits.
func serverAttr(acct *account) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT, Credential: acct.credential()}
}

// processIsPostmaster reports whether pid is a running PostgreSQL process, rather than nothing
// or an unrelated process that reused the pid of a crashed server (common in containers).
func processIsPostmaster(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) // unreadable: assume the worst
	}
	name := strings.TrimSpace(string(comm))
	return name == "postgres" || name == "postmaster"
}
