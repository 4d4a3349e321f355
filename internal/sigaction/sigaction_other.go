//go:build darwin || (linux && !amd64 && !arm64)

package sigaction

import (
	"os"
	"os/signal"
	"syscall"
)

// Stop stops the process with SIGSTOP: without the raw system call this
// platform port lacks, the runtime's handler would catch sig.
func Stop(sig syscall.Signal) {
	syscall.Kill(os.Getpid(), syscall.SIGSTOP) //nolint:errcheck // our own pid exists
}

// Die resets sig to the runtime's default and raises it; for signals the
// runtime dumps goroutines on (SIGQUIT) it exits 128+sig instead.
func Die(sig syscall.Signal) {
	if sig != syscall.SIGQUIT && sig != syscall.SIGABRT {
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig) //nolint:errcheck // our own pid exists
	}
	os.Exit(128 + int(sig))
}
