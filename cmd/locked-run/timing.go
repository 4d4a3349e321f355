package main

import (
	"errors"

	"github.com/locked-run/locked-run/lock"
)

// validTiming fills in the defaults of t and checks the lease rule, the same
// way for both backends: a configuration tried on --local must not fail
// later on DynamoDB. The message prints durations as people write them
// ("3.3s", not "3.333333333s") and says what to change.
func validTiming(t lock.Timing) (lock.Timing, error) {
	full, err := t.Validate()
	if err == nil {
		return full, nil
	}
	if errors.Is(err, lock.ErrInvalidConfig) && full.Lease <= full.Heartbeat+full.KillAfter+full.Margin() {
		return full, usagef("--lease %s must exceed --heartbeat %s + --kill-after %s + margin %s: give a longer --lease, or a shorter --heartbeat or --kill-after",
			describeDuration(full.Lease), describeDuration(full.Heartbeat), describeDuration(full.KillAfter), describeDuration(full.Margin()))
	}
	return full, usageError{detail(err, lock.ErrInvalidConfig)}
}
