package lock

import (
	"fmt"
	"math"
	"time"
)

// Defaults for Timing. They are the contract's defaults.
const (
	// DefaultLease is how long a lock survives its holder's silence: long
	// enough to ride out a DynamoDB hiccup of several seconds without
	// stopping a child, short enough that a crashed holder's key is free
	// again within half a minute.
	DefaultLease = 30 * time.Second

	// DefaultKillAfter is the grace the caller gives its child between
	// SIGTERM and SIGKILL; terraform needs a few seconds to write state.
	DefaultKillAfter = 10 * time.Second

	// DefaultPoll is how often a waiter reads the item again. A released
	// lock is seen on average half a poll (jittered) plus one round trip
	// after its release: about 100 ms at the median, for 5 strongly
	// consistent reads a second per waiter (300 a minute, 1 read unit each).
	DefaultPoll = 200 * time.Millisecond

	// minMargin is the least safety margin, whatever the lease. It covers
	// scheduling delay between Lost closing and the caller sending
	// SIGKILL, and the kernel reaping the child.
	minMargin = 250 * time.Millisecond
)

// Timing holds the durations that decide safety. Zero fields take defaults:
// Lease DefaultLease, Heartbeat Lease/3, KillAfter DefaultKillAfter, Poll
// DefaultPoll.
type Timing struct {
	// Lease is how long the lock survives without a heartbeat.
	Lease time.Duration
	// Heartbeat is how often the holder renews.
	Heartbeat time.Duration
	// KillAfter is how long the caller needs, once Lost is closed, to stop
	// what the lock protects. The lease is declared lost that much (plus
	// Margin) before any waiter could take it over.
	KillAfter time.Duration
	// Poll is how often a waiter looks at a held key again (jittered).
	Poll time.Duration
}

// Margin returns the safety margin kept between the moment the holder's
// caller must have finished stopping its child and the first moment a waiter
// could take over: a tenth of the lease, and at least 250 ms. It absorbs
// scheduling delays and the rate difference between two hosts' clocks.
func (t Timing) Margin() time.Duration {
	return max(t.Lease/10, minMargin)
}

// withDefaults returns t with zero fields filled in.
func (t Timing) withDefaults() Timing {
	if t.Lease == 0 {
		t.Lease = DefaultLease
	}
	if t.Heartbeat == 0 {
		t.Heartbeat = t.Lease / 3
	}
	if t.KillAfter == 0 {
		t.KillAfter = DefaultKillAfter
	}
	if t.Poll == 0 {
		t.Poll = DefaultPoll
	}
	return t
}

// Validate fills in defaults and checks that the lease is long enough for
// the heartbeat and kill grace. The error names the command-line flags
// involved, since that is where users set them.
func (t Timing) Validate() (Timing, error) {
	t = t.withDefaults()
	switch {
	case t.Lease < 0 || t.Heartbeat < 0 || t.KillAfter < 0 || t.Poll < 0:
		return t, fmt.Errorf("%w: durations must be positive", ErrInvalidConfig)
	case t.Lease <= addSat(addSat(t.Heartbeat, t.KillAfter), t.Margin()):
		return t, fmt.Errorf("%w: --lease %s must exceed --heartbeat %s + --kill-after %s + margin %s",
			ErrInvalidConfig, t.Lease, t.Heartbeat, t.KillAfter, t.Margin())
	}
	return t, nil
}

// addSat adds two non-negative durations, saturating at the largest
// Duration instead of overflowing into a negative one (--kill-after
// 2562047h plus anything would).
func addSat(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// renewDeadline returns how long after the send time of the last successful
// write the holder may go on assuming it holds the lock.
func (t Timing) renewDeadline() time.Duration {
	return t.Lease - t.KillAfter - t.Margin()
}
