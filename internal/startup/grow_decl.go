//go:build amd64 || arm64

package startup

// growStack is in grow.s.
func growStack()
