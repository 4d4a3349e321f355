//go:build linux || darwin

package runner

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"golang.org/x/sys/unix"

	"github.com/locked-run/locked-run/internal/proctree"
)

// The guardian is a process of ours started beside the child (in the same
// process group, not in the child's tree): on linux/amd64 this process
// forked, running code of its own (guardian_linux_amd64.go), elsewhere a
// second copy of this program. It has two jobs:
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
	pid  int
	proc *os.Process // signals it through a pidfd: never another process that got its pid
	// ctl carries commands to the guardian (a socket); its end of file is
	// our death. Closed once the guardian is reaped.
	ctl *os.File

	mu    sync.Mutex
	ready bool          // the guardian catches signals now
	gone  bool          // it has exited
	heard []heardSignal // what it reported, oldest first

	log      hclog.Logger   // set by adopt; nil until then
	deathSig syscall.Signal // the signal that killed it, if one did
	deathAt  time.Time
	wake     chan struct{} // closed and replaced whenever something changes
}

type heardSignal struct {
	sig  syscall.Signal
	at   time.Time
	used bool // it witnessed a copy of ours already
}

// startGuardian starts a guardian. It knows no tree yet: adopt tells it
// the marker and the files to hold, before the child is started, and
// setChild the child's pid. The returned guardian is reaped by a goroutine
// that ends when the guardian exits, which close makes it do.
func startGuardian() (*guardian, error) {
	ctl, ctlR, repR, repW, err := guardianFiles()
	if err != nil {
		return nil, err
	}
	// On linux/amd64 the guardian is this process forked, running code of
	// its own (guardian_linux_amd64.go): its first report says it is ready;
	// end of file, that it died starting (a kernel or a policy that refuses
	// what it does). Elsewhere, or then, it is this program started again.
	// It reads 3 and writes 4.
	if pid, err := forkGuardian(ctlR, repW); err == nil {
		ctlR.Close()
		repW.Close()
		proc, _ := os.FindProcess(pid) // cannot fail on Unix
		var b [1]byte
		if n, _ := repR.Read(b[:]); n == 1 && b[0] == 0 {
			return watchGuardian(proc, ctl, repR, proc.Wait, true), nil
		}
		proc.Wait() //nolint:errcheck // it is gone either way
		ctl.Close()
		repR.Close()
		if ctl, ctlR, repR, repW, err = guardianFiles(); err != nil {
			return nil, err
		}
	}
	exe, err := selfExe()
	if err == nil {
		cmd := &exec.Cmd{
			Path: exe,
			// A name that `pkill -f locked-run` does not match: a signal
			// sent to locked-run and the guardian, not the child, would
			// look like one sent to the whole job and never reach the
			// child.
			Args:       []string{"lockedrun-guardian", "guard"},
			Env:        []string{proctree.Env + "=", "GORACE=atexit_sleep_ms=0"},
			ExtraFiles: []*os.File{ctlR, repW},
		}
		if err = startDeferring(cmd, proctree.Deferred); err == nil {
			ctlR.Close()
			repW.Close()
			return watchGuardian(cmd.Process, ctl, repR, func() (*os.ProcessState, error) {
				err := cmd.Wait()
				return cmd.ProcessState, err
			}, false), nil
		}
	}
	ctlR.Close()
	repW.Close()
	ctl.Close()
	repR.Close()
	return nil, err
}

// guardianFiles returns the control socket's two ends (ours, the
// guardian's) and the reports pipe's (ours, the guardian's).
func guardianFiles() (ctl, ctlR, repR, repW *os.File, err error) {
	if ctl, ctlR, err = socketPair(); err != nil {
		return nil, nil, nil, nil, err
	}
	if repR, repW, err = os.Pipe(); err != nil {
		ctlR.Close()
		ctl.Close()
		return nil, nil, nil, nil, err
	}
	return ctl, ctlR, repR, repW, nil
}

