package lock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLeaseValid(t *testing.T) {
	t.Run("a renewed lease stays valid and its deadline moves with each heartbeat", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire", "heartbeat")
		l := mustAcquire(t, newUnitDynamo(t, f, clk), "deploy")
		if !l.Valid() {
			t.Fatal("a fresh lease is not valid")
		}
		for i := 1; i <= 3; i++ {
			clk.step(t, 1, time.Second)
			f.waitCalls(t, "heartbeat", i)
			// The renewer records the new deadline right after the write.
			deadline := time.Now().Add(waitLimit)
			for !l.Valid() && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if !l.Valid() {
				t.Fatalf("lease not valid after heartbeat %d", i)
			}
		}
	})

	t.Run("a lease is invalid as soon as its renew deadline passes, before Lost closes", func(t *testing.T) {
		clk := newFakeClock()
		f := newFakeTable(t, clk, "acquire")
		l := mustAcquire(t, newUnitDynamo(t, f, clk), "deploy")
		// A stopped process: the clock jumps past the renew deadline with
		// no heartbeat sent. Valid must say so at once, whatever the
		// renewer goroutine has done yet.
		clk.Advance(unitRenewDeadline)
		if l.Valid() {
			t.Fatal("lease valid at its renew deadline")
		}
		select {
		case <-l.Lost():
		case <-time.After(waitLimit):
			t.Fatal("Lost not closed after the renew deadline")
		}
	})

	t.Run("a local lease is valid until released", func(t *testing.T) {
		l := acquire(t, newTestLocal(t, t.TempDir()), "k", AcquireOptions{})
		if !l.Valid() {
			t.Fatal("local lease not valid")
		}
		l.Release(context.Background())
	})
}

func TestTimingOverflow(t *testing.T) {
	huge := 2562047 * time.Hour // the largest whole number of hours a Duration holds
	for _, tm := range []Timing{
		{Lease: 30 * time.Second, Heartbeat: 10 * time.Second, KillAfter: huge},
		{Lease: huge, Heartbeat: huge, KillAfter: huge},
		{Lease: 30 * time.Second, Heartbeat: huge, KillAfter: 10 * time.Second},
	} {
		if _, err := tm.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Validate(%+v) = %v, want it refused: the sum overflows", tm, err)
		}
	}
}
