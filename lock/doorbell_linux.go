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
	// handed receives what a holder that handed the key over to this
	// waiter said: the nonce of its entry, the new RVN and token.
	handed chan handover
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
	b := &doorbell{conn: conn, c: make(chan struct{}, 1), handed: make(chan handover, 1)}
	go func() {
		buf := make([]byte, 512)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if h, ok := parseHandover(buf[:n]); ok {
				select {
				case b.handed <- h:
				default:
				}
				continue
			}
			select {
			case b.c <- struct{}{}:
			default:
			}
		}
	}()
	return b
}

// Handed returns the channel of handovers; nil for a nil doorbell.
func (b *doorbell) Handed() <-chan handover {
	if b == nil {
		return nil
	}
	return b.handed
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
func ring(owner string) { send(owner, []byte{1}) }

// ringTransfer tells owner's doorbell that the key is now its own.
func ringTransfer(owner string, h handover) { send(owner, h.encode()) }

func send(owner string, msg []byte) {
	conn, err := net.DialUnix("unixgram", nil, doorbellAddr(owner))
	if err != nil {
		return
	}
	_ = conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = conn.Write(msg)
	conn.Close()
}
