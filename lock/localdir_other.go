//go:build !linux

package lock

import "fmt"

// defaultLocalDir returns the lock directory of uid outside Linux:
// /tmp/locked-run-UID, the same for every process of the user on the host
// (macOS gives each login session its own $TMPDIR, which cron and launchd
// jobs do not share). /tmp is world-writable and sticky, so the directory
// is checked to be the user's own before use. macOS cleans /tmp of files
// untouched for three days: a lock file idle that long may go, and its
// fencing counter with it.
func defaultLocalDir(uid int) string {
	return fmt.Sprintf("/tmp/locked-run-%d", uid)
}