// watchGuardian returns the guardian proc, whose control socket is ctl and
// reports come on repR (its ready report already read if ready), and
// starts the goroutine that reads its reports and then reaps it with wait.
func watchGuardian(proc *os.Process, ctl, repR *os.File, wait func() (*os.ProcessState, error), ready bool) *guardian {
	g := &guardian{pid: proc.Pid, proc: proc, ctl: ctl, ready: ready, wake: make(chan struct{})}
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
				g.heard = append(g.heard, heardSignal{sig: syscall.Signal(b), at: time.Now()})
			}
			g.broadcast()
			g.mu.Unlock()
			if err != nil {
				break
			}
		}
		repR.Close()
		state, err := wait()
		g.ctl.Close()
		g.mu.Lock()
		// A signal sent to the group before the guardian could catch it
		// killed it: that, too, says the group got it.
		// (No ProcessState when Wait failed: a reaper of orphans took the
		// guardian's status first.)
		if ws, ok := waitStatus(state); ok && ws.Signaled() {
			g.heard = append(g.heard, heardSignal{sig: ws.Signal(), at: time.Now()})
			g.deathSig, g.deathAt = ws.Signal(), time.Now()
		}
		g.gone = true
		g.broadcast()
		log := g.log
		g.mu.Unlock()
		if err != nil && log != nil {
			log.Debug("guardian exited", "pid", g.pid, "error", err)
		}
	}()
	return g
}

// socketPair returns the two ends of a Unix stream socket, close-on-exec:
// ours, and the guardian's. A socket rather than a pipe, so that the files
// to hold can be passed along (SCM_RIGHTS) to a guardian already running.
func socketPair() (ours, theirs *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	return os.NewFile(uintptr(fds[0]), "guardian control"), os.NewFile(uintptr(fds[1]), "guardian control"), nil
}

// adopt makes g the guardian of the tree marked by marker, holding hold,
// logging to log, and forgets what it heard so far: a signal from before the child existed
// says nothing about what the child got. Once it returns, the guardian
// holds the files, whether or not it has read them yet: a descriptor in
// flight on a socket stays open until its reader takes it or closes the
// socket, and the guardian reads everything before acting on our death.
func (g *guardian) adopt(marker string, hold []*os.File, log hclog.Logger) error {
	g.mu.Lock()
	g.log = log
	g.heard = nil
	gone := g.gone
	g.mu.Unlock()
	if gone {
		return errors.New("the guardian has exited")
	}
	msg := "M " + marker + "\n"
	var rights []byte
	if len(hold) > 0 {
		fds := make([]int, len(hold))
		for i, f := range hold {
			fds[i] = int(f.Fd())
		}
		rights = unix.UnixRights(fds...)
	}
	rc, err := g.ctl.SyscallConn()
	if err != nil {
		return fmt.Errorf("guardian: %w", err)
	}
	var sendErr error
	// Through RawConn, so that the descriptor cannot be closed (the
	// guardian reaped meanwhile) and reused while we send on it.
	err = rc.Write(func(fd uintptr) bool {
		for {
			sendErr = unix.Sendmsg(int(fd), []byte(msg), rights, nil, 0)
			if !errors.Is(sendErr, unix.EINTR) {
				return true
			}
		}
	})
	if err == nil {
		err = sendErr
	}
	if err != nil {
		return fmt.Errorf("guardian: %w", err)
	}
	if dying(g.pid) {
		// Killed before we wrote (a signal to the group while the lock was
		// awaited, the OOM killer): its end of the socket may not be
		// closed yet, but it will not read what we wrote.
		return errors.New("guardian: it is exiting")
	}
	return nil
}

// A Guardian is a guardian started ahead of the child, so that its start
// (a whole start of this program, some milliseconds of CPU) overlaps with
// what the caller does before the child can run, waiting for a lock above
// all. Start takes it over (Config.Guardian); one Start did not take over
// is ended by Close. It knows nothing of the tree until Start tells it, so
// it can be started before the lock is held.
type Guardian struct {
	done  chan struct{} // closed once g and err are set
	g     *guardian
	err   error
	taken atomic.Bool
}

