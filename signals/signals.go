package signals

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Forwarded are the signals Relay catches: those that ask a program to stop
// (SIGINT, SIGTERM, SIGHUP, SIGQUIT) or that programs define for themselves
// (SIGUSR1, SIGUSR2). locked-run passes each one it receives on to the child.
var Forwarded = []os.Signal{
	syscall.SIGINT,
	syscall.SIGTERM,
	syscall.SIGHUP,
	syscall.SIGQUIT,
	syscall.SIGUSR1,
	syscall.SIGUSR2,
}

// queue is how many received signals may wait for fn. The kernel keeps at
// most one of each standard signal pending, so a few per kind is plenty.
const queue = 32

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
	var caught []os.Signal
	for _, s := range Forwarded {
		if !signal.Ignored(s) {
			caught = append(caught, s)
		}
	}
	if len(caught) > 0 {
		signal.Notify(ch, caught...)
	}

	quit := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case s := <-ch:
				fn(s.(syscall.Signal))
			case <-quit:
				// signal.Stop has returned: nothing more can arrive, so
				// what is buffered is the last of it.
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
			signal.Stop(ch)
			close(quit)
			<-exited
		})
	}
}
