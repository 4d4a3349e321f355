//go:build linux && (amd64 || arm64)

package sigaction

import (
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelSigaction is the kernel's struct sigaction on amd64 and arm64 (not
// glibc's): handler, flags, restorer, then a 64-bit mask.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

const sigDFL = 0

func swap(sig syscall.Signal, act, old *kernelSigaction) error {
	_, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// raiseHere sends sig to the calling thread, unblocked, so the kernel acts
// on it before the system call returns to this thread.
func raiseHere(sig syscall.Signal) {
	var set, old unix.Sigset_t
	n := uint(sig) - 1
	set.Val[n/64] |= 1 << (n % 64)
	unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, &old) //nolint:errcheck // cannot fail for a valid signal
	unix.Tgkill(unix.Getpid(), unix.Gettid(), sig)    //nolint:errcheck // our own thread exists
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)  //nolint:errcheck // restoring a mask we just read
}

// Stop stops the whole process with sig (SIGTSTP, SIGTTIN, SIGTTOU or
// SIGSTOP) as its default action does, and returns once the process has been
// continued. The disposition the Go runtime had for sig is restored
// afterwards. A process group the kernel considers orphaned is not stopped by
// SIGTSTP, SIGTTIN or SIGTTOU; then Stop returns at once.
func Stop(sig syscall.Signal) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if sig == syscall.SIGSTOP {
		raiseHere(sig)
		return
	}
	var old kernelSigaction
	if err := swap(sig, &kernelSigaction{handler: sigDFL}, &old); err != nil {
		raiseHere(syscall.SIGSTOP)
		return
	}
	// The stop happens as the signal is taken, on the way out of tgkill
	// on this very thread, so the handler is back only after we continue.
	raiseHere(sig)
	swap(sig, &old, nil) //nolint:errcheck // restoring what the kernel just gave us
}

// Die kills the process with sig as its default action does (terminate, or
// terminate with a core dump), without running any handler the Go runtime or
// os/signal installed. It does not return unless sig's default action is
// not to terminate; then it exits 128+sig.
func Die(sig syscall.Signal) {
	runtime.LockOSThread()
	swap(sig, &kernelSigaction{handler: sigDFL}, nil) //nolint:errcheck // then we exit below anyway
	raiseHere(sig)
	// A process-directed copy may still be on its way; give it no chance to
	// matter and end as a shell would report the signal.
	unix.Exit(128 + int(sig))
}
