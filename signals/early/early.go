//go:build linux || darwin

// Package early catches locked-run's signals as soon as the program's own
// code runs. A program imports it for its side effect; it depends on
// nothing but the standard library's os/signal, so its init runs right after
// that package's, before most of the standard library's and all of the AWS
// SDK's initialisation. Until then a SIGQUIT is answered by the Go runtime's
// goroutine dump, and SIGINT or SIGTERM by dying without a trace in the log.
// SIGQUIT is caught in the init itself; the others from a goroutine it
// starts, while the rest of the program initialises.
//
// What it catches is handed over to signals.RelayFrom (see Caught), which
// goes on relaying from the same channel, so no signal is lost or seen twice
// at the hand-over. It also keeps a broken pipe on our own stdout or stderr
// (`2>&1 | head -1`) from killing us: with SIGPIPE notified, the runtime lets
// the write fail with EPIPE instead. A handler, unlike an ignore, is not
// inherited by the child, which gets the default SIGPIPE it would get
// without us.
package early

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// Signals are those caught, SIGQUIT first: enabling a signal is a round
// trip to the runtime's signal thread, and until SIGQUIT is enabled the
// runtime answers it with a goroutine dump. The set is signals.Forwarded
// (a test checks), which this package cannot import without initialising
// later.
var Signals = []os.Signal{
	syscall.SIGQUIT, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTSTP,
}

// guardianEnv is the runner's proctree.Env (a test checks): the guardian is
// this program started again, catches signals of its own and must see each
// one, so nothing may hold them back for a relay it never starts.
const guardianEnv = "LOCKED_RUN_GUARDIAN"

// queue is how many signals may wait before the relay takes over.
const queue = 32

var (
	mu   sync.Mutex
	ch   chan os.Signal
	pipe = make(chan os.Signal, 1)
	// enabled is closed once every signal is caught (see init).
	enabled = make(chan struct{})
)

func init() {
	if _, guardian := os.LookupEnv(guardianEnv); guardian {
		close(enabled)
		return
	}
	ch = make(chan os.Signal, queue)
	// SIGQUIT here, before any other package's init: until it is caught,
	// the runtime answers it with a goroutine dump.
	notify(syscall.SIGQUIT)
	// The others on a goroutine of their own, beside the rest of the
	// program's initialisation: each is a round trip to the runtime's
	// signal thread, together about 0.3 ms that the start-up waited
	// for. Until one is caught it acts as it would on any program just
	// started (a SIGINT kills us before any work was done; nothing is
	// held yet).
	go func() {
		defer close(enabled)
		for _, s := range Signals[1:] {
			notify(s)
		}
		signal.Notify(pipe, syscall.SIGPIPE)
	}()
}

// notify catches s into ch, unless it was ignored when the program started:
// such an ignore stays (Go keeps one for SIGHUP and SIGINT), so the child
// inherits it.
func notify(s os.Signal) {
	if !signal.Ignored(s) {
		signal.Notify(ch, s)
	}
}

// Caught returns the channel the signals have been caught into since the
// program started, and release, which stops catching them; the caller
// relays from the channel from now on. It returns a nil channel in the
// guardian, or when called a second time.
func Caught() (c <-chan os.Signal, release func()) {
	<-enabled
	mu.Lock()
	defer mu.Unlock()
	if ch == nil {
		return nil, nil
	}
	mine := ch
	ch = nil
	return mine, func() { signal.Stop(mine) }
}

// DefaultPipe stops catching SIGPIPE: a write to a closed stdout or stderr
// kills the program by SIGPIPE again, silently, as it does any Unix filter.
// A command whose job is to print (status, list) calls it, so that
// `locked-run status | grep -q held` ends quietly when grep has seen enough.
func DefaultPipe() {
	<-enabled
	signal.Reset(syscall.SIGPIPE)
}
