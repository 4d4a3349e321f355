package lock

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// defaultLocalDir returns the lock directory of uid on Linux:
// /run/lock/locked-run-UID where /run/lock is the world-writable sticky
// directory that Debian and Ubuntu make it (and always for root), and
// /dev/shm/locked-run-UID otherwise (Fedora and RHEL keep /run/lock for
// root). Both are tmpfs, the same for every process of the host: neither
// depends on $XDG_RUNTIME_DIR or $TMPDIR (which differ between a login
// shell, cron and sudo), nor on systemd's PrivateTmp (which gives a service
// its own /tmp). The choice depends only on how the host set up /run/lock,
// never on what this process may write, so that every context of a user
// agrees on it; a service under ProtectSystem=strict must be given
// ReadWritePaths= for it. Being tmpfs, both start empty at boot, and fencing
// counters with them.
func defaultLocalDir(uid int) string {
	base := "/dev/shm"
	var st unix.Stat_t
	if uid == 0 || unix.Stat("/run/lock", &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR &&
		st.Mode&0o1777 == 0o1777 && st.Uid == 0 {
		base = "/run/lock"
	}
	if uid == 0 {
		if _, err := os.Stat(base); err != nil {
			base = "/dev/shm"
		}
	}
	return fmt.Sprintf("%s/locked-run-%d", base, uid)
}
