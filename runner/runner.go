//go:build linux || darwin

package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"golang.org/x/sys/unix"

	"github.com/locked-run/locked-run/internal/proctree"
)

// DefaultKillAfter is the grace between SIGTERM and SIGKILL when
// Config.KillAfter is zero. It matches the --kill-after default: long enough
// for terraform or a database client to finish a write and unlock its state,
// short enough that a lost lock is not held by a stuck child for long.
const DefaultKillAfter = 10 * time.Second

// Config says what to run and how. Its zero value is not useful: Args must
// name a command.
type Config struct {
	// Args is the command line. Args[0] is looked up on PATH like a shell
	// does (exec.LookPath) unless it contains a slash.
	Args []string

	// Env is the child's whole environment. Nil means this process's
	// environment, as in os/exec.
	Env []string

	// Stdin, Stdout and Stderr are handed to the child as they are: it
	// inherits the descriptors, nothing is piped or copied. Nil means
	// os.Stdin, os.Stdout and os.Stderr.
	Stdin, Stdout, Stderr *os.File

	// KillAfter is the grace between SIGTERM and SIGKILL when the child is
	// stopped because the context ended. Zero means DefaultKillAfter.
	KillAfter time.Duration

	// Logger receives the runner's messages; it is used as given, so the
	// caller names it. Nil means hclog.NewNullLogger().
	Logger hclog.Logger

	// MayContinue, if not nil, is asked when this process is continued
	// after it stopped itself because the child was stopped (Ctrl-Z),
	// before the child is continued. When it returns false the child is not
	// continued by us; the caller ends ctx and the tree is stopped as usual
	// (SIGTERM with SIGCONT, SIGKILL after KillAfter): a lock holder uses it
	// to refuse to let work resume on a lease that ran out while everything
	// was stopped. (A shell's fg continues the whole job, the child
	// included, at the same moment as us; then the child runs until the
	// SIGTERM that follows.)
	MayContinue func() bool

	// Marker is an environment entry ("NAME=value", present in Env) unique
	// to this run. Processes that carry it belong to the child's tree even
	// after their parent exited, and the guardian kills them if this process
	// dies without cleaning up. Empty means only the child's subtree is
	// known, and the guardian kills only the child.
	Marker string

	// Hold are files the guardian keeps open until it exits, which is after
	// the child's tree is gone. A lock held through such a file (a flock(2)
	// of the caller's) therefore outlives a SIGKILL of this process until
	// nothing the child started runs any more, instead of being freed by
	// the kernel at once while the guardian is still killing the tree.
	// Closing or unlocking them is the caller's business.
	Hold []*os.File

	// Guardian, if not nil, is a guardian started ahead (StartGuardian),
	// which Start takes over instead of starting one itself. Nil, or one
	// that has exited meanwhile, means Start starts its own before the
	// child, as always: the child never runs without a guardian that
	// could be started.
	Guardian *Guardian
}

// Result says how the child ended.
type Result struct {
	// ExitCode is the child's exit code when it exited; zero when it was
	// killed by a signal.
	ExitCode int
	// Signal is the signal that killed the child, or zero when it exited.
	Signal syscall.Signal
	// Stopped is true when the runner stopped the child because the
	// context given to Start ended before the child exited.
	Stopped bool
}

// Status returns the result the way a shell reports it: the exit code, or
// 128+N when the child was killed by signal N.
func (r Result) Status() int {
	if r.Signal != 0 {
		return 128 + int(r.Signal)
	}
	return r.ExitCode
}

// A Process is a started child. Its methods are safe for concurrent use.
type Process struct {
	pid       int
	name      string
	killAfter time.Duration
	log       hclog.Logger
	mayCont   func() bool // Config.MayContinue
	marker    string
	hold      []*os.File // Config.Hold, for the guardian
	ahead     *Guardian  // Config.Guardian
	forker    int        // the thread that forks the child and waits for it (ownChildren)

	mu sync.Mutex
	// exited is set once the child has exited (it may be an unreaped
	// zombie); from then on it is not signalled.
	exited bool
	// stopped is set when the context ended and we sent SIGTERM.
	stopped bool
	done    chan struct{}
	result  Result

	selfStops atomic.Int64 // how many times we stopped ourselves

	stopMu        sync.Mutex
	stoppedFor    time.Duration // how long we were stopped, in all
	lastChildTSTP time.Duration // runClock when the child last stopped on SIGTSTP; -1: never
	born          time.Time

	gmu   sync.Mutex
	guard *guardian // nil when it could not be started

	treeMu  sync.Mutex
	seen    map[int]bool // pids found in the tree so far
	termed  map[int]bool // pids sent SIGTERM
	visited map[int]bool // pids the last walk of the tree went through (Linux)
	killAt  time.Time    // when SIGKILL follows; zero until SIGTERM was sent
	treeOS  treeState    // what the platform's members keeps (tree_*.go)
}

