//go:build linux || darwin

package runner

import (
	"syscall"

	"github.com/locked-run/locked-run/internal/sigaction"
)

// stopSelf stops this process with sig, as the signal's default action
// would, and returns once it is continued.
func stopSelf(sig syscall.Signal) { sigaction.Stop(sig) }
