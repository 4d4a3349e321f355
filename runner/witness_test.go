package runner

import (
	"syscall"
	"testing"
	"time"
)

// TestWitnessCoalescedCopies holds witnessed's rule for two copies of a
// signal sent together (a hangup: bash's SIGHUP and the kernel's) of which
// the guardian saw one: the differential hangup scenarios met it as a third
// SIGHUP passed on to the command 150 ms late.
func TestWitnessCoalescedCopies(t *testing.T) {
	ready := func(heard ...heardSignal) *guardian {
		return &guardian{ready: true, heard: heard, wake: make(chan struct{})}
	}
	t.Run("a report witnesses one copy, at once", func(t *testing.T) {
		g := ready(heardSignal{sig: syscall.SIGHUP, at: time.Now()})
		start := time.Now()
		if got, ok := g.witnessed(syscall.SIGHUP); !got || !ok {
			t.Fatalf("witnessed = %v, %v; want true, true", got, ok)
		}
		if d := time.Since(start); d >= witnessAhead {
			t.Errorf("took %v; a report at hand answers at once", d)
		}
		if !g.heard[0].used {
			t.Errorf("the report is not marked used")
		}
	})
	t.Run("a second copy taken up just after is the group's too", func(t *testing.T) {
		g := ready(heardSignal{sig: syscall.SIGHUP, at: time.Now()})
		g.witnessed(syscall.SIGHUP)
		if got, ok := g.witnessed(syscall.SIGHUP); !got || !ok {
			t.Fatalf("second copy: witnessed = %v, %v; want true, true", got, ok)
		}
	})
	t.Run("a copy taken up later than witnessAhead after the report is ours alone", func(t *testing.T) {
		g := ready(heardSignal{sig: syscall.SIGHUP, at: time.Now().Add(-witnessAhead - 50*time.Millisecond), used: true})
		if got, ok := g.witnessed(syscall.SIGHUP); got || !ok {
			t.Fatalf("witnessed = %v, %v; want false, true", got, ok)
		}
	})
	t.Run("a used report of another signal witnesses nothing", func(t *testing.T) {
		g := ready(heardSignal{sig: syscall.SIGINT, at: time.Now(), used: true})
		if got, ok := g.witnessed(syscall.SIGHUP); got || !ok {
			t.Fatalf("witnessed = %v, %v; want false, true", got, ok)
		}
	})
	t.Run("two reports witness two copies, each its own", func(t *testing.T) {
		now := time.Now()
		g := ready(heardSignal{sig: syscall.SIGINT, at: now}, heardSignal{sig: syscall.SIGINT, at: now})
		for i := range 2 {
			start := time.Now()
			if got, ok := g.witnessed(syscall.SIGINT); !got || !ok {
				t.Fatalf("copy %d: witnessed = %v, %v; want true, true", i+1, got, ok)
			}
			if d := time.Since(start); d >= witnessAhead {
				t.Errorf("copy %d took %v; its own report was at hand", i+1, d)
			}
		}
	})
}
