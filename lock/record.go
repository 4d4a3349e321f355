package lock

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
	"unicode/utf8"
)

// MaxKeyBytes is the longest key accepted, in bytes: DynamoDB's limit for a
// partition key value.
const MaxKeyBytes = 2048

// A Record is what a backend knows of one key: who holds it, and the
// counters that survive release. The wall-clock times are the holder's own
// and are for people to read; no decision in this package trusts them.
type Record struct {
	Key string

	// Owner is the holder's owner id; empty means the key is free.
	Owner   string
	Host    string
	PID     int
	User    string
	Command string

	// Acquired and Heartbeat are the holder's wall-clock times of its
	// acquisition and its last renewal. Zero when unknown.
	Acquired  time.Time
	Heartbeat time.Time

	// Lease is how long the holder promised the lock survives without a
	// heartbeat. Zero for the local backend, whose locks die with the holder.
	Lease time.Duration

	// Version is the record version number (RVN) of the last write by the
	// holder; waiters watch it to decide expiry. Empty for the local backend.
	Version string

	// Token is the fencing token of the current (or, when free, the last)
	// acquisition of the key. Zero means never acquired.
	Token uint64
}

// Held reports whether the record names an owner.
func (r Record) Held() bool { return r.Owner != "" }

// Identity describes the process that takes a lock. It is written into the
// record so that waiters and `status` can say who holds the key.
type Identity struct {
	Host    string
	PID     int
	User    string
	Command string
}

// ValidateKey returns an error matching ErrInvalidKey when key cannot name a
// lock. Backends call it before any request.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: key is empty", ErrInvalidKey)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: key is not valid UTF-8", ErrInvalidKey)
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("%w: key is %d bytes, longer than the %d-byte limit", ErrInvalidKey, len(key), MaxKeyBytes)
	}
	return nil
}

// NewOwnerID returns an owner id for one acquisition by id: readable, and
// unique thanks to 4 random bytes, as in "ci-runner-7-4412-9f1c03ab". A new
// id per acquisition is what makes cleanup "by owner" safe: no other
// attempt, even of the same process, can carry it.
func NewOwnerID(id Identity) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	host := id.Host
	if host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s-%d-%s", host, id.PID, hex.EncodeToString(b))
}
