package runner

import (
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// controllingTerminal returns the descriptor of the first of files that is
// this process's controlling terminal, or -1 when none is (no terminal at
// all, or a terminal that belongs to another session, as in cron or CI).
// TIOCGPGRP succeeds only on our own controlling terminal, so it answers
// both "is it a terminal" and "is it ours".
func controllingTerminal(files ...*os.File) int {
	for _, f := range files {
		fd := int(f.Fd())
		if _, err := foreground(fd); err == nil {
			return fd
		}
	}
	return -1
}

// foreground returns the terminal's foreground process group (tcgetpgrp).
func foreground(fd int) (int, error) {
	var pgrp int32
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.TIOCGPGRP), uintptr(unsafe.Pointer(&pgrp)))
	if errno != 0 {
		return 0, errno
	}
	return int(pgrp), nil
}

// setForeground makes pgrp the terminal's foreground process group
// (tcsetpgrp).
//
// When the caller is not in the foreground group, the kernel answers
// tcsetpgrp by stopping the caller's whole group with SIGTTOU, unless the
// calling thread ignores or blocks SIGTTOU. Taking the terminal back after
// the child exits is exactly that case, so SIGTTOU must not stop us. We block
// it on this OS thread for the length of the call rather than
// signal.Ignore it: an ignored disposition is process-wide and is inherited
// by any child forked meanwhile, which would then never stop on SIGTTOU,
// while a blocked mask on one locked thread is seen by no one else (Go's fork
// restores the thread's original mask in the child anyway).
func setForeground(fd, pgrp int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var ttou, old unix.Sigset_t
	sigaddset(&ttou, unix.SIGTTOU)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &ttou, &old); err != nil {
		return err
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) //nolint:errcheck // restoring a mask we just read cannot fail
	p := int32(pgrp)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.TIOCSPGRP), uintptr(unsafe.Pointer(&p)))
	if errno != 0 {
		return errno
	}
	return nil
}

func sigaddset(set *unix.Sigset_t, sig syscall.Signal) {
	bits := uint(unsafe.Sizeof(set.Val[0]) * 8)
	n := uint(sig) - 1
	set.Val[n/bits] |= 1 << (n % bits)
}

// canStopForShell reports whether stopping this process would be seen by a
// job-control shell, that is, whether our process group is not orphaned: our
// parent is in another group of the same session. The kernel discards
// SIGTSTP, SIGTTIN and SIGTTOU for orphaned groups, and in one nobody would
// continue us anyway.
func canStopForShell() bool {
	ppid := os.Getppid()
	ppgid, err := unix.Getpgid(ppid)
	if err != nil || ppgid == unix.Getpgrp() {
		return false
	}
	psid, err := unix.Getsid(ppid)
	if err != nil {
		return false
	}
	sid, err := unix.Getsid(0)
	return err == nil && psid == sid
}
