//go:build linux || darwin

package runner

import (
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/locked-run/locked-run/internal/proctree"
)

// The guardian is a second copy of this program, started beside the child
// (in the same process group, not in the child's tree). It has two jobs:
//
//   - When locked-run dies without a chance to clean up (SIGKILL, the OOM
//     killer), it learns so from the end of a pipe that only locked-run held
//     open, and SIGKILLs the child and every process started with the
//     tree's marker in its environment: the child's background jobs,
//     double-forked daemons and processes that called setsid, which the
//     kernel's parent-death signal (sent to the direct child only, and
//     Linux only: on macOS the guardian is all there is) would leave
//     running.
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

	deathSig syscall.Signal // the signal that killed it, if one did
	deathAt  time.Time
	wake     chan struct{} // closed and replaced whenever something changes

	exited chan struct{} // closed once the guardian has been reaped
}

type heardSignal struct {
	sig syscall.Signal
	at  time.Time
}

// startGuardian starts the guardian of the tree marked by marker. It is
// started before the child, so that the guardian is there for every signal
// the child can get; setChild then tells it the child's pid. The returned
// guardian is reaped by a goroutine that ends when the guardian exits,
// which close makes it do.
func startGuardian(marker string, hold []*os.File, log hclog.Logger) (*guardian, error) {
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
	env := []string{proctree.Env + "=" + marker, "GORACE=atexit_sleep_ms=0"}
	cmd := &exec.Cmd{
		Path: exe,
		// A name that `pkill -f locked-run` does not match: a signal sent
		// to locked-run and the guardian, not the child, would look like one
		// sent to the whole job and never reach the child.
		Args: []string{"lockedrun-guardian", "guard"},
		Env:  env,
		// The guardian reads 3 and 4; the files to hold come after and
		// stay open, unread, for as long as it lives.
		ExtraFiles: append([]*os.File{ctlR, repW}, hold...),
	}
	err = startDeferring(cmd, proctree.Deferred)
	ctlR.Close()
	repW.Close()
	if err != nil {
		ctlW.Close()
		repR.Close()
		return nil, err
	}
	g := &guardian{pid: cmd.Process.Pid, ctl: ctlW, wake: make(chan struct{}), exited: make(chan struct{})}
	go func() {
		defer close(g.exited)
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
			g.broadcast()
			g.mu.Unlock()
			if err != nil {
				break
			}
		}
		repR.Close()
		err := cmd.Wait()
		g.mu.Lock()
		// A signal sent to the group before the guardian could catch it
		// killed it: that, too, says the group got it.
		// (No ProcessState when Wait failed: a reaper of orphans took the
		// guardian's status first.)
		if ws, ok := processStatus(cmd); ok && ws.Signaled() {
			g.heard = append(g.heard, heardSignal{ws.Signal(), time.Now()})
			g.deathSig, g.deathAt = ws.Signal(), time.Now()
		}
		g.gone = true
		g.broadcast()
		g.mu.Unlock()
		if err != nil {
			log.Debug("guardian exited", "pid", g.pid, "error", err)
		}
	}()
	return g, nil
}

// broadcast wakes everyone waiting for news. Called with mu held.
func (g *guardian) broadcast() {
	close(g.wake)
	g.wake = make(chan struct{})
}

// guardianStartWait bounds how long a signal waits for the guardian to be
// ready: its start-up is that of this whole program, tens of milliseconds on
// a loaded machine, hundreds under the race detector.
const guardianStartWait = 3 * time.Second

// witnessed reports whether the guardian received sig too, within
// witnessBack before now or witnessAhead after, and forgets that report. It
// returns ok false when the guardian cannot tell: not ready yet, or gone.
func (g *guardian) witnessed(sig syscall.Signal) (got, ok bool) {
	// A signal that reached the group while the guardian was starting is
	// reported once it is ready (the ones deferred at its start), or
	// killed it: wait for either.
	startup := time.NewTimer(guardianStartWait)
	defer startup.Stop()
	for {
		g.mu.Lock()
		settled := g.ready || g.gone
		wake := g.wake
		g.mu.Unlock()
		if settled {
			break
		}
		select {
		case <-wake:
		case <-startup.C:
			return false, false
		}
	}
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
		if g.gone {
			// A signal that killed it may come to us more than once (a
			// hangup: bash's SIGHUP to the job, then the kernel's):
			// every copy within the window counts as the group's.
			died := g.deathSig == sig && now.Sub(g.deathAt) < witnessBack
			g.mu.Unlock()
			return died, died
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

// setChild tells the guardian the child's pid.
func (g *guardian) setChild(pid int) {
	g.ctl.WriteString("C " + strconv.Itoa(pid) + "\n") //nolint:errcheck // a dead guardian cannot use it
}

// watch asks the guardian to continue us if the child is continued while
// we are stopped.
func (g *guardian) watch() {
	g.ctl.WriteString("W\n") //nolint:errcheck // a dead guardian cannot watch anyway
}

// close ends the guardian, once the tree is gone, and reaps it: SIGKILL
// is immediate whatever the guardian is doing (it may still be starting),
// and the guardian holds nothing that needs cleaning up.
func (g *guardian) close() {
	syscall.Kill(g.pid, syscall.SIGKILL) //nolint:errcheck // it may have died already
	g.ctl.Close()
	select {
	case <-g.exited:
	case <-time.After(time.Second):
	}
}

// processStatus returns the wait status of cmd after Wait, if Wait got one.
func processStatus(cmd *exec.Cmd) (syscall.WaitStatus, bool) {
	if cmd.ProcessState == nil {
		return 0, false
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ws, ok
}