// Start starts the child and returns once it is running (its program has
// been executed), or returns the reason it could not: an error matching
// ErrNotFound or ErrNotExecutable, or another error for failures that say
// nothing about the command. A file that is executable but not a program
// the kernel can run (a script without "#!") is run with /bin/sh, as
// execvp(3) does.
//
// The child stays in our process group, which is the caller's job: for a
// shell and the terminal it is part of the same job as locked-run, as a
// command run by sudo or timeout --foreground is. Keys typed at the
// terminal and signals sent to the job reach it straight from the kernel.
// The child gets SIGKILL from the kernel if this process dies before it (on
// Linux; on macOS from the guardian), and a guardian process kills the rest
// of its tree (see Config.Marker).
//
// When ctx is done before the child exits, the tree is stopped: SIGTERM to
// the child and every descendant, then SIGKILL after KillAfter. When the
// child exits, whatever it left running is stopped the same way, and Done
// is closed only when nothing of the tree runs any more. If ctx is already
// done, nothing is started and ctx.Err() is returned, wrapped.
func Start(ctx context.Context, cfg Config) (*Process, error) {
	if len(cfg.Args) == 0 {
		return nil, errors.New("start: empty command")
	}
	name := cfg.Args[0]
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %q: %w", name, err)
	}
	path, err := resolve(name)
	if err != nil {
		return nil, err
	}

	p := &Process{
		name:          name,
		killAfter:     cfg.KillAfter,
		log:           cfg.Logger,
		mayCont:       cfg.MayContinue,
		marker:        cfg.Marker,
		hold:          cfg.Hold,
		ahead:         cfg.Guardian,
		done:          make(chan struct{}),
		born:          time.Now(),
		lastChildTSTP: -1,
		seen:          map[int]bool{},
		termed:        map[int]bool{},
	}
	if p.killAfter <= 0 {
		p.killAfter = DefaultKillAfter
	}
	if p.log == nil {
		p.log = hclog.NewNullLogger()
	}
	if err := becomeSubreaper(); err != nil {
		p.log.Debug("cannot become a subreaper; orphans of the tree go to init", "error", err)
	}

	cmd := &exec.Cmd{
		Path:        path,
		Args:        cfg.Args,
		Env:         cfg.Env,
		Stdin:       orFile(cfg.Stdin, os.Stdin),
		Stdout:      orFile(cfg.Stdout, os.Stdout),
		Stderr:      orFile(cfg.Stderr, os.Stderr),
		SysProcAttr: childSysProcAttr(),
	}
	started := make(chan error, 1)
	go p.run(ctx, cmd, started)
	if err := <-started; err != nil {
		return nil, err
	}
	p.log.Debug("child started", "pid", p.pid, "command", name)
	return p, nil
}

func orFile(f, def *os.File) *os.File {
	if f == nil {
		return def
	}
	return f
}

// Pid returns the child's process id.
func (p *Process) Pid() int { return p.pid }

// Done returns a channel that is closed once the child has exited and been
// reaped and nothing else of its tree runs any more (see Start).
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait blocks until Done is closed and returns how the child ended. It may be
// called any number of times, from any goroutine.
func (p *Process) Wait() Result {
	<-p.done
	return p.result
}

