//go:build !linux && !darwin

package pgembed

import (
	"context"
	"fmt"
	"runtime"
)

// Start is not supported on this operating system: it always fails, telling the caller to use
// an existing server instead.
func Start(ctx context.Context, opts Options) (*Server, error) {
	return nil, fmt.Errorf("a private PostgreSQL is not supported on %s; point Centric at an existing server instead", runtime.GOOS)
}

func (s *Server) kill() { _ = s.cmd.Process.Kill() }
