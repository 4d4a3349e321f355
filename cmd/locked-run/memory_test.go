package main

import (
	"runtime/debug"
	"testing"
)

func TestSettleMemoryLowersTheGCTarget(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	settleMemory()
	if got := debug.SetGCPercent(100); got != settledGCPercent {
		t.Errorf("GOGC after settleMemory = %d, want %d", got, settledGCPercent)
	}
}
