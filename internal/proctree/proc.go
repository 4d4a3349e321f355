//go:build linux || darwin

package proctree

// Proc is one row of the process table, as macOS's Table reads it (the
// runner's darwin tree walk uses it; it is shared so that the walk is
// tested on Linux too).
type Proc struct {
	Pid, Ppid, Pgid int
	Uid             uint32 // effective user id
	State           byte   // as State returns it
}
