package lock

import (
	"sort"
	"sync"
	"testing"
	"time"
)

// waitLimit bounds every wait on another goroutine in the unit tests, in
// real time: far longer than anything should take, short enough that a
// hang fails fast.
const waitLimit = 10 * time.Second

// fakeClock is a Clock that moves only when the test says so. Timers fire,
// in order of their deadlines, as Advance passes them.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever a timer is armed
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	t.arm(d)
	return t
}

// Advance moves the clock by d, firing each timer whose deadline it passes
// with the clock set to that deadline.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	target := c.now.Add(d)
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if t.active && !t.when.After(target) && (next == nil || t.when.Before(next.when)) {
				next = t
			}
		}
		if next == nil {
			break
		}
		if next.when.After(c.now) {
			c.now = next.when
		}
		next.fire()
	}
	c.now = target
}

// pending returns the number of armed timers, and the deadlines.
func (c *fakeClock) pending() (int, []time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var in []time.Duration
	for _, t := range c.timers {
		if t.active {
			in = append(in, t.when.Sub(c.now))
		}
	}
	sort.Slice(in, func(i, j int) bool { return in[i] < in[j] })
	return len(in), in
}

// waitTimers waits until at least n timers are armed: the goroutines under
// test have done what they do and are waiting for time to pass.
func (c *fakeClock) waitTimers(t testing.TB, n int) {
	t.Helper()
	c.waitTimersOr(t, n, nil)
}

// waitTimersOr is waitTimers that also returns, with true, once done is
// closed: when what the test waits for has happened instead.
func (c *fakeClock) waitTimersOr(t testing.TB, n int, done <-chan struct{}) bool {
	t.Helper()
	limit := time.NewTimer(waitLimit)
	defer limit.Stop()
	for {
		select {
		case <-done:
			return true
		default:
		}
		c.mu.Lock()
		armed := 0
		for _, tm := range c.timers {
			if tm.active {
				armed++
			}
		}
		ch := c.changed
		c.mu.Unlock()
		if armed >= n {
			return false
		}
		select {
		case <-ch:
		case <-done:
			return true
		case <-limit.C:
			t.Fatalf("fake clock: waited %s for %d armed timers, have %d", waitLimit, n, armed)
			return false
		}
	}
}

// run advances the clock by step whenever n timers are armed, until done
// is closed or the clock has moved by limit (which fails the test). each,
// if not nil, is called before every step with the time advanced so far.
func (c *fakeClock) run(t testing.TB, n int, step, limit time.Duration, done <-chan struct{}, each func(elapsed time.Duration)) {
	t.Helper()
	for elapsed := time.Duration(0); ; elapsed += step {
		if c.waitTimersOr(t, n, done) {
			return
		}
		if elapsed >= limit {
			t.Fatalf("fake clock: nothing happened in %s of fake time", limit)
		}
		if each != nil {
			each(elapsed)
		}
		c.Advance(step)
	}
}

// step waits until n timers are armed and then advances the clock by d.
func (c *fakeClock) step(t testing.TB, n int, d time.Duration) {
	t.Helper()
	c.waitTimers(t, n)
	c.Advance(d)
}

// since returns how long after start the clock is.
func (c *fakeClock) since(start time.Time) time.Duration { return c.Now().Sub(start) }

type fakeTimer struct {
	c      *fakeClock
	ch     chan time.Time
	when   time.Time
	active bool
}

// arm sets the deadline; the clock's mutex is held.
func (t *fakeTimer) arm(d time.Duration) {
	t.when = t.c.now.Add(d)
	t.active = true
	if d <= 0 {
		t.fire()
		return
	}
	close(t.c.changed)
	t.c.changed = make(chan struct{})
}

// fire delivers the time, as time.Timer does, without blocking.
func (t *fakeTimer) fire() {
	t.active = false
	select {
	case t.ch <- t.c.now:
	default:
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	// Like time.Timer since Go 1.23: no stale value after Reset.
	select {
	case <-t.ch:
	default:
	}
	t.arm(d)
	return was
}

// offsetClock is a Clock whose wall time is off by a fixed amount, as on a
// host with a wrong clock; durations between its times are unaffected.
type offsetClock struct {
	Clock
	off time.Duration
}

func (c offsetClock) Now() time.Time { return c.Clock.Now().Add(c.off) }
