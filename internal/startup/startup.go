// Package startup readies the Go runtime for locked-run's short life
// before the rest of the program initialises. The command imports it for
// its side effect, and nothing else may: it changes the whole program. It
// depends on nothing but the runtime and internal/stack, so its init runs
// before the standard library's and the AWS SDK's (a test checks the
// order in the binary).
//
// Two costs of a Go program's start are paid for nothing in locked-run,
// and each reads the function tables (pclntab), every page of which is a
// page fault the first time and counts in the process's resident set for
// the rest of the run:
//
//   - Memory profiling. Every 512 KiB allocated, the runtime records the
//     allocating call stack for a heap profile nobody can ask locked-run
//     for (it serves no pprof). A `-t` run allocates about 1.2 MB.
//   - Stack copies (internal/stack). The main goroutine, through the AWS
//     SDK's initialisation and its request path, was copied four times
//     (2, 4, 8, 16 to 32 KiB); it is grown to 32 KiB here, while it holds
//     three frames.
//
// BENCHMARKS.md ("Eighth pass") has the figures.
package startup

import (
	"runtime"

	"github.com/locked-run/locked-run/internal/stack"
)

func init() {
	runtime.MemProfileRate = 0
	stack.Grow()
}
