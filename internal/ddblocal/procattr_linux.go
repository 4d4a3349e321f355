package ddblocal

import "syscall"

// sysProcAttr puts DynamoDB Local in its own process group, so that stop
// kills the JVM and anything it started, and has the kernel kill it if the
// test binary dies without running stop.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
