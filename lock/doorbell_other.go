//go:build !linux

package lock

// A doorbell is Linux-only (abstract Unix sockets); elsewhere waiters poll.
type doorbell struct{}

func openDoorbell(string) *doorbell { return nil }

func (b *doorbell) C() <-chan struct{} { return nil }

func (b *doorbell) Close() {}

func (b *doorbell) Handed() <-chan handover { return nil }

func ring(string) {}

func ringTransfer(string, handover) {}
