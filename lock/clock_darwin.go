package lock

import (
	"time"

	"golang.org/x/sys/unix"
)

// bootTime reads CLOCK_MONOTONIC, which on macOS goes on while the system
// sleeps (clock_gettime(3); CLOCK_UPTIME_RAW is the one that stops, and
// Go's own monotonic clock is mach_absolute_time, which stops too).
func bootTime() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
