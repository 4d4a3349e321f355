package runner

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/locked-run/locked-run/internal/proctree"
)

// The macOS counterparts of proc_linux.go. macOS has no waitid with
// WNOWAIT in x/sys/unix, no parent-death signal, no subreaper, no signalfd
// and no pthread_sigmask without cgo; what replaces each is said where it
// is used, with the man page behaviour it relies on. None of this is run
// by the tests (nothing here runs macOS): it is compiled and vetted for
// darwin/amd64 and darwin/arm64 by `make cross`.

// childSysProcAttr: macOS has no parent-death signal. If locked-run dies
// without cleaning up, the guardian, which reads the end of file of a pipe
// only locked-run held, SIGKILLs the child (internal/proctree's
// killMarked), then everything carrying the marker.
func childSysProcAttr() *syscall.SysProcAttr { return nil }

// notExecutable reports macOS's own exec errors (execve(2)): a file for
// another CPU (EBADARCH), a malformed executable (EBADEXEC, EBADMACHO).
func notExecutable(errno syscall.Errno) bool {
	return errno == syscall.EBADARCH || errno == syscall.EBADEXEC || errno == syscall.EBADMACHO
}

// becomeSubreaper: macOS has none; an orphan goes to launchd, and
// members (tree_darwin.go) finds it by the marker or its process group.
func becomeSubreaper() error { return errors.New("macOS has no subreaper") }

// children returns the pids of pid's children, from one kern.proc.all read
// (sysctl(3); e_ppid of struct kinfo_proc).
func children(pid int) []int {
	var out []int
	for _, pr := range proctree.Table() {
		if pr.Ppid == pid && pr.Pid != pid {
			out = append(out, pr.Pid)
		}
	}
	return out
}

// ownChildren returns this process's children (macOS has no threads'
// children lists to pick from).
func ownChildren(int) []int { return children(os.Getpid()) }

// dying reports whether pid has exited (or is a zombie).
func dying(pid int) bool {
	st := proctree.State(pid)
	return st == 0 || st == 'Z'
}

// threadID is zero on macOS, where ownChildren needs no thread.
func threadID() int { return 0 }

// selfExe is how the guardian is started: this program's path as the
// kernel gave it at exec (os.Executable). Unlike Linux's /proc/self/exe it
// names the file, so a binary replaced during the run starts the new one
// as the guardian.
func selfExe() (string, error) { return os.Executable() }

// startDeferring starts cmd. The guardian cannot be started with sigs
// blocked: without cgo, x/sys/unix has no pthread_sigmask for darwin (the
// mask is per thread, sigprocmask(2)), so the guardian ignores them from
// its init on and reads them from a kqueue (proctree's readDeferred). One
// that reaches the group in the few milliseconds before that acts on the
// guardian (SIGTSTP stops it until the job's fg, SIGUSR1 kills it, which
// its exit status reports).
func startDeferring(cmd *exec.Cmd, _ []syscall.Signal) error { return cmd.Start() }

// childWaiter follows the child with a kqueue, because macOS waitid(2) is
// not in x/sys/unix and wait4(2) cannot leave an exit uncollected:
//
//   - EVFILT_PROC with NOTE_EXIT on the child's pid: kqueue(2) "returns
//     when the process performs one or more of the requested events";
//     NOTE_EXIT, "the process has exited". It reports the exit without
//     reaping, so the zombie keeps the pid until cmd.Wait, as WNOWAIT does
//     on Linux.
//   - EVFILT_SIGNAL on SIGCHLD, which the kernel sends the parent when a
//     child stops (sigaction(2): unless SA_NOCLDSTOP, which Go does not
//     set); the filter coexists with Go's handler. A stop is then
//     collected with wait4(pid, WUNTRACED|WNOHANG) (wait(2): with
//     WUNTRACED, children "stopped due to a SIGTTIN, SIGTTOU, SIGTSTP, or
//     SIGSTOP signal also have their status reported"; WNOHANG does not
//     block), called only while kern.proc says
//     the child is stopped (SSTOP), so that it does not collect an exit.
//     Should the child die in the microseconds between the two, wait4 takes
//     the exit, and its status is returned in childEvent.reaped.
//   - A timeout of waiterPoll, so that nothing depends on a SIGCHLD not
//     being lost.
type childWaiter struct {
	pid    int
	kq     int
	exited bool // registering NOTE_EXIT found the child gone already
}

// waiterPoll bounds how long a stop may go unnoticed if a SIGCHLD is
// missed.
const waiterPoll = 250 * time.Millisecond

func newChildWaiter(pid int) (*childWaiter, error) {
	kq, err := unix.Kqueue()
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(kq)
	w := &childWaiter{pid: pid, kq: kq}
	var ev [1]unix.Kevent_t
	unix.SetKevent(&ev[0], int(syscall.SIGCHLD), unix.EVFILT_SIGNAL, unix.EV_ADD)
	if _, err := unix.Kevent(kq, ev[:], nil, nil); err != nil {
		unix.Close(kq)
		return nil, err
	}
	unix.SetKevent(&ev[0], pid, unix.EVFILT_PROC, unix.EV_ADD|unix.EV_ONESHOT)
	ev[0].Fflags = unix.NOTE_EXIT
	if _, err := unix.Kevent(kq, ev[:], nil, nil); err != nil {
		// ESRCH, "the specified process to attach to does not exist"
		// (kevent(2)): the child exited before we looked. It is our
		// unreaped child, so nobody else can have collected it.
		if !errors.Is(err, unix.ESRCH) {
			unix.Close(kq)
			return nil, err
		}
		w.exited = true
	}
	return w, nil
}

func (w *childWaiter) close() { unix.Close(w.kq) }

// next blocks until the child exits or stops.
func (w *childWaiter) next() (childEvent, error) {
	events := make([]unix.Kevent_t, 4)
	timeout := unix.NsecToTimespec(int64(waiterPoll))
	for !w.exited {
		n, err := unix.Kevent(w.kq, nil, events, &timeout)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return childEvent{}, err
		}
		for _, ev := range events[:n] {
			if ev.Filter == unix.EVFILT_PROC && ev.Fflags&unix.NOTE_EXIT != 0 {
				w.exited = true
			}
		}
		if w.exited {
			break
		}
		if proctree.State(w.pid) != 'T' {
			continue
		}
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(w.pid, &ws, unix.WUNTRACED|unix.WNOHANG, nil)
		switch {
		case err != nil || wpid != w.pid:
			// Nothing new: a stop reported before, still in force.
		case ws.Stopped():
			return childEvent{stop: syscall.Signal(ws.StopSignal())}, nil
		case ws.Exited() || ws.Signaled():
			st := syscall.WaitStatus(ws)
			return childEvent{exited: true, reaped: &st}, nil
		}
	}
	// NOTE_EXIT may come before the kernel marks the process a zombie;
	// the tree's walk takes it for exited only once it is one.
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if st := proctree.State(w.pid); st == 'Z' || st == 0 {
			break
		}
	}
	return childEvent{exited: true}, nil
}
