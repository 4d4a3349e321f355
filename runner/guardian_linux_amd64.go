//go:build linux && amd64

package runner

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The guardian as a fork without exec. Started as a second copy of
// locked-run, the guardian is a second start of a 14 MB Go program: 1.8 ms
// of CPU and 313 page faults per run, most of it the Go runtime's own
// start, on the two CPUs that our start and the lock's requests need. On
// linux/amd64 the guardian is instead this process forked, running
// guardian_linux_amd64.s and nothing else: the fork, and the guardian's
// whole life, cost a few system calls. `-t T -- true` went from 4.9× to
// 4.5× flock with it, `--local -- true` from 2.9× to 2.6× (BENCHMARKS.md,
// seventh pass).
//
// A plain fork of a Go program is slow: every page the runtime writes
// afterwards is shared with the child and must be copied first, with a TLB
// flush on the other CPU (measured: a run 0.3× flock slower than with the
// exec'd guardian). So the parent first marks every writable mapping but
// the few the guardian needs MADV_DONTFORK (dontFork): the fork copies
// almost nothing, and the parent's next writes find no page shared.
// Where the fork cannot be made, or the guardian dies before it says it is
// ready, the guardian is locked-run again, as on every other platform.
//
// The same machine code run as a program of its own, from an executable
// written into a memfd, was 0.1× flock faster still (no fork of this
// process's page tables), and was dropped: executing from a memfd is what
// security monitors (Falco's "Fileless execution via memfd_create") report
// as an attack, every run, and vm.memfd_noexec=2 forbids it.

// guardianRegionSize is the guardian's memory (guardian_linux_amd64.s has
// the layout): its variables and buffers, forkGuardian's parameters, a
// stack.
const guardianRegionSize = 0x14000

// Offsets in the region, as the assembly has them.
const (
	paramNull    = 0x10000
	paramCtl     = 0x10008
	paramRep     = 0x10010
	paramArgs    = 0x10018
	paramArgsLen = 0x10020
	paramEnv     = 0x10028
	paramEnvLen  = 0x10030
)

func rawForkGuardian(region, stack uintptr) (pid, errno uintptr)

// forkGuardians says whether startGuardian forks its guardian where it can;
// tests of the other turn it off. breakForkedGuardian makes a forked one
// die at its start, as one refused a system call would.
var forkGuardians, breakForkedGuardian = true, false

var guardianRegion struct {
	sync.Mutex
	mem []byte // never written by a guardian: its copy is its own
}

// forkGuardian forks the guardian, with ctl and rep as its descriptors 3
// and 4, and returns its pid.
func forkGuardian(ctl, rep *os.File) (int, error) {
	if !forkGuardians {
		return 0, errors.ErrUnsupported
	}
	guardianRegion.Lock()
	defer guardianRegion.Unlock()
	if guardianRegion.mem == nil {
		// Between two inaccessible pages, so that the kernel never merges
		// it with a mapping of the runtime's: that one would be copied by
		// every fork too.
		const page = 4096
		mem, err := unix.Mmap(-1, 0, guardianRegionSize+2*page, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return 0, os.NewSyscallError("mmap", err)
		}
		mem = mem[page : page+guardianRegionSize]
		if err := unix.Mprotect(mem, unix.PROT_READ|unix.PROT_WRITE); err != nil {
			return 0, os.NewSyscallError("mprotect", err)
		}
		guardianRegion.mem = mem
	}
	mem := guardianRegion.mem
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	le := binary.LittleEndian
	le.PutUint64(mem[paramNull:], uint64(null.Fd()))
	ctlFd := uint64(ctl.Fd())
	if breakForkedGuardian {
		ctlFd = ^uint64(0) // no such descriptor: the guardian exits at once
	}
	le.PutUint64(mem[paramCtl:], ctlFd)
	le.PutUint64(mem[paramRep:], uint64(rep.Fd()))
	for i, v := range stackStrings() {
		le.PutUint64(mem[paramArgs+8*i:], uint64(v))
	}
	region := uintptr(unsafe.Pointer(&mem[0]))

	// The mask and the thread pointer are the thread's: hold the thread
	// from reading them to the fork.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var tp uintptr
	if _, _, errno := unix.Syscall(unix.SYS_ARCH_PRCTL, archGetFS, uintptr(unsafe.Pointer(&tp)), 0); errno != 0 {
		tp = 0
	}
	dontFork(region, tp)
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &all, &old); err != nil {
		return 0, os.NewSyscallError("rt_sigprocmask", err)
	}
	pid, errno := rawForkGuardian(region, region+guardianRegionSize-64)
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) //nolint:errcheck // restoring the mask just read
	runtime.KeepAlive(ctl)
	runtime.KeepAlive(rep)
	if errno != 0 {
		return 0, os.NewSyscallError("fork", syscall.Errno(errno))
	}
	return int(pid), nil
}

