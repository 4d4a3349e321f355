package runner

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file holds what the runner reads from Linux's /proc and the few
// Linux-only calls; a port provides the same functions.

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

// selfExe is how the guardian is started: this very program, even if its
// file was replaced or removed since.
func selfExe() (string, error) { return "/proc/self/exe", nil }
