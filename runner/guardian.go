package runner

import (
	"bufio"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// The guardian is a second copy of this program, started beside the child
// (in the same process group, not in the child's tree). It has two jobs:
//
//   - When locked-run dies without a chance to clean up (SIGKILL, the OOM
//     killer), it learns so from the end of a pipe that only locked-run held
//     open, and SIGKILLs every process started with the tree's marker in
//     its environment: the child's background jobs, double-forked daemons
//     and processes that called setsid, which the kernel's parent-death
//     signal (sent to the direct child only) would leave running.
//   - It is the witness of signals sent to the whole process group or to
//     every process of the tree: the terminal's Ctrl-C, Ctrl-\ and Ctrl-Z,
//     a hangup, kill(-pgrp), systemd's KillMode=control-group. It catches
//     them and reports each to locked-run. A signal locked-run receives that
//     the guardian also received was not sent to locked-run alone, so the
//     child, in the same group, got it too and must not get it again.
//
// It also continues locked-run when the child is continued while both are
// stopped (kill -STOP child; kill -CONT child), since a stopped process
// cannot notice that by itself.

// guardianEnv, when present in the environment, makes this program the
// guardian; its value is the tree's marker.
const guardianEnv = "LOCKED_RUN_GUARDIAN"

func init() {
	if marker, ok := os.LookupEnv(guardianEnv); ok && len(os.Args) == 2 {
		os.Exit(guardianMain(marker, os.Args[1]))
	}
}

// Timing of the witness. A group signal reaches every member within the
// same kill(2) call, so the guardian's report normally arrives within a
// millisecond of our own copy; the windows only cover scheduling delays on a
// loaded machine. witnessAhead is also how much later a signal sent to
// locked-run alone is forwarded.
const (
	witnessAhead = 150 * time.Millisecond
	witnessBack  = time.Second
)

// guardian is locked-run's side of it.
type guardian struct {
	pid int
	ctl *os.File // commands to the guardian; its end of file is our death

	mu    sync.Mutex
	ready bool          // the guardian catches signals now
	gone  bool          // it has exited
	heard []heardSignal // what it reported, oldest first
	wake  chan struct{} // closed and replaced whenever something changes
}

type heardSignal struct {
	sig syscall.Signal
	at  time.Time
}

// startGuardian starts the guardian of child's tree. The returned guardian
// is reaped by a goroutine that ends when the guardian exits, which it does
// promptly after close.
func startGuardian(marker string, child int, log hclog.Logger) (*guardian, error) {
	exe, err := selfExe()
	if err != nil {
		return nil, err
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		ctlR.Close()
		ctlW.Close()
		return nil, err
	}
	env := []string{guardianEnv + "=" + marker, "GORACE=atexit_sleep_ms=0"}
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       []string{"locked-run-guardian", strconv.Itoa(child)},
		Env:        env,
		ExtraFiles: []*os.File{ctlR, repW},
	}
	err = cmd.Start()
	ctlR.Close()
	repW.Close()
	if err != nil {
		ctlW.Close()
		repR.Close()
		return nil, err
	}
	g := &guardian{pid: cmd.Process.Pid, ctl: ctlW, wake: make(chan struct{})}
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := repR.Read(buf)
			g.mu.Lock()
			for _, b := range buf[:n] {
				if b == 0 {
					g.ready = true
					continue
				}
				g.heard = append(g.heard, heardSignal{syscall.Signal(b), time.Now()})
			}
			if err != nil {
				g.gone = true
			}
			close(g.wake)
			g.wake = make(chan struct{})
			g.mu.Unlock()
			if err != nil {
				break
			}
		}
		repR.Close()
		if err := cmd.Wait(); err != nil {
			log.Debug("guardian exited", "pid", g.pid, "error", err)
		}
	}()
	return g, nil
}

// witnessed reports whether the guardian received sig too, within
// witnessBack before now or witnessAhead after, and forgets that report. It
// returns ok false when the guardian cannot tell: not ready yet, or gone.
func (g *guardian) witnessed(sig syscall.Signal) (got, ok bool) {
	timer := time.NewTimer(witnessAhead)
	defer timer.Stop()
	for {
		g.mu.Lock()
		now := time.Now()
		for i, h := range g.heard {
			if h.sig == sig && now.Sub(h.at) < witnessBack {
				g.heard = append(g.heard[:i:i], g.heard[i+1:]...)
				g.mu.Unlock()
				return true, true
			}
		}
		// Forget what is too old to match anything.
		for len(g.heard) > 0 && now.Sub(g.heard[0].at) >= witnessBack {
			g.heard = g.heard[1:]
		}
		if !g.ready || g.gone {
			g.mu.Unlock()
			return false, false
		}
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-timer.C:
			return false, true
		}
	}
}

