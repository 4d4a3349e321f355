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

// SystemClock returns the Clock of the running process: time.Now and
// time.NewTimer.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time        { return t.t.C }
func (t systemTimer) Stop() bool                 { return t.t.Stop() }
func (t systemTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }
