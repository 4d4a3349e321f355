// Package startup readies the Go runtime for locked-run's short life
// before the rest of the program initialises. A program imports it for
// its side effect. It depends on nothing but the runtime, so its init runs
// before the standard library's and the AWS SDK's (a test checks the
// order in the binary).
//
// Two costs of a Go program's start are paid for nothing in locked-run,
// and each touches the function tables (pclntab) that no other part of a
// run reads, every page of which is a page fault the first time and
// counts in the process's resident set for the rest of the run:
//
//   - Memory profiling. Every 512 KiB allocated, the runtime records the
//     allocating call stack for a heap profile nobody can ask locked-run
//     for (it serves no pprof). A run allocates about 3 MB.
//   - Stack copies. A goroutine starts on a 2 KiB stack; each time a call
//     needs more, the runtime allocates one twice the size and copies the
//     stack over, walking every frame with its function's tables to
//     adjust the pointers into it. The main goroutine, through the AWS
//     SDK's initialisation and its request path (a few dozen frames of
//     middleware), was copied four times (2, 4, 8, 16 to 32 KiB), and the
//     goroutine that loads the AWS configuration three times (to 16 KiB).
//     Grow gives the calling goroutine a 32 KiB stack at once, while it
//     has only a few frames to copy.
//
// Stack pages the goroutine never reaches stay untouched, so a larger
// stack costs address space, not memory. BENCHMARKS.md ("Eighth pass")
// has the figures.
package startup

import "runtime"

func init() {
	runtime.MemProfileRate = 0
	Grow()
}

// Grow makes sure the calling goroutine's stack is at least 32 KiB, so
// that calls up to about that depth do not copy it again. Call it first
// thing in a goroutine that will make AWS requests or load the AWS
// configuration. A no-op on architectures other than amd64 and arm64.
func Grow() { growStack() }
