package lock

import "time"

// A Clock tells time and makes timers. The package never calls time.Now or
// time.After itself, so tests can drive leases with a fake clock instead of
// sleeping. Times returned by Now must carry a monotonic reading (or behave
// as if they did): durations between them decide when a lock is expired.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// A Timer is the subset of *time.Timer the package uses.
type Timer interface {
	// C returns the channel on which the timer delivers its time.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it stopped it.
	Stop() bool
	// Reset changes the timer to fire after d.
	Reset(d time.Duration) bool
}

// SystemClock returns the Clock of the running process. Its readings count
// time the host spent suspended: they advance with CLOCK_BOOTTIME on Linux
// and CLOCK_MONOTONIC on macOS (which, unlike Linux's, goes on during
// sleep), not with Go's monotonic clock, which stops during a suspend. A
// lease's deadline is therefore past the moment the host resumes from a
// suspend longer than what was left of it. Their wall-clock part is the
// wall clock at the first call plus the time elapsed since, so a step of
// the wall clock later (not a slew) is not seen; it is only written into
// records for people and used to judge whether a holder looks stopped.
// Its timers are Go's: they do not count a suspend, which is why the
// renewer wakes up at least every suspendCheck.
func SystemClock() Clock { return sysClock }

var sysClock = newSystemClock(bootTime)

type systemClock struct {
	base  time.Time                    // time.Now() when boot0 was read
	boot0 time.Duration                // boot() then
	boot  func() (time.Duration, bool) // nil: time.Now alone
}

func newSystemClock(boot func() (time.Duration, bool)) systemClock {
	b0, ok := boot()
	if !ok {
		return systemClock{}
	}
	return systemClock{base: time.Now(), boot0: b0, boot: boot}
}

func (c systemClock) Now() time.Time {
	if c.boot == nil {
		return time.Now()
	}
	b, ok := c.boot()
	if !ok {
		return time.Now()
	}
	return c.base.Add(b - c.boot0)
}

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

// suspendCheck is the longest a renewer sleeps without looking at the
// clock: after the host resumes from a suspend, Lost closes within about
// this much running time when the renew deadline passed meanwhile.
const suspendCheck = time.Second

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time        { return t.t.C }
func (t systemTimer) Stop() bool                 { return t.t.Stop() }
func (t systemTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
