package ddblocal

import "syscall"

// sysProcAttr puts DynamoDB Local in its own process group, so that stop
// kills the JVM and anything it started. macOS has no parent-death signal:
// a test binary killed before stop runs leaves the JVM running (it holds
// only an in-memory database on a loopback port) until it is killed by hand.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
