package lock

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
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

	// HeartbeatEvery is how often the holder said it renews. Zero when
	// unknown (an item written by an older version, or the local backend).
	HeartbeatEvery time.Duration

	// Version is the record version number (RVN) of the last write by the
	// holder; waiters watch it to decide expiry. Empty for the local backend.
	Version string

	// Token is the fencing token of the current (or, when free, the last)
	// acquisition of the key. Zero means never acquired.
	Token uint64

	// Shared is true when the holder described above holds the key shared
	// (--shared, or one of --max-holders N > 1).
	Shared bool

	// Holders lists every holder of the key, the one described above
	// first; empty when the key is free. Each entry describes one holder
	// (its own Holders and Line are empty).
	Holders []Record

	// MaxHolders is the N in force for shared holders (--max-holders),
	// zero when none is.
	MaxHolders int

	// Line lists the waiters in the order they will acquire.
	Line []Waiter
}

// A Waiter is one entry in a key's line of waiters.
type Waiter struct {
	Owner   string
	Host    string
	PID     int
	User    string
	Command string

	// Shared and MaxHolders are what the waiter asked for.
	Shared     bool
	MaxHolders int

	// Joined and Heartbeat are the waiter's wall-clock times of joining
	// the line and of its last sign of life; for people to read.
	Joined    time.Time
	Heartbeat time.Time

	// Lease is how long its entry survives unchanged before other waiters
	// remove it; HeartbeatEvery how often it said it refreshes it.
	Lease          time.Duration
	HeartbeatEvery time.Duration

	// Version changes at every refresh of the entry.
	Version string

	// Nonce is a random secret of the waiter, written when it joined: a
	// holder that hands the key over to it proves it with the nonce.
	// Never shown.
	Nonce string
}

// Held reports whether the record names an owner.
func (r Record) Held() bool { return r.Owner != "" }

// LooksStopped reports whether the holder of r looks as if it stopped
// renewing, judged by its own wall-clock time of its last renewal against
// now, this host's wall clock: that time is older than one of its heartbeat
// intervals plus a slack (it should have renewed since), or it lies ahead
// of now by more than the slack (the two clocks disagree, so the time says
// nothing). The slack is half a heartbeat interval, at most a second. A
// record without the time looks stopped; a free one does not.
//
// This only decides whether watching the holder is worth it (see
// AcquireOptions.NoWait); taking a lock over never depends on it. A holder
// whose clock runs behind ours by more than the slack looks stopped while
// alive (it is then watched until its next renewal), and a dead one whose
// clock ran ahead looks alive for at most one heartbeat interval and two
// slacks after its last renewal. A record with neither LeaseMs nor
// HeartbeatMs (not written by locked-run's DynamoDB backend, or a local
// lock, which dies with its holder) never looks stopped.
func (r Record) LooksStopped(now time.Time) bool {
	if !r.Held() || r.Lease == 0 && r.HeartbeatEvery == 0 {
		return false
	}
	last := r.Heartbeat
	if last.IsZero() {
		last = r.Acquired
	}
	if last.IsZero() {
		return true
	}
	every := r.HeartbeatEvery
	if every <= 0 {
		// Written before HeartbeatMs existed: the default heartbeat.
		every = r.Lease / 3
	}
	slack := min(every/2, time.Second)
	return last.Before(now.Add(-every-slack)) || last.After(now.Add(slack))
}

// shares reports whether the waiter asked for a shared hold, as
// AcquireOptions.IsShared says of a caller.
func (w Waiter) shares() bool { return w.Shared || w.MaxHolders > 1 }

// LooksStopped reports whether the waiter looks as if it stopped refreshing
// its entry, by the rule of Record.LooksStopped.
func (w Waiter) LooksStopped(now time.Time) bool {
	return Record{Owner: w.Owner, Acquired: w.Joined, Heartbeat: w.Heartbeat, Lease: w.Lease, HeartbeatEvery: w.HeartbeatEvery}.LooksStopped(now)
}

// MaxToken is the largest fencing token handed out: the largest signed
// 64-bit integer, so that every consumer can parse it. A key whose counter
// reached it is refused with ErrTokenExhausted rather than wrapped.
const MaxToken = math.MaxInt64

// ErrTokenExhausted means the key's fencing counter is at MaxToken, so no
// greater token can be handed out. Use another key.
var ErrTokenExhausted = errors.New("fencing counter is at its maximum; use another --key")

// MaxCommandBytes bounds the command line stored in a record: enough for
// people to recognise it, far below DynamoDB's 400 KB item limit.
const MaxCommandBytes = 4096

// truncateCommand shortens cmd to at most MaxCommandBytes bytes, on a
// UTF-8 boundary, marking the cut with "...".
func truncateCommand(cmd string) string { return truncateTo(cmd, MaxCommandBytes) }

// truncateTo shortens s to at most n bytes, on a UTF-8 boundary, marking
// the cut with "...".
func truncateTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "..."
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

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
