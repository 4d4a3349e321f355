package proctree

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

// State returns the state letter of /proc/PID/stat ('R', 'S', 'T',
// 'Z', ...), or 0 when the process does not exist.
func State(pid int) byte {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses, so
	// the state is found after the last ')'.
	i := len(stat) - 1
	for i >= 0 && stat[i] != ')' {
		i--
	}
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}

// HasMarker reports whether the environment pid was started with holds the
// entry marker ("NAME=value") exactly.
func HasMarker(pid int, marker string) bool {
	if marker == "" {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for len(b) > 0 {
		entry, rest := b, []byte(nil)
		if i := indexByte(b, 0); i >= 0 {
			entry, rest = b[:i], b[i+1:]
		}
		if string(entry) == marker {
			return true
		}
		b = rest
	}
	return false
}

// All returns every process id in /proc.
func All() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	out := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// readDeferred reports, from a goroutine, each of sigs that becomes
// pending, through a signalfd. The signals must be blocked in every thread,
// as they are in the guardian, which inherits them blocked and never asks
// os/signal for them.
func readDeferred(sigs []syscall.Signal, report func(syscall.Signal)) error {
	// The kernel's sigset_t: unsigned longs (Go's uint), signal n at bit
	// n-1; 64 signals, 128 on MIPS.
	const wordBits = 32 << (^uint(0) >> 63)
	var set [128 / wordBits]uint
	for _, sig := range sigs {
		n := uint(sig) - 1
		set[n/wordBits] |= 1 << (n % wordBits)
	}
	size := uintptr(64 / 8)
	switch runtime.GOARCH {
	case "mips", "mipsle", "mips64", "mips64le":
		size = 128 / 8
	}
	r, _, errno := syscall.Syscall6(syscall.SYS_SIGNALFD4, ^uintptr(0), uintptr(unsafe.Pointer(&set)), size, syscall.O_CLOEXEC, 0, 0)
	if errno != 0 {
		return errno
	}
	fd := int(r)
	go func() {
		// struct signalfd_siginfo is 128 bytes; ssi_signo comes first.
		buf := make([]byte, 128)
		for {
			n, err := syscall.Read(fd, buf)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || n < 4 {
				return
			}
			report(syscall.Signal(*(*uint32)(unsafe.Pointer(&buf[0]))))
		}
	}()
	return nil
}

// Anonymous reports whether pid runs with no environment that can be read:
// it scrubbed it (env -i), it is in the middle of an exec (the new program's
// environment is not in place until the exec is nearly done), or we may not
// inspect it. Zombies and processes that do not exist are not anonymous.
func Anonymous(pid int) bool {
	if st := State(pid); st == 0 || st == 'Z' || st == 'X' {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) && State(pid) != 'Z'
	}
	return len(b) == 0 && State(pid) != 'Z'
}
