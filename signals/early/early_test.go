package early

import (
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/locked-run/locked-run/internal/proctree"
	"github.com/locked-run/locked-run/signals"
)

// The package cannot import these without initialising later; their values
// must match.
func TestSameAsTheirSources(t *testing.T) {
	if guardianEnv != proctree.Env {
		t.Errorf("guardianEnv %q, proctree.Env %q", guardianEnv, proctree.Env)
	}
	for _, s := range signals.Forwarded {
		if !slices.Contains(Signals, s) {
			t.Errorf("%v is forwarded but not caught early", s)
		}
	}
	if len(Signals) != len(signals.Forwarded) {
		t.Errorf("caught early %v, forwarded %v", Signals, signals.Forwarded)
	}
}

// Once Caught has returned, each signal of Signals sent to this process
// arrives on its channel; none stops or kills the process, as the default
// action of each would (SIGQUIT: the runtime's goroutine dump).
func TestCaughtThenEverySignalArrives(t *testing.T) {
	c, _ := caught()
	if c == nil {
		t.Fatal("Caught returned no channel")
	}
	if again, _ := Caught(); again != nil {
		t.Error("a second Caught returned a channel too")
	}
	for _, s := range Signals {
		sig := s.(syscall.Signal)
		if signal.Ignored(sig) {
			t.Logf("%v is ignored by whoever started the test: not caught, as designed", sig)
			continue
		}
		if err := syscall.Kill(os.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-c:
			if got != sig {
				t.Errorf("sent %v, caught %v", sig, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%v was not caught", sig)
		}
	}
}

// caught is the test binary's one Caught, for -count above 1.
var caught = sync.OnceValues(Caught)