// stackStrings returns where the kernel put this process's arguments and
// its environment, one after the other (where /proc/PID/cmdline and
// environ read them), and their lengths: arg_start, arg_end - arg_start,
// env_start, env_end - env_start of /proc/self/stat. Zeros when they
// cannot be read or are not one block: the guardian then shows ours.
func stackStrings() (v [4]uintptr) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return v
	}
	// Fields 48 to 51, counted from the state, the first after the
	// command's name, which may hold spaces and parentheses.
	f := bytes.Fields(stat[bytes.LastIndexByte(stat, ')')+1:])
	if len(f) < 49 {
		return v
	}
	var n [4]uintptr
	for i := range n {
		for _, c := range f[45+i] {
			if c < '0' || c > '9' {
				return v
			}
			n[i] = n[i]*10 + uintptr(c-'0')
		}
	}
	if n[1] < n[0] || n[2] != n[1] || n[3] < n[2] {
		return v // not one block: the guardian shows ours
	}
	return [4]uintptr{n[0], n[1] - n[0], n[2], n[3] - n[2]}
}

// archGetFS is arch_prctl's ARCH_GET_FS: the calling thread's thread
// pointer.
const archGetFS = 0x1003

// dontFork marks every private writable mapping of this process
// MADV_DONTFORK, but the process stack (where the arguments are), the
// guardian's region and, when the C library is loaded (a build with cgo,
// what `go install` makes), the mapping that holds the forking thread's
// thread pointer tp: the C library registers a restartable sequence area
// there (rseq(2)), which the kernel writes each time the guardian returns
// from a system call, and a guardian without it dies of SIGSEGV at once. A
// mapping it cannot read or mark is copied by the fork as usual: slower,
// not wrong.
func dontFork(region, tp uintptr) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return
	}
	type mapping struct {
		lo, hi   uintptr
		writable bool // private and writable
		keep     bool
	}
	var all []mapping
	libc := false
	for len(maps) > 0 {
		line := maps
		if i := bytes.IndexByte(maps, '\n'); i >= 0 {
			line, maps = maps[:i], maps[i+1:]
		} else {
			maps = nil
		}
		// "start-end perms offset dev inode path"
		var m mapping
		i := 0
		for ; i < len(line) && line[i] != '-'; i++ {
			m.lo = m.lo<<4 | hexValue(line[i])
		}
		for i++; i < len(line) && line[i] != ' '; i++ {
			m.hi = m.hi<<4 | hexValue(line[i])
		}
		m.writable = i+5 <= len(line) && string(line[i+1:i+5]) == "rw-p"
		m.keep = (m.lo <= region && region < m.hi) || bytes.HasSuffix(line, []byte("[stack]"))
		libc = libc || bytes.Contains(line, []byte("/libc.so")) || bytes.Contains(line, []byte("/libc-"))
		all = append(all, m)
	}
	for _, m := range all {
		if !m.writable {
			continue
		}
		advice := uintptr(unix.MADV_DONTFORK)
		if m.keep || (libc && m.lo <= tp && tp < m.hi) {
			// Marked by an earlier fork, from another thread maybe.
			advice = unix.MADV_DOFORK
		}
		unix.Syscall(unix.SYS_MADVISE, m.lo, m.hi-m.lo, advice) //nolint:errcheck // see above
	}
}

func hexValue(c byte) uintptr {
	if c >= 'a' {
		return uintptr(c-'a') + 10
	}
	return uintptr(c - '0')
}
