package main

import (
	"runtime/debug"
	"sync"
	"testing"
)

func TestSettleMemoryLowersTheGCTarget(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	settleOnce = sync.Once{} // another test's run may have settled already
	settleMemory()
	if got := debug.SetGCPercent(100); got != settledGCPercent {
		t.Errorf("GOGC after settleMemory = %d, want %d", got, settledGCPercent)
	}
}

func TestSettleMemoryLeavesGOGCFromTheEnvironment(t *testing.T) {
	t.Setenv("GOGC", "200")
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	settleOnce = sync.Once{}
	settleMemory()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC after settleMemory with GOGC set = %d, want it left at 100", got)
	}
}
