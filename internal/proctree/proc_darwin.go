package proctree

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"os/signal"
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

// Table returns every process, from one kern.proc.all read (sysctl(3):
// KERN_PROC_ALL, an array of struct kinfo_proc).
func Table() []Proc {
	kps, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil
	}
	out := make([]Proc, 0, len(kps))
	for _, kp := range kps {
		st := byte('R')
		switch kp.Proc.P_stat {
		case sStop:
			st = 'T'
		case sZomb:
			st = 'Z'
		}
		out = append(out, Proc{
			Pid:   int(kp.Proc.P_pid),
			Ppid:  int(kp.Eproc.Ppid),
			Pgid:  int(kp.Eproc.Pgid),
			Uid:   kp.Eproc.Ucred.Uid,
			State: st,
		})
	}
	return out
}

// readDeferred reports, from a goroutine, each of sigs sent to the
// guardian, through a kqueue. macOS has no signalfd, and the guardian
// cannot start with sigs blocked (see runner's proc_darwin.go), so they are
// ignored instead: kqueue(2) says EVFILT_SIGNAL "will record all attempts
// to deliver a signal to a process, even if the signal has been marked as
// SIG_IGN", and that it sets EV_CLEAR, so each wake-up is news. The
// filter is registered before the signals are ignored, so none falls in
// between; one that arrives before this runs acts on the guardian as on
// the rest of the group.
func readDeferred(sigs []syscall.Signal, report func(syscall.Signal)) error {
	kq, err := unix.Kqueue()
	if err != nil {
		return err
	}
	unix.CloseOnExec(kq)
	changes := make([]unix.Kevent_t, len(sigs))
	for i, sig := range sigs {
		unix.SetKevent(&changes[i], int(sig), unix.EVFILT_SIGNAL, unix.EV_ADD)
	}
	if _, err := unix.Kevent(kq, changes, nil, nil); err != nil {
		unix.Close(kq)
		return err
	}
	ignore := make([]os.Signal, len(sigs))
	for i, sig := range sigs {
		ignore[i] = sig
	}
	signal.Ignore(ignore...)
	go func() {
		events := make([]unix.Kevent_t, len(sigs))
		for {
			n, err := unix.Kevent(kq, nil, events, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return
			}
			// Data counts the attempts since the last read; they are
			// reported as one, as a pending signal is on Linux (and as
			// locked-run's own copies coalesce).
			for _, ev := range events[:n] {
				report(syscall.Signal(ev.Ident))
			}
		}
	}()
	return nil
}

// Anonymous reports whether pid runs with no environment that can be read.
// Not told apart here: every process counts as having one.
func Anonymous(pid int) bool { return false }