// Signal passes on sig, a signal sent to this process, to the child process
// (not to its process group: the child's helpers get only what the child
// decides to send them), unless the child got it already: a signal sent to
// the whole process group (a key typed at the terminal, kill(-pgrp), a
// shell's job control) or to every process of the tree reaches the child
// from the kernel, and is not sent again. How that is told apart is in
// guardian.go; a signal sent to this process alone is passed on up to
// witnessAhead later.
//
// It returns nil without sending anything once the child has exited, and
// treats ESRCH (the child is already gone) as success.
func (p *Process) Signal(sig syscall.Signal) error {
	stops := p.selfStops.Load()
	got := p.groupGot(sig)
	if !got && p.selfStops.Load() != stops {
		// We were stopped while the witness window ran, so it proved
		// nothing: the guardian's report may be waiting to be read. Look
		// again, now that we run.
		got = p.groupGot(sig)
	}
	if !got && sig == syscall.SIGTSTP && p.recentChildStop() {
		// The child was stopped by SIGTSTP a moment ago, as a Ctrl-Z
		// does, and we stopped with it: it had its stop. (The SIGCONT
		// that continued the job discards the pending SIGTSTP the
		// guardian had not read yet, so there may be no witness.)
		got = true
	}
	if got {
		p.log.Debug("not forwarding: the child got it too", "pid", p.pid, "signal", unix.SignalName(sig))
		return nil
	}
	if st := proctree.State(p.pid); sig == syscall.SIGTSTP && (st == 'T' || st == 't') {
		// Already stopped: a SIGTSTP kept pending would stop it again
		// right after the fg that continues it.
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return nil
	}
	p.log.Debug("forwarding signal", "pid", p.pid, "signal", unix.SignalName(sig))
	if err := unix.Kill(p.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("signal %q (pid %d): %w", p.name, p.pid, err)
	}
	return nil
}

// runClock is how long we have run since Start, leaving out the time we
// were stopped. Called with stopMu held.
func (p *Process) runClock() time.Duration { return time.Since(p.born) - p.stoppedFor }

// recentChildStop reports whether the child stopped on SIGTSTP within
// witnessBack of our running time.
func (p *Process) recentChildStop() bool {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	return p.lastChildTSTP >= 0 && p.runClock()-p.lastChildTSTP < witnessBack
}

// groupGot reports whether sig, received by this process, was sent to the
// whole process group or tree. It asks the guardian; without one (it could
// not be started, or died of something else), it assumes that the signals a
// terminal sends came from it when we are the terminal's foreground group.
func (p *Process) groupGot(sig syscall.Signal) bool {
	if g := p.guardian(); g != nil {
		if got, ok := g.witnessed(sig); ok {
			return got
		}
	}
	switch sig {
	case syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTSTP:
		return inForeground()
	}
	return false
}

func (p *Process) guardian() *guardian {
	p.gmu.Lock()
	defer p.gmu.Unlock()
	return p.guard
}

func (p *Process) guardianPid() int {
	if g := p.guardian(); g != nil {
		return g.pid
	}
	return 0
}

// startGuardian gives the tree its guardian, before the child starts: the
// one started ahead, if it is still there, else a new one.
func (p *Process) startGuardian() {
	p.gmu.Lock()
	defer p.gmu.Unlock()
	if g, err := p.ahead.take(); err == nil {
		if err := g.adopt(p.marker, p.hold, p.log); err == nil {
			p.guard = g
			return
		}
		g.close()
	}
	g, err := startGuardian()
	if err == nil {
		if err = g.adopt(p.marker, p.hold, p.log); err != nil {
			g.close()
		}
	}
	if err != nil {
		p.log.Warn("could not start the guardian; if locked-run is killed, the command's background processes may outlive it", "error", err)
		return
	}
	p.guard = g
}

// stopGuardian lets the guardian go: the tree is gone.
func (p *Process) stopGuardian() {
	p.gmu.Lock()
	defer p.gmu.Unlock()
	if p.guard != nil {
		p.guard.close()
	}
}

