//go:build !linux && !darwin

package lock

import "time"

// bootTime is not available here: the system clock is time.Now alone.
func bootTime() (time.Duration, bool) { return 0, false }
