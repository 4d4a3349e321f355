package runner

import (
	"bytes"
	"os"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// siginfoChild returns si_pid and si_status of a SIGCHLD siginfo, which
// x/sys/unix leaves in the opaque union. The union starts after the three
// int fields, aligned for a pointer.
func siginfoChild(info *unix.Siginfo) (pid, status int32) {
	align := unsafe.Alignof(uintptr(0))
	off := (3*unsafe.Sizeof(int32(0)) + align - 1) &^ (align - 1)
	base := unsafe.Add(unsafe.Pointer(info), off)
	return *(*int32)(base), *(*int32)(unsafe.Add(base, 8))
}

// groupHasOthers reports whether a live (not zombie) process other than
// except belongs to process group pgrp, by reading /proc.
func groupHasOthers(pgrp, except int) bool {
	d, err := os.Open("/proc")
	if err != nil {
		return false
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return false
	}
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == except {
			continue
		}
		stat, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid pgrp ...": comm may hold spaces and
		// parentheses, so the fields are counted from the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(stat[i+1:])
		if len(f) < 3 || f[0][0] == 'Z' || f[0][0] == 'X' {
			continue
		}
		if g, err := strconv.Atoi(string(f[2])); err == nil && g == pgrp {
			return true
		}
	}
	return false
}
