//go:build linux || darwin

package signals

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/locked-run/locked-run/internal/sigaction"
)

// Forwarded are the signals Relay catches: those that ask a program to stop
// (SIGINT, SIGTERM, SIGHUP, SIGQUIT), that programs define for themselves
// (SIGUSR1, SIGUSR2), and the keyboard stop SIGTSTP, which locked-run must
// not obey by itself: sent to locked-run alone (kill -TSTP), it is passed to
// the child and locked-run stops once the child has.
var Forwarded = []os.Signal{
	syscall.SIGINT,
	syscall.SIGTERM,
	syscall.SIGHUP,
	syscall.SIGQUIT,
	syscall.SIGUSR1,
	syscall.SIGUSR2,
	syscall.SIGTSTP,
}

// queue is how many received signals may wait for fn. The kernel keeps at
// most one of each standard signal pending, so a few per kind is plenty.
const queue = 32

// catchable returns the Forwarded signals not ignored when the program
// started (see the package documentation).
func catchable() []os.Signal {
	var caught []os.Signal
	for _, s := range Forwarded {
		if !signal.Ignored(s) {
			caught = append(caught, s)
		}
	}
	return caught
}

// Relay catches the Forwarded signals, except those ignored when the
// program started (see the package documentation), and calls fn once for
// each one received, in the order received, from a single goroutine. A slow
// fn delays later calls; it does not lose signals unless more than a few
// dozen arrive meanwhile.
//
// Relay returns stop, which stops catching (the signals get their default
// behaviour back, unless something else in the program still asks for them),
// calls fn for any signal received before that and not yet handed over, and
// returns once the relay goroutine has exited: after stop returns, fn is not
// called again. stop may be called more than once. Calling Relay again
// before stop is allowed, and each relay sees every signal.
func Relay(fn func(sig syscall.Signal)) (stop func()) {
	ch := make(chan os.Signal, queue)
	if caught := catchable(); len(caught) > 0 {
		signal.Notify(ch, caught...)
	}
	return RelayFrom(ch, func() { signal.Stop(ch) }, fn)
}

// RelayFrom is Relay for signals that something else has been catching into
// ch already (package early, from the program's first moment): what is
// waiting in ch is relayed first, then what arrives, and stop calls release,
// which must stop catching into ch (signal.Stop).
func RelayFrom(ch <-chan os.Signal, release func(), fn func(sig syscall.Signal)) (stop func()) {
	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case s := <-ch:
				fn(s.(syscall.Signal))
			case <-quit:
				// release has returned: nothing more can arrive, so what
				// is buffered is the last of it.
				for {
					select {
					case s := <-ch:
						fn(s.(syscall.Signal))
					default:
						return
					}
				}
			}
		}
	}()

	var once sync.Once
	return func() {
		once.Do(func() {
			release()
			close(quit)
			<-exited
		})
	}
}

// Die makes this process die of sig, the way the child did, so that the
// caller's shell sees death by that signal (a script stops on a child's
// SIGINT only then): the disposition goes back to the kernel's default and
// the signal is raised, with no handler and no goroutine dump in between.
// Where that is impossible (PID 1, whom the kernel protects from its own
// signals, or a signal whose default action is not to terminate), it exits
// 128+sig. It does not return.
func Die(sig syscall.Signal) {
	if os.Getpid() == 1 {
		os.Exit(128 + int(sig))
	}
	sigaction.Die(sig)
}

// Stop stops this process with sig (SIGTSTP when a Ctrl-Z or kill -TSTP is
// to stop locked-run itself) as the signal's default action would, and
// returns once the process is continued. Relay keeps catching sig
// afterwards.
func Stop(sig syscall.Signal) { sigaction.Stop(sig) }
