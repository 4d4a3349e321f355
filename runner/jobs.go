//go:build linux || darwin

package runner

import (
	"os"

	"golang.org/x/sys/unix"
)

// canStopForShell reports whether stopping this process would be seen by a
// job-control shell, that is, whether our process group is not orphaned: our
// parent is in another group of the same session. The kernel discards
// SIGTSTP, SIGTTIN and SIGTTOU for orphaned groups, and in one nobody would
// continue us anyway (cron, CI, a shell script run without job control).
func canStopForShell() bool {
	ppid := os.Getppid()
	ppgid, err := unix.Getpgid(ppid)
	if err != nil || ppgid == unix.Getpgrp() {
		return false
	}
	psid, err := unix.Getsid(ppid)
	if err != nil {
		return false
	}
	sid, err := unix.Getsid(0)
	return err == nil && psid == sid
}

// inForeground reports whether our process group is the foreground group
// of our controlling terminal, found through /dev/tty whatever our standard
// descriptors are. Without a controlling terminal it is false.
func inForeground() bool {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	fg, err := unix.IoctlGetInt(int(f.Fd()), unix.TIOCGPGRP)
	return err == nil && fg == unix.Getpgrp()
}
