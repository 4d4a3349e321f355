package proctree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// The same reads as on Linux, through sysctl: kern.proc for states and
// pids, kern.procargs2 for a process's environment.

// Process states of struct extern_proc's p_stat, from <sys/proc.h>.
const (
	sStop = 4
	sZomb = 5
)

// State returns a letter like Linux's /proc/PID/stat state ('T' stopped,
// 'Z' zombie, 'R' anything else that runs), or 0 when the process does not
// exist.
func State(pid int) byte {
	kp, err := unix.SysctlKinfoProc("kern.proc.pid", pid)
	if err != nil || kp == nil || int(kp.Proc.P_pid) != pid {
		return 0
	}
	switch kp.Proc.P_stat {
	case sStop:
		return 'T'
	case sZomb:
		return 'Z'
	}
	return 'R'
}

// HasMarker reports whether the environment pid was started with holds the
// entry marker ("NAME=value") exactly. kern.procargs2 is argc, the
// executable path, padding, argc arguments, then the environment, each
// NUL-terminated.
func HasMarker(pid int, marker string) bool {
	if marker == "" {
		return false
	}
	b, err := unix.SysctlRaw("kern.procargs2", pid)
	if err != nil || len(b) < 4 {
		return false
	}
	argc := int(binary.NativeEndian.Uint32(b))
	b = b[4:]
	// The executable path, then NUL padding.
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[i:]
	}
	b = bytes.TrimLeft(b, "\x00")
	m := []byte(marker)
	for n := 0; len(b) > 0; n++ {
		entry, rest, _ := bytes.Cut(b, []byte{0})
		if n >= argc {
			if len(entry) == 0 {
				return false
			}
			if bytes.Equal(entry, m) {
				return true
			}
		}
		b = rest
	}
	return false
}

// All returns every process id.
func All() []int {
	kps, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil
	}
	out := make([]int, 0, len(kps))
	for _, kp := range kps {
		out = append(out, int(kp.Proc.P_pid))
	}
	return out
}

// readDeferred has no signalfd to read from on macOS (kqueue's
// EVFILT_SIGNAL would be the equivalent); the guardian then catches the
// deferred signals like the others, so one that arrives while it starts acts
// on it as on the rest of the group.
func readDeferred(sigs []syscall.Signal, report func(syscall.Signal)) error {
	return errors.New("not on this system")
}

// Anonymous reports whether pid runs with no environment that can be read.
// Not told apart here: every process counts as having one.
func Anonymous(pid int) bool { return false }