// run starts the child and supervises it until it is reaped. It is the only
// caller of cmd.Wait.
func (p *Process) run(ctx context.Context, cmd *exec.Cmd, started chan<- error) {
	// The kernel sends the parent-death signal when the thread that forked
	// the child exits, not when the process does (go.dev/issue/27505), and
	// the Go runtime ends a thread when a goroutine that locked it returns.
	// Were we to fork from whatever thread the caller happens to run on, the
	// child could be SIGKILLed while locked-run lives on. So this goroutine
	// forks and then keeps its thread, locked, until the child is reaped: the
	// thread lives exactly as long as the child needs it to, and dies only
	// with the process.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	p.forker = threadID()
	p.startGuardian()
	path := cmd.Path
	cmd, err := startLikeExecvp(cmd)
	if err != nil {
		p.stopGuardian()
		started <- classify(p.name, path, err)
		return
	}
	p.pid = cmd.Process.Pid
	if g := p.guardian(); g != nil {
		g.setChild(p.pid)
	}
	started <- nil
	// After the caller goes on: the child stays our child, a zombie at
	// worst, until cmd.Wait below.
	if !slices.Contains(ownChildren(p.forker), p.pid) {
		// Without /proc (or with another PID namespace's) the tree
		// cannot be found: say so rather than let it pass unseen.
		p.log.Warn("cannot see the command's processes (is /proc mounted, for this PID namespace?): what it leaves running is not stopped and may outlive the lock", "pid", p.pid)
	}

	pid1 := os.Getpid() == 1
	reaperDone := make(chan struct{})
	stopReaper := make(chan struct{})
	if pid1 {
		go p.reapAsInit(stopReaper, reaperDone)
	} else {
		close(reaperDone)
	}

	cont := make(chan os.Signal, 1)
	signal.Notify(cont, syscall.SIGCONT)
	defer signal.Stop(cont)

	exited := make(chan struct{})
	stopperDone := make(chan struct{})
	go func() {
		defer close(stopperDone)
		p.stopWhenDone(ctx, exited)
	}()
	go p.watchTree(exited)

	reaped := p.supervise(ctx, cont)
	p.mu.Lock()
	p.exited = true
	p.mu.Unlock()
	close(exited)
	<-stopperDone
	// The child's zombie keeps its pid from being reused until cmd.Wait
	// below, so nothing in the tree can be mistaken for it meanwhile.
	p.finishTree(pid1)
	close(stopReaper)
	<-reaperDone
	p.stopGuardian()

	err = cmd.Wait()
	res := Result{}
	if reaped != nil {
		// The waiter had to collect the exit itself (macOS only, see
		// proc_darwin.go); cmd.Wait found nothing left to wait for.
		if reaped.Signaled() {
			res.Signal = reaped.Signal()
		} else {
			res.ExitCode = reaped.ExitStatus()
		}
	} else if st := cmd.ProcessState; st != nil {
		ws := st.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			res.Signal = ws.Signal()
		} else {
			res.ExitCode = ws.ExitStatus()
		}
	} else {
		// Not possible for a started child unless someone else reaped it;
		// report it as a shell reports a child it lost.
		p.log.Error("waiting for child failed", "pid", p.pid, "error", err)
		res.ExitCode = 127
	}
	p.mu.Lock()
	res.Stopped = p.stopped
	p.mu.Unlock()
	p.result = res
	p.log.Debug("child exited", "pid", p.pid, "status", res.Status(), "stopped", res.Stopped)
	close(p.done)
}

// startLikeExecvp starts cmd and returns the command it started: cmd, or,
// when the kernel refuses the file as not a program it knows (ENOEXEC: a
// script without "#!"), /bin/sh running it, as execvp(3), env(1) and
// flock(1) do.
func startLikeExecvp(cmd *exec.Cmd) (*exec.Cmd, error) {
	err := cmd.Start()
	if !errors.Is(err, syscall.ENOEXEC) {
		return cmd, err
	}
	sh := &exec.Cmd{
		Path:        "/bin/sh",
		Args:        append([]string{"/bin/sh", cmd.Path}, cmd.Args[1:]...),
		Env:         cmd.Env,
		Dir:         cmd.Dir,
		Stdin:       cmd.Stdin,
		Stdout:      cmd.Stdout,
		Stderr:      cmd.Stderr,
		SysProcAttr: cmd.SysProcAttr,
	}
	if err := sh.Start(); err != nil {
		return nil, err
	}
	return sh, nil
}

// reapAsInit reaps, as PID 1, every orphan that exits, as tini does,
// until stop is closed; the child and the guardian are left to their own
// waits.
func (p *Process) reapAsInit(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		p.reapOrphans(true)
		select {
		case <-stop:
			return
		case <-chld:
		case <-tick.C:
		}
	}
}

// childEvent is what a childWaiter saw: the child exited (left a zombie
// for cmd.Wait, unless reaped holds the status the waiter had to collect),
// or it stopped with stop (zero: nothing new).
type childEvent struct {
	exited bool
	reaped *syscall.WaitStatus
	stop   syscall.Signal
}

