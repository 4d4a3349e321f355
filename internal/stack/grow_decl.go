//go:build amd64 || arm64

package stack

// growStack is in grow.s.
func growStack()
