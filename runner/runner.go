package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
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
	// before the child is continued. When it returns false the child stays
	// stopped until ctx ends, and is then stopped as usual (SIGTERM with
	// SIGCONT, SIGKILL after KillAfter): a lock holder uses it to refuse to
	// let work resume on a lease that ran out while everything was stopped.
	MayContinue func() bool
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
	pid       int // also the child's process group id
	name      string
	killAfter time.Duration
	log       hclog.Logger
	mayCont   func() bool // Config.MayContinue

	// tty is the descriptor of our controlling terminal among the child's
	// stdin, stdout and stderr, or -1 when none of them is.
	tty     int
	ownPgrp int
	// handedOver is set once we have given the terminal's foreground to the
	// child's group. Only Start and then the run goroutine touch it.
	handedOver bool

	mu sync.Mutex
	// exited is set once the child has exited (it may be an unreaped
	// zombie); from then on its group is no longer ours to signal.
	exited bool
	// stopped is set when the context ended and we sent SIGTERM.
	stopped bool
	done    chan struct{}
	result  Result
}

// Start starts the child and returns once it is running (its program has
// been executed), or returns the reason it could not: an error matching
// ErrNotFound or ErrNotExecutable, or another error for failures that say
// nothing about the command.
//
// The child runs in its own process group. When a terminal among Stdin,
// Stdout and Stderr (in that order) is our controlling terminal and our
// process group is its foreground group, the child's group becomes the
// foreground group as it is created, and the terminal is given back to our
// group after the child exits. The child gets SIGKILL from the kernel if this
// process dies before it.
//
// When ctx is done before the child exits, the child is stopped: SIGTERM to
// its process group, then SIGKILL to the group after KillAfter. If ctx is
// already done, nothing is started and ctx.Err() is returned, wrapped.
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

	stdin, stdout, stderr := orFile(cfg.Stdin, os.Stdin), orFile(cfg.Stdout, os.Stdout), orFile(cfg.Stderr, os.Stderr)
	p := &Process{
		name:      name,
		killAfter: cfg.KillAfter,
		log:       cfg.Logger,
		mayCont:   cfg.MayContinue,
		tty:       controllingTerminal(stdin, stdout, stderr),
		ownPgrp:   unix.Getpgrp(),
		done:      make(chan struct{}),
	}
	if p.killAfter <= 0 {
		p.killAfter = DefaultKillAfter
	}
	if p.log == nil {
		p.log = hclog.NewNullLogger()
	}

	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if p.tty >= 0 {
		if fg, err := foreground(p.tty); err == nil && fg == p.ownPgrp {
			// We are the terminal's foreground job. Make the child's group
			// the foreground group in the child itself, between setpgid and
			// exec, so it can never run as a background job that reads the
			// terminal and is stopped by SIGTTIN.
			//
			// This is what delivers a typed key exactly once: the kernel
			// sends the SIGINT of a Ctrl-C (SIGQUIT of Ctrl-\, SIGTSTP of
			// Ctrl-Z, SIGWINCH of a resize) to the foreground group only,
			// which is then the child's and not ours, so we never see it and
			// never forward it. Signals sent to locked-run itself (kill,
			// systemd, a CI runner) reach only us, and the caller forwards
			// them with Signal, once. The child is in no group that receives
			// both.
			attr.Foreground = true
			attr.Ctty = p.tty
			p.handedOver = true
		}
	}

	cmd := &exec.Cmd{
		Path:        path,
		Args:        cfg.Args,
		Env:         cfg.Env,
		Stdin:       stdin,
		Stdout:      stdout,
		Stderr:      stderr,
		SysProcAttr: attr,
	}
	started := make(chan error, 1)
	go p.run(ctx, cmd, path, started)
	if err := <-started; err != nil {
		return nil, err
	}
	p.log.Debug("child started", "pid", p.pid, "command", name, "foreground", attr.Foreground)
	return p, nil
}

func orFile(f, def *os.File) *os.File {
	if f == nil {
		return def
	}
	return f
}

// Pid returns the child's process id, which is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Done returns a channel that is closed once the child has exited and been
// reaped, anything it left in its group has been dealt with (see Start), and
// the terminal, if it was handed over, is back with our process group.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait blocks until Done is closed and returns how the child ended. It may be
// called any number of times, from any goroutine.
func (p *Process) Wait() Result {
	<-p.done
	return p.result
}

