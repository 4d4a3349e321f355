package lock

import (
	"context"
	"testing"
	"time"
)

// Suspend moves the clock by d without firing any timer, and pushes every
// armed timer's deadline back by d: what a host suspend does to a clock
// that counts it (CLOCK_BOOTTIME) and to Go's timers, which do not.
func (c *fakeClock) Suspend(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if t.active {
			t.when = t.when.Add(d)
		}
	}
}

// Issue 9, point 3.
func TestSuspend(t *testing.T) {
	t.Run("the system clock follows a clock that counts suspend", func(t *testing.T) {
		boot := time.Hour
		c := newSystemClock(func() (time.Duration, bool) { return boot, true })
		before := c.Now()
		boot += 2 * time.Hour // the host slept for two hours
		if got := c.Now().Sub(before); got != 2*time.Hour {
			t.Fatalf("the system clock moved %s across a 2h suspend, want 2h", got)
		}
		real := SystemClock().Now()
		if d := time.Since(real); d < -time.Second || d > time.Second {
			t.Errorf("SystemClock().Now() is %s off time.Now()", d)
		}
	})

	t.Run("a lease is invalid at once after a suspend past its deadline and Lost closes within a second", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "heartbeat", "release")
		d, err := NewDynamo(DynamoConfig{Client: f, Table: fakeTableName, Clock: clk,
			Timing: Timing{Lease: 30 * time.Second, Heartbeat: 10 * time.Second, KillAfter: 10 * time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		l := mustAcquire(t, d, "deploy")
		t.Cleanup(func() { _ = l.Release(context.Background()) })
		clk.waitTimers(t, 1)
		clk.Suspend(time.Minute)
		if l.Valid() {
			t.Error("Valid after a suspend longer than the lease")
		}
		clk.Advance(suspendCheck)
		select {
		case <-l.Lost():
		case <-time.After(waitLimit):
			t.Fatal("Lost not closed within a second of running time after the resume")
		}
		if n := len(f.callsOf("heartbeat")); n != 0 {
			t.Errorf("%d heartbeats sent past the deadline", n)
		}
	})
}