// watch asks the guardian to continue us if the child is continued while
// we are stopped.
func (g *guardian) watch() {
	g.ctl.WriteString("W\n") //nolint:errcheck // a dead guardian cannot watch anyway
}

// close tells the guardian that the tree is gone and it may exit.
func (g *guardian) close() {
	g.ctl.WriteString("D\n") //nolint:errcheck // a dead guardian has nothing left to do
	g.ctl.Close()
}

// guardianSignals are those the guardian catches and reports (SIGCONT only
// ends a watch). Catching them also keeps it from dying or stopping with
// the group.
var guardianSignals = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTSTP, syscall.SIGTTIN,
	syscall.SIGTTOU, syscall.SIGCONT, syscall.SIGPIPE, syscall.SIGWINCH,
}

// guardianMain is the guardian's program: marker names the tree, child is
// the direct child's pid.
func guardianMain(marker, childArg string) int {
	child, _ := strconv.Atoi(childArg)
	owner := os.Getppid()
	ctl := os.NewFile(3, "control")
	rep := os.NewFile(4, "reports")
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, guardianSignals...)
	rep.Write([]byte{0}) //nolint:errcheck // a dead owner is noticed on ctl
	go func() {
		for s := range sigs {
			switch sig := s.(syscall.Signal); sig {
			case syscall.SIGCONT, syscall.SIGPIPE, syscall.SIGWINCH, syscall.SIGTTIN, syscall.SIGTTOU:
			default:
				rep.Write([]byte{byte(sig)}) //nolint:errcheck // as above
			}
		}
	}()
	in := bufio.NewReader(ctl)
	var watchStop chan struct{}
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			break
		}
		switch strings.TrimSpace(line) {
		case "D":
			return 0
		case "W":
			if watchStop != nil {
				close(watchStop)
			}
			watchStop = make(chan struct{})
			go watchStopped(owner, child, watchStop)
		}
	}
	// The owner died without saying it was done.
	killMarked(marker, child)
	return 0
}

// watchPoll is how often a watch looks at the owner and the child: a
// person who continued the child sees locked-run follow within this.
const watchPoll = 20 * time.Millisecond

// watchStopped continues owner when it is stopped and child is not (or is
// gone): the child was continued by someone other than the owner's job
// control. It returns once the owner runs again after having been seen
// stopped, or when stop is closed.
func watchStopped(owner, child int, stop <-chan struct{}) {
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	seenStopped := false
	// The owner asks just before stopping; if it has not stopped a second
	// later, it did not (an orphaned group ignores SIGTSTP).
	notYet := time.Now().Add(time.Second)
	for {
		o := procState(owner)
		switch {
		case o == 0 || o == 'Z':
			return
		case o != 'T' && !seenStopped && time.Now().After(notYet):
			return
		case o == 'T':
			seenStopped = true
			if c := procState(child); c != 'T' && c != 't' {
				syscall.Kill(owner, syscall.SIGCONT) //nolint:errcheck // the owner may have just died
				return
			}
		case seenStopped:
			return
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// killDeadline bounds how long the guardian hunts for processes of the
// tree after the owner died: forks racing with the kill are caught by the
// next sweep, and the contract is that everything is gone within a second.
const killDeadline = 900 * time.Millisecond

// killMarked SIGKILLs the child and every process whose environment holds
// marker, sweeping again until a sweep finds none.
func killMarked(marker string, child int) {
	if child > 0 {
		syscall.Kill(child, syscall.SIGKILL) //nolint:errcheck // usually already dead of the parent-death signal
	}
	if marker == "" {
		return
	}
	self := os.Getpid()
	deadline := time.Now().Add(killDeadline)
	for {
		found := 0
		for _, pid := range allPids() {
			if pid != self && hasMarker(pid, marker) {
				syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // it may have exited meanwhile
				found++
			}
		}
		if found == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
