package lock

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"time"
)

// A doorbell wakes a waiter on this host as soon as the key it waits for
// is released, instead of at its next poll: the releasing holder sends one
// datagram to an abstract Unix socket named after the head of the line's
// owner id. Waiters on other hosts, or in another network namespace, are
// not reached and keep polling; a datagram from anyone else only costs the
// waiter an early look. It is a hint, never a decision: the waiter still
// takes the key with a conditional write.
type doorbell struct {
	conn *net.UnixConn
	c    chan struct{}
}

// doorbellAddr is the abstract socket address of owner's doorbell: a hash,
// since owner ids may be longer than a socket name.
func doorbellAddr(owner string) *net.UnixAddr {
	sum := sha256.Sum256([]byte(owner))
	return &net.UnixAddr{Name: "@locked-run/" + hex.EncodeToString(sum[:12]), Net: "unixgram"}
}

// openDoorbell listens for rings for owner; nil when it cannot.
func openDoorbell(owner string) *doorbell {
	conn, err := net.ListenUnixgram("unixgram", doorbellAddr(owner))
	if err != nil {
		return nil
	}
	b := &doorbell{conn: conn, c: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 8)
		for {
			if _, _, err := conn.ReadFrom(buf); err != nil {
				return
			}
			select {
			case b.c <- struct{}{}:
			default:
			}
		}
	}()
	return b
}

// C returns the channel that receives a value for each ring (coalesced);
// nil, which never receives, for a nil doorbell.
func (b *doorbell) C() <-chan struct{} {
	if b == nil {
		return nil
	}
	return b.c
}

// Close stops listening.
func (b *doorbell) Close() {
	if b != nil {
		b.conn.Close()
	}
}

// ring wakes owner's doorbell if it listens on this host; errors (nobody
// listening) are ignored.
func ring(owner string) {
	conn, err := net.DialUnix("unixgram", nil, doorbellAddr(owner))
	if err != nil {
		return
	}
	_ = conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = conn.Write([]byte{1})
	conn.Close()
}
