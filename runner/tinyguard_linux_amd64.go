//go:build linux && amd64

package runner

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The guardian as a program of its own. Started as a second copy of
// locked-run, the guardian is a second start of a 14 MB Go program: 1.8 ms
// of CPU and 300 page faults here, most of its cost being the Go runtime's
// own start, on the two CPUs that our start and the lock's requests need. A
// run of `-t T -- true` was 5.17× flock with it and 4.66× with the same
// protocol spoken by a 9 KB static program (BENCHMARKS.md, seventh pass). So
// on linux/amd64 the guardian is guardianProgram (guardian_linux_amd64.s),
// whose bytes are copied, once per process, into a small static executable
// in a memfd, which startGuardian executes. Forking this process instead
// (no exec) was measured too, and is slower than either: every page the Go
// runtime writes after the fork is copied, with a TLB flush on the other CPU.
// Where the memfd cannot be made or executed (an old kernel,
// vm.memfd_noexec=2, a security policy), the guardian is locked-run again,
// as on every other platform.

// guardianProgram is never called: its bytes are the program.
func guardianProgram()

// guardianProgramStart returns the address of guardianProgram's code.
func guardianProgramStart() *byte

// The executable's layout: code at tinyText, and the program's memory (its
// bss) at tinyBSS, of tinyBSSSize bytes, as guardian_linux_amd64.s expects.
const (
	tinyText    = 0x400000
	tinyBSS     = 0x600000
	tinyBSSSize = 0x10000
	tinyCodeOff = 256 // after the ELF header and three program headers
)

var tiny struct {
	once sync.Once
	file *os.File // held open for the life of the process
	path string
	err  error
}

// tinyGuardian returns the path of the guardian's executable, made the
// first time it is asked for: a sealed memfd, open read-only (a file open
// for writing cannot be executed), named by /proc/self/fd.
func tinyGuardian() (string, error) {
	tiny.once.Do(func() {
		tiny.file, tiny.err = makeTinyGuardian()
		if tiny.err == nil {
			tiny.path = "/proc/self/fd/" + strconv.Itoa(int(tiny.file.Fd()))
		}
	})
	return tiny.path, tiny.err
}

func makeTinyGuardian() (*os.File, error) {
	image, err := tinyImage()
	if err != nil {
		return nil, err
	}
	const name = "lockedrun-guardian"
	flags := unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	fd, err := unix.MemfdCreate(name, flags|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		// Kernels before 6.3 know no MFD_EXEC; their memfds are executable.
		fd, err = unix.MemfdCreate(name, flags)
	}
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	rw := os.NewFile(uintptr(fd), name)
	defer rw.Close()
	if _, err := rw.Write(image); err != nil {
		return nil, err
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return nil, os.NewSyscallError("fcntl F_ADD_SEALS", err)
	}
	return os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_RDONLY, 0)
}

// tinyImage returns the guardian's executable: a static ELF file whose
// code is guardianProgram's machine code.
func tinyImage() ([]byte, error) {
	start := guardianProgramStart()
	size := funcSize(uintptr(unsafe.Pointer(start)))
	if size == 0 || tinyCodeOff+size > tinyBSS-tinyText {
		return nil, fmt.Errorf("guardian program: size %d", size)
	}
	code := unsafe.Slice(start, size)
	// The data segment starts on a page of its own: 16 bytes in the file,
	// the rest of the bss zero-filled by the kernel, as in any static
	// executable.
	dataOff := (tinyCodeOff + size + 4095) &^ 4095
	image := make([]byte, dataOff+16)
	copy(image[tinyCodeOff:], code)

	le := binary.LittleEndian
	copy(image, "\x7fELF\x02\x01\x01") // 64-bit, little-endian, version 1, System V
	le.PutUint16(image[16:], 2)        // ET_EXEC
	le.PutUint16(image[18:], 62)       // EM_X86_64
	le.PutUint32(image[20:], 1)
	le.PutUint64(image[24:], tinyText+tinyCodeOff) // entry
	le.PutUint64(image[32:], 64)                   // program headers
	le.PutUint16(image[52:], 64)                   // header size
	le.PutUint16(image[54:], 56)                   // program header size
	le.PutUint16(image[56:], 3)                    // program headers
	le.PutUint16(image[58:], 64)                   // section header size (none)
	type segment struct {
		typ, flags                      uint32
		off, addr, filesz, memsz, align uint64
	}
	const ptLoad, ptGNUStack, pfX, pfW, pfR = 1, 0x6474e551, 1, 2, 4
	for i, s := range []segment{
		{ptLoad, pfR | pfX, 0, tinyText, uint64(tinyCodeOff + size), uint64(tinyCodeOff + size), 4096},
		{ptLoad, pfR | pfW, uint64(dataOff), tinyBSS, 16, tinyBSSSize, 4096},
		{ptGNUStack, pfR | pfW, 0, 0, 0, 0, 16},
	} {
		p := image[64+56*i:]
		le.PutUint32(p[0:], s.typ)
		le.PutUint32(p[4:], s.flags)
		le.PutUint64(p[8:], s.off)
		le.PutUint64(p[16:], s.addr)
		le.PutUint64(p[24:], s.addr)
		le.PutUint64(p[32:], s.filesz)
		le.PutUint64(p[40:], s.memsz)
		le.PutUint64(p[48:], s.align)
	}
	return image, nil
}

// funcSize returns the length of the function whose code starts at entry
// (its alignment padding included), from the runtime's table of functions,
// or 0 when entry starts none.
func funcSize(entry uintptr) int {
	same := func(n int) bool {
		f := runtime.FuncForPC(entry + uintptr(n))
		return f != nil && f.Entry() == entry
	}
	if !same(0) {
		return 0
	}
	lo, hi := 0, 1
	for same(hi) {
		if hi >= 1<<20 {
			return 0
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 {
		if mid := (lo + hi) / 2; same(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}