// StartGuardian starts a guardian in the background and returns at once.
// It logs, once taken over, to Start's Config.Logger. Start waits for the
// guardian's process to run before it forks the child, so the child is
// never forked before the guardian (a signal sent to the group in between
// would reach the child and not the witness, and be passed on a second
// time).
//
// Starting it blocks: the forked guardian is waited for until it says it
// is ready, and Go's fork for a copy of this program (vfork) blocks the
// calling thread until the new process has executed it. Where process
// creation is slow (the
// paravirtualised 2-core machine the benchmarks run on now, where it takes
// 1.5 ms) that block is better spent on another thread while this one
// checks options, loads the AWS configuration and takes the lock: a run
// was about a millisecond (1–4 %) faster than with the fork made here
// (BENCHMARKS.md, fifth pass). On a machine where exec is fast the
// opposite held by 0.5 ms (third pass: there the child's start could catch
// up with a guardian whose fork had not returned yet).
func StartGuardian() *Guardian {
	pg := &Guardian{done: make(chan struct{})}
	go func() {
		defer close(pg.done)
		pg.g, pg.err = startGuardian()
	}()
	return pg
}

// take waits for the guardian's start and hands it over, once.
func (pg *Guardian) take() (*guardian, error) {
	if pg == nil || !pg.taken.CompareAndSwap(false, true) {
		return nil, errors.New("no guardian started ahead")
	}
	<-pg.done
	return pg.g, pg.err
}

// Close ends the guardian unless Start took it over. Safe to call more than
// once, and on nil.
func (pg *Guardian) Close() {
	if g, err := pg.take(); err == nil {
		g.close()
	}
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
// witnessBack before now or witnessAhead after, and uses that report up. It
// returns ok false when the guardian cannot tell: not ready yet, or gone.
//
// Two copies of a signal that reach a process before it takes the first up
// are one (the kernel keeps one pending; so does the Go runtime until
// os/signal reads it). The guardian, the child and we each see one or two
// of a pair sent together (a hangup: bash's SIGHUP to the job and the
// kernel's to the group), and the guardian, busy starting or on a loaded
// machine, is the likeliest to see one. So a copy that finds no report of
// its own within witnessAhead is the group's too when a report of sig that
// witnessed one of our copies came less than witnessAhead before this copy
// was taken up: it came with that one. One sent to us alone later than
// that is passed on.
func (g *guardian) witnessed(sig syscall.Signal) (got, ok bool) {
	asked := time.Now()
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
			if h.sig == sig && !h.used && now.Sub(h.at) < witnessBack {
				g.heard[i].used = true
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
			return g.coalesced(sig, asked), true
		}
	}
}

// coalesced reports whether a report of sig that witnessed one of our
// copies came less than witnessAhead before asked (see witnessed).
func (g *guardian) coalesced(sig syscall.Signal, asked time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, h := range g.heard {
		if h.sig == sig && h.used && asked.Sub(h.at) < witnessAhead {
			return true
		}
	}
	return false
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

// close ends the guardian, once the tree is gone: SIGKILL is immediate
// whatever the guardian is doing (it may still be starting), and the
// guardian holds nothing that needs cleaning up. It does not wait for the
// guardian to be reaped (its goroutine does that); the control socket stays
// open until then, so the guardian can never take our end of it for our
// death and act on a tree whose pids may be reused by then. Once it is
// reaped, close signals nothing (os.Process knows it finished).
func (g *guardian) close() {
	g.proc.Kill() //nolint:errcheck // it may have died already
}

// waitStatus returns the wait status in state, if Wait got one.
func waitStatus(state *os.ProcessState) (syscall.WaitStatus, bool) {
	if state == nil {
		return 0, false
	}
	ws, ok := state.Sys().(syscall.WaitStatus)
	return ws, ok
}
