package stack_test

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/locked-run/locked-run/internal/stack"
)

// deep recurses n times on frames of about 160 bytes.
//
//go:noinline
func deep(n int) byte {
	var pad [128]byte
	pad[n%len(pad)] = byte(n)
	if n == 0 {
		return pad[0]
	}
	return deep(n-1) + pad[(n*7)%len(pad)]
}

// stackMoves reports whether a call about 16 KiB deep, made on a new
// goroutine after grow, moved the goroutine's stack: the address of a
// local variable, taken again after the call, is on the new stack.
func stackMoves(grow func()) bool {
	moved := make(chan bool)
	go func() {
		grow()
		var x byte
		before := uintptr(unsafe.Pointer(&x))
		deep(100)
		moved <- uintptr(unsafe.Pointer(&x)) != before
	}()
	return <-moved
}

func TestGrowMakesRoomForADeepCall(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("Grow does nothing on %s", runtime.GOARCH)
	}
	if !stackMoves(func() {}) {
		t.Fatal("a deep call on a new goroutine did not move its stack: the test cannot see a copy")
	}
	if stackMoves(stack.Grow) {
		t.Error("after Grow, a deep call still moved the goroutine's stack")
	}
}
