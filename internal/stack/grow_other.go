//go:build !amd64 && !arm64

package stack

// growStack leaves the stack to grow as it goes: a Go function with a
// large frame would have to clear it, touching the pages it is meant to
// leave alone.
func growStack() {}