// supervise returns once the child has exited, normally leaving it
// unreaped; it returns the exit status only when the platform's waiter had
// to collect it. On the way it follows the child's stops, for job control.
func (p *Process) supervise(ctx context.Context, cont <-chan os.Signal) *syscall.WaitStatus {
	w, err := newChildWaiter(p.pid)
	if err != nil {
		p.log.Error("waiting for child failed", "pid", p.pid, "error", err)
		return nil
	}
	defer w.close()
	for {
		ev, err := w.next()
		if err != nil {
			p.log.Error("waiting for child failed", "pid", p.pid, "error", err)
			return nil
		}
		if ev.exited {
			return ev.reaped
		}
		if ev.stop == 0 {
			continue
		}
		if ev.stop == syscall.SIGTSTP {
			p.stopMu.Lock()
			p.lastChildTSTP = p.runClock()
			p.stopMu.Unlock()
		}
		p.childStopped(ctx, ev.stop, cont)
	}
}

// childStopped handles the child being stopped by sig. When no job-control
// shell could see us stop (no terminal, cron, CI, a script), it does
// nothing: whoever stopped the child will continue it (and stopping on ctx
// continues it too).
//
// Otherwise it does what the child's shell would have seen: our job
// stopped. We stop ourselves with the same signal, so that the shell says
// "Stopped" or "Stopped (tty input)" as it would for the child. We are
// continued by the shell's fg or bg (which continues the child in the same
// stroke, since it is in our group), by a kill -CONT sent to us, or by the
// guardian when someone continued the child alone. Then the child is
// continued if it is still stopped, unless the caller refuses.
func (p *Process) childStopped(ctx context.Context, sig syscall.Signal, cont <-chan os.Signal) {
	if !canStopForShell() {
		p.log.Debug("child stopped", "pid", p.pid, "signal", unix.SignalName(sig))
		return
	}
	for len(cont) > 0 {
		<-cont
	}
	if st := proctree.State(p.pid); st != 'T' && st != 't' {
		// Continued already: the group's stop signal stopped us too, and
		// the shell's fg or bg continued us all before we got here.
		return
	}
	if g := p.guardian(); g != nil {
		g.watch()
	}
	// Nothing of ours runs while we are stopped: whatever the caller does
	// in the background (renewing a lease) waits too, so say so.
	p.log.Warn("child stopped; stopping too until continued", "pid", p.pid, "signal", unix.SignalName(sig))
	p.selfStops.Add(1)
	stoppedAt := time.Now()
	stopSelf(sig)
	p.stopMu.Lock()
	p.stoppedFor += time.Since(stoppedAt)
	p.stopMu.Unlock()
	p.log.Info("continued", "pid", p.pid)
	if ctx.Err() != nil {
		// The caller wants the child stopped (its lock may have expired
		// while we were stopped): leave it to the stopper, which continues
		// it only together with SIGTERM.
		return
	}
	if p.mayCont != nil && !p.mayCont() {
		p.log.Warn("not continuing child: the caller refused", "pid", p.pid)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := proctree.State(p.pid); !p.exited && (st == 'T' || st == 't') {
		if err := unix.Kill(p.pid, syscall.SIGCONT); err != nil && !errors.Is(err, unix.ESRCH) {
			p.log.Warn("could not continue child", "pid", p.pid, "error", err)
		}
	}
}

// stopWhenDone stops the tree when ctx ends before exited is closed:
// SIGTERM to the child and its descendants, and SIGKILL to those still
// running killAfter later. After the child exits, finishTree takes over,
// keeping the same deadline.
func (p *Process) stopWhenDone(ctx context.Context, exited <-chan struct{}) {
	select {
	case <-exited:
		return
	case <-ctx.Done():
	}
	p.mu.Lock()
	if p.exited {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.mu.Unlock()
	p.log.Debug("stopping child", "pid", p.pid, "signal", "SIGTERM", "kill_after", p.killAfter)
	p.terminate()

	p.treeMu.Lock()
	wait := time.Until(p.killAt)
	p.treeMu.Unlock()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	select {
	case <-exited:
	case <-deadline.C:
		p.log.Warn("child still running after kill-after, killing it", "pid", p.pid, "kill_after", p.killAfter)
		p.mu.Lock()
		if !p.exited {
			signalPid(p.pid, syscall.SIGKILL)
		}
		p.mu.Unlock()
		for _, pid := range p.members() {
			signalPid(pid, syscall.SIGKILL)
		}
	}
}
