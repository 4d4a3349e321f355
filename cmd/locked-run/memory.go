package main

import (
	"os"
	"runtime/debug"
	"sync"
)

// settledGCPercent is the garbage collector's GOGC once a run has settled
// into a long phase: waiting for the lock (a poll every --poll) or holding
// it while the command runs (a heartbeat every --heartbeat). Start-up
// allocates about 3 MB and the Go default (GOGC=100, 4 MB minimum heap
// goal) lets it finish without a single collection; a waiter polling five
// times a second would then grow its heap to the 4 MB goal before the
// first collection, and keep it there. At 25 the goal is the live heap
// (about 1 MB) plus a quarter, or 1 MB: a collection every few polls,
// each a fraction of a millisecond of CPU on an otherwise idle process.
const settledGCPercent = 25

var settleOnce sync.Once

// settleMemory lowers the garbage collector's target once the run is past
// its start-up, unless GOGC or GOMEMLIMIT in the environment say
// otherwise. It is called when the wait for the lock begins and a while
// after the command starts, never on the short path of a run whose
// command ends at once, which it would only slow down. Safe to call more
// than once and from any goroutine.
func settleMemory() {
	settleOnce.Do(func() {
		if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
			return
		}
		debug.SetGCPercent(settledGCPercent)
	})
}
