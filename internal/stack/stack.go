// Package stack grows a goroutine's stack ahead of a deep call.
//
// A goroutine starts on a 2 KiB stack; each time a call needs more, the
// runtime allocates one twice the size and copies the stack over, walking
// every frame with its function's tables (pclntab) to adjust the pointers
// into it. The AWS SDK's request path and its configuration's loading are
// a few dozen frames of middleware, 16 to 32 KiB deep: a goroutine that
// makes a request copied its stack three or four times, each walk faulting
// in more of the tables, which then count in the process's resident set.
// Grow copies it once, while the goroutine has only a few frames.
//
// Stack pages the goroutine never reaches stay untouched, so a larger
// stack costs address space, not memory. Unlike internal/startup, this
// package has no side effect on import: lock uses it.
package stack

// Grow makes sure the calling goroutine's stack is at least 32 KiB, so
// that calls up to about that depth do not copy it again. Call it first
// thing in a goroutine that will make AWS requests or load the AWS
// configuration. A no-op on architectures other than amd64 and arm64.
func Grow() { growStack() }
