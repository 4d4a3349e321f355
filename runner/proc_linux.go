package runner

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file holds what the runner reads from Linux's /proc and the few
// Linux-only calls; proc_darwin.go provides the same functions for macOS.

// siginfoChild returns si_pid and si_status of a SIGCHLD siginfo, which
// x/sys/unix leaves in the opaque union. The union starts after the three
// int fields, aligned for a pointer.
func siginfoChild(info *unix.Siginfo) (pid, status int32) {
	align := unsafe.Alignof(uintptr(0))
	off := (3*unsafe.Sizeof(int32(0)) + align - 1) &^ (align - 1)
	base := unsafe.Add(unsafe.Pointer(info), off)
	return *(*int32)(base), *(*int32)(unsafe.Add(base, 8))
}

// Child state codes of waitid's siginfo (si_code), from <signal.h>.
const (
	cldExited  = 1
	cldKilled  = 2
	cldDumped  = 3
	cldStopped = 5
)

// waitChild calls waitid(P_PID, pid) with options and returns the child's
// state code (CLD_*) and status (exit code or signal), or code 0 when
// WNOHANG found nothing. It retries on EINTR.
func waitChild(pid, options int) (code, status int, err error) {
	for {
		var info unix.Siginfo
		err = unix.Waitid(unix.P_PID, pid, &info, options, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		childPid, childStatus := siginfoChild(&info)
		if childPid == 0 {
			return 0, 0, nil
		}
		return int(info.Code), int(childStatus), nil
	}
}

// becomeSubreaper makes this process the reaper of its orphaned
// descendants (PR_SET_CHILD_SUBREAPER): a background job or a daemon that
// double-forked or called setsid is re-parented to us, not to init, so it
// stays in our tree where we can find it and stop it.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// children returns the pids of pid's children, from every thread's
// /proc/PID/task/TID/children (a child belongs to the thread that forked it).
func children(pid int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	tids, _ := d.Readdirnames(-1)
	d.Close()
	var out []int
	for _, tid := range tids {
		b, err := os.ReadFile(dir + "/" + tid + "/children")
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// ownChildren returns this process's children that can belong to the
// tree: those of forker, the thread that forked the child (run keeps it
// locked to its goroutine), and those of the main thread, to which the
// kernel re-parents the tree's orphans (our first living thread, and the
// Go runtime never ends the main one) and the children of threads that
// ended. A child is listed under the thread that forked it, so children
// other threads forked since (the guardian, a helper a library started)
// may be missing: none of them is ever the tree's. Two reads, where
// children(os.Getpid()) reads one file per thread, which on a short run was
// the runner's largest cost.
func ownChildren(forker int) []int {
	self := os.Getpid()
	out := threadChildren(self, self)
	if forker != 0 && forker != self {
		for _, c := range threadChildren(self, forker) {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	return out
}

// threadChildren returns the children that thread tid of process pid
// forked or adopted.
func threadChildren(pid, tid int) []int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/children")
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range bytes.Fields(b) {
		if c, err := strconv.Atoi(string(f)); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// pfExiting is the kernel's PF_EXITING task flag (include/linux/sched.h),
// set as a process starts to exit.
const pfExiting = 0x4

// dying reports whether pid has exited or is exiting: killed, it may keep
// its descriptors open for a moment longer, so a write to it can still
// succeed, but it will never read again.
func dying(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// "pid (comm) state ppid pgrp session tty_nr tpgid flags ..."; comm
	// may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return true
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 7 || f[0][0] == 'Z' || f[0][0] == 'X' || f[0][0] == 'x' {
		return true
	}
	flags, err := strconv.ParseUint(string(f[6]), 10, 64)
	return err != nil || flags&pfExiting != 0
}

// threadID returns the calling thread's id; the caller has locked its
// goroutine to the thread.
func threadID() int { return unix.Gettid() }

// selfExe is how the guardian is started: this very program, even if its
// file was replaced or removed since.
func selfExe() (string, error) { return "/proc/self/exe", nil }

// childSysProcAttr is how the child is started: the kernel SIGKILLs it if
// the thread that forked it dies (parent-death signal; run keeps that
// thread for the child's lifetime).
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// notExecutable reports the exec errors, beyond the POSIX ones classify
// knows, that say the kernel refuses the file: a bad shared library.
func notExecutable(errno syscall.Errno) bool { return errno == syscall.ELIBBAD }

// childWaiter follows the child with waitid: WNOWAIT reports an exit
// without collecting it, so the zombie keeps the child's pid until cmd.Wait.
type childWaiter struct{ pid int }

func newChildWaiter(pid int) (*childWaiter, error) { return &childWaiter{pid: pid}, nil }

func (w *childWaiter) close() {}

// next blocks until the child exits or stops.
func (w *childWaiter) next() (childEvent, error) {
	// WNOWAIT leaves an exit to be collected by cmd.Wait.
	code, _, err := waitChild(w.pid, unix.WEXITED|unix.WSTOPPED|unix.WNOWAIT)
	if err != nil {
		return childEvent{}, err
	}
	switch code {
	case cldExited, cldKilled, cldDumped:
		return childEvent{exited: true}, nil
	}
	// A stop: collect it, so the next waitid reports
	// something new. WEXITED is left out so an exit cannot be taken.
	code, status, err := waitChild(w.pid, unix.WSTOPPED|unix.WNOHANG)
	if err != nil || code != cldStopped {
		return childEvent{}, nil
	}
	return childEvent{stop: syscall.Signal(status)}, nil
}

// startDeferring starts cmd with sigs blocked: a new process inherits the
// signal mask of the thread that forks it, so the mask is set on this
// goroutine's locked thread for the length of the fork.
func startDeferring(cmd *exec.Cmd, sigs []syscall.Signal) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	for _, sig := range sigs {
		n := uint(sig) - 1
		set.Val[n/64] |= 1 << (n % 64)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		return cmd.Start()
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) //nolint:errcheck // restoring a mask we just read
	return cmd.Start()
}