// Signal sends sig to the child's process group. It returns nil without
// sending anything once the child has exited, and treats ESRCH (the group is
// already gone) as success.
func (p *Process) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return nil
	}
	p.log.Debug("forwarding signal", "pid", p.pid, "signal", unix.SignalName(sig))
	if err := p.killGroup(sig); err != nil {
		return fmt.Errorf("signal %q (process group %d): %w", p.name, p.pid, err)
	}
	return nil
}

// killGroup sends sig to the child's process group. The caller makes sure the
// group id is still the child's: the child has not exited, or it is an
// unreaped zombie (whose pid the kernel cannot reuse).
func (p *Process) killGroup(sig syscall.Signal) error {
	if err := unix.Kill(-p.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}

// run starts the child and supervises it until it is reaped. It is the only
// caller of cmd.Wait.
func (p *Process) run(ctx context.Context, cmd *exec.Cmd, path string, started chan<- error) {
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

	if err := cmd.Start(); err != nil {
		if p.handedOver {
			// The child made its group the foreground group and then failed
			// to execute the program; take the terminal back from that
			// empty group.
			p.reclaimTerminal(0)
		}
		started <- classify(p.name, path, err)
		return
	}
	p.pid = cmd.Process.Pid
	started <- nil

	var cont chan os.Signal
	if p.tty >= 0 {
		cont = make(chan os.Signal, 1)
		signal.Notify(cont, syscall.SIGCONT)
		defer signal.Stop(cont)
	}

	exited := make(chan struct{})
	stopperDone := make(chan struct{})
	go func() {
		defer close(stopperDone)
		p.stopWhenDone(ctx, exited)
	}()

	p.supervise(ctx, cont)
	p.mu.Lock()
	p.exited = true
	p.mu.Unlock()
	close(exited)
	// Until the child is reaped its zombie keeps its pid, and so its group
	// id, from being reused: the stopper may still signal the group.
	<-stopperDone
	if p.handedOver {
		p.reclaimTerminal(p.pid)
	}

	err := cmd.Wait()
	res := Result{}
	if st := cmd.ProcessState; st != nil {
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

// reclaimTerminal gives the terminal back to our process group when its
// foreground group is childPgrp or has no process left. Anything else means
// someone (the user's shell) has taken the terminal since, and it is theirs.
func (p *Process) reclaimTerminal(childPgrp int) {
	fg, err := foreground(p.tty)
	if err != nil || fg == p.ownPgrp {
		return
	}
	if fg != childPgrp && !errors.Is(unix.Kill(-fg, 0), unix.ESRCH) {
		return
	}
	if err := setForeground(p.tty, p.ownPgrp); err != nil {
		p.log.Warn("could not take the terminal back", "error", err)
	}
}

// Child state codes of waitid's siginfo (si_code), from <signal.h>.
const (
	cldExited  = 1
	cldKilled  = 2
	cldDumped  = 3
	cldStopped = 5
)

// supervise returns once the child has exited, leaving it unreaped. On the
// way it follows the child's stops, for job control.
func (p *Process) supervise(ctx context.Context, cont <-chan os.Signal) {
	for {
		// WNOWAIT leaves an exit to be collected by cmd.Wait.
		code, _, err := waitChild(p.pid, unix.WEXITED|unix.WSTOPPED|unix.WNOWAIT)
		if err != nil {
			p.log.Error("waiting for child failed", "pid", p.pid, "error", err)
			return
		}
		switch code {
		case cldExited, cldKilled, cldDumped:
			return
		}
		// A stop: collect it, so the next waitid reports
		// something new. WEXITED is left out so an exit cannot be taken.
		code, status, err := waitChild(p.pid, unix.WSTOPPED|unix.WNOHANG)
		if err != nil {
			continue
		}
		switch code {
		case cldStopped:
			p.childStopped(ctx, syscall.Signal(status), cont)
		}
	}
}

// childStopped handles the child being stopped by sig. Without a terminal,
// or when no job-control shell could see us stop, it does nothing: whoever
// stopped the child will continue it (and stopping on ctx continues it too).
//
// With one, it does what the child's own shell would have seen: our job
// stopped. It takes the terminal back from the child's group, stops our own
// process group with the same signal, and, once the shell continues us,
// hands the terminal to the child again if we are now in the foreground
// (`fg`; after `bg` we are not and neither will the child be) and continues
// the child's group.
func (p *Process) childStopped(ctx context.Context, sig syscall.Signal, cont <-chan os.Signal) {
	if p.tty < 0 || !canStopForShell() {
		p.log.Debug("child stopped", "pid", p.pid, "signal", unix.SignalName(sig))
		return
	}
	if fg, err := foreground(p.tty); err == nil && fg == p.pid {
		if err := setForeground(p.tty, p.ownPgrp); err != nil {
			p.log.Warn("could not take the terminal back", "error", err)
		}
	}
	for len(cont) > 0 {
		<-cont
	}
	// Nothing of ours runs while we are stopped: whatever the caller does
	// in the background (renewing a lease) waits too, so say so.
	p.log.Warn("child stopped; stopping too until continued", "pid", p.pid, "signal", unix.SignalName(sig))
	if err := unix.Kill(0, sig); err != nil {
		p.log.Warn("could not stop", "signal", unix.SignalName(sig), "error", err)
	} else {
		select {
		case <-cont:
		case <-ctx.Done():
		}
	}
	p.log.Info("continued", "pid", p.pid)
	if fg, err := foreground(p.tty); err == nil && fg == p.ownPgrp {
		if err := setForeground(p.tty, p.pid); err != nil {
			p.log.Warn("could not hand the terminal to the child", "error", err)
		} else {
			p.handedOver = true
		}
	}
	if ctx.Err() != nil {
		// The caller wants the child stopped (its lock may have expired
		// while we were stopped): leave it stopped for the stopper, which
		// continues it only together with SIGTERM.
		return
	}
	if p.mayCont != nil && !p.mayCont() {
		p.log.Warn("not continuing child: the caller refused", "pid", p.pid)
		return
	}
	p.mu.Lock()
	if !p.exited {
		if err := p.killGroup(syscall.SIGCONT); err != nil {
			p.log.Warn("could not continue child", "pid", p.pid, "error", err)
		}
	}
	p.mu.Unlock()
}

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

// stopWhenDone stops the child when ctx ends before exited is closed:
// SIGTERM to its group, and SIGKILL to the group when anything in it is still
// running killAfter later.
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
	p.log.Debug("stopping child", "pid", p.pid, "signal", "SIGTERM", "kill_after", p.killAfter)
	if err := p.killGroup(syscall.SIGTERM); err != nil {
		p.log.Warn("could not signal child", "pid", p.pid, "signal", "SIGTERM", "error", err)
	}
	// A stopped process keeps SIGTERM pending until it is continued, so
	// SIGCONT follows, as systemd does; a running one ignores it. Whether
	// the child is stopped cannot be known without a race.
	p.killGroup(syscall.SIGCONT) //nolint:errcheck // best effort: SIGKILL follows anyway
	p.mu.Unlock()

	deadline := time.NewTimer(p.killAfter)
	defer deadline.Stop()
	select {
	case <-exited:
		// The child is gone, but what it left in its group (a script's
		// background jobs) may still be working on what the lock protects.
		// Its zombie keeps the group id ours until we let it be reaped, so
		// we can wait for them and kill them at the deadline.
		if !p.waitGroupEmpty(deadline.C) {
			p.log.Warn("child's process group still running after kill-after, killing it", "pid", p.pid, "kill_after", p.killAfter)
			p.killGroup(syscall.SIGKILL) //nolint:errcheck // ESRCH is already filtered; nothing else can fail
		}
	case <-deadline.C:
		p.log.Warn("child still running after kill-after, killing it", "pid", p.pid, "kill_after", p.killAfter)
		p.killGroup(syscall.SIGKILL) //nolint:errcheck // ESRCH is already filtered; nothing else can fail
	}
}

// groupPoll is how often waitGroupEmpty looks at /proc: often enough that a
// stopped child's group is released promptly, rarely enough to cost nothing.
const groupPoll = 25 * time.Millisecond

// waitGroupEmpty reports whether every process of the child's group other
// than the child (its zombie) has exited before deadline fires.
func (p *Process) waitGroupEmpty(deadline <-chan time.Time) bool {
	tick := time.NewTicker(groupPoll)
	defer tick.Stop()
	for {
		if !groupHasOthers(p.pid, p.pid) {
			return true
		}
		select {
		case <-deadline:
			return false
		case <-tick.C:
		}
	}
}
