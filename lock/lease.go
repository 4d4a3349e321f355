package lock

import (
	"context"
	"math"
	"os"
	"sync"
	"time"
)

// A Locker takes and inspects locks. Both backends implement it.
type Locker interface {
	// Acquire takes key and returns the held lease. It waits while the key
	// is held, until ctx is done, unless opts.NoWait is set, in which case
	// it returns a *HeldError at once. When ctx ends first, the error wraps
	// ctx.Err(), and nothing is left held, even if a request that would
	// have taken the lock was in flight.
	Acquire(ctx context.Context, key string, opts AcquireOptions) (*Lease, error)

	// Status returns the record of key; Record.Held is false when free.
	Status(ctx context.Context, key string) (Record, error)

	// List returns the records of every held key, sorted by key.
	List(ctx context.Context) ([]Record, error)

	// ForceRelease breaks the lock on key whatever its owner and returns
	// the record it broke. It returns ErrNotHeld when the key is free.
	// The fencing token is kept.
	ForceRelease(ctx context.Context, key string) (Record, error)
}

// AcquireOptions says how Acquire waits.
type AcquireOptions struct {
	// NoWait makes Acquire fail with a *HeldError when the key is held,
	// instead of waiting: at once when the holder looks alive, within one
	// of the holder's heartbeats when it is alive but looks stopped. A
	// holder of a DynamoDB lock that looks stopped (Record.LooksStopped) is
	// watched for up to its lease and taken over if its record version
	// stays unchanged, as a waiter would; the local backend never waits.
	NoWait bool

	// Timeout, if positive, bounds the wait: Acquire then fails with an
	// error wrapping context.DeadlineExceeded (ctx itself is not done).
	// As with NoWait, a DynamoDB holder that looked stopped when its
	// current record version was first seen is watched to the end of that
	// version's lease even past Timeout, and taken over if it stays
	// unchanged. Zero means no limit but ctx.
	Timeout time.Duration

	// Progress is how often OnWait is called again while waiting. Zero
	// means only once, when waiting starts.
	Progress time.Duration

	// OnWait, if not nil, is called from Acquire's goroutine when it first
	// finds the key held and then every Progress while it still waits,
	// with the key's record last seen, this caller's place in the line and
	// how long Acquire has waited.
	OnWait func(w Wait)

	// Shared makes this a shared holder (flock -s): shared holders hold
	// the key together, never with an exclusive one. A caller with
	// MaxHolders > 1 is a shared holder too.
	Shared bool

	// MaxHolders is the N of a semaphore: at most N shared holders at
	// once. Zero means not given: an exclusive holder without Shared, any
	// number of shared ones with it. Every caller that gives it must agree
	// with the N in force on the key while it has holders or waiters that
	// share it; one that does not gets a *MaxHoldersError.
	MaxHolders int
}

// MaxHoldersLimit is the largest MaxHolders accepted: every shared holder
// is an entry of the key's item, which must stay well below DynamoDB's
// 400 KB item limit.
const MaxHoldersLimit = 100

// IsShared reports whether opts ask for a shared hold: Shared, or a
// semaphore of more than one holder.
func (o AcquireOptions) IsShared() bool { return o.Shared || o.MaxHolders > 1 }

// Wait is what OnWait is told while a caller waits.
type Wait struct {
	// Record is the key's record last seen: its holders and its line.
	Record Record
	// Position is this caller's place in the line, from 1 (next to
	// acquire); zero when it is not in the line (NoWait never queues).
	Position int
	// Waited is how long Acquire has waited so far.
	Waited time.Duration
}

// A Lease is a held lock. It stays held until Release is called or Lost is
// closed. Its methods are safe for concurrent use.
type Lease struct {
	rec Record // as written at acquisition: key, owner, identity, token

	lost     chan struct{}
	lostOnce sync.Once
	mu       sync.Mutex
	err      error

	// clock and deadline bound Valid for leases that need renewing; a
	// zero deadline means the lease lasts until released or lost.
	clock    Clock
	deadline time.Time

	releaseOnce sync.Once
	releaseErr  error
	release     func(ctx context.Context) error

	file  *os.File   // the locked file of a host-local lease
	files []*os.File // every file a host-local lease holds locked, file first
}

// newLease returns a held lease for rec. release is called at most once, by
// Release; it must stop any renewal before it gives the lock up.
func newLease(rec Record, release func(ctx context.Context) error) *Lease {
	return &Lease{rec: rec, lost: make(chan struct{}), release: release}
}

// File returns the open file whose flock(2) is the lock of a host-local
// lease, and nil for a DynamoDB lease. The lock belongs to the open file,
// not to this process: a process that inherits a descriptor of it keeps the
// key held after this process dies, until that process exits too (Release
// unlocks it for every descriptor). The caller must not close it.
func (l *Lease) File() *os.File { return l.file }

// Files returns every open file whose flock(2) is part of a host-local
// lease: File, and for a shared holder its slot (--max-holders) and its
// holder file. It returns nil for a DynamoDB lease. As with File, whoever
// inherits them keeps them locked, and the caller must not close them.
func (l *Lease) Files() []*os.File {
	switch {
	case l.files != nil:
		return l.files
	case l.file != nil:
		return []*os.File{l.file}
	}
	return nil
}

// Key returns the locked key.
func (l *Lease) Key() string { return l.rec.Key }

// Owner returns this holder's owner id, unique to this acquisition.
func (l *Lease) Owner() string { return l.rec.Owner }

// Token returns the fencing token of this acquisition: greater than the
// token of every earlier acquisition of the key.
func (l *Lease) Token() uint64 { return l.rec.Token }

// Record returns the record written when the lock was acquired.
func (l *Lease) Record() Record { return l.rec }

// Lost returns a channel that is closed, exactly once, when this process can
// no longer assume it holds the lock: a renewal found another owner, or
// renewals failed for longer than the renew deadline. Err then says which.
// It is never closed by Release.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err returns nil while the lease is held, and after Lost is closed an error
// wrapping ErrLost that says why.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// setDeadline records when, on clock, the lease stops being safe to assume
// held unless renewed again. The renewer calls it after every write that
// landed.
func (l *Lease) setDeadline(clock Clock, deadline time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clock, l.deadline = clock, deadline
}

// Valid reports whether this process may still assume it holds the lock:
// Lost is not closed and, for a lease that must be renewed, the renew
// deadline of its last successful renewal has not passed on the local
// clock. It answers at once, from memory. A process that was stopped
// (Ctrl-Z, SIGSTOP) asks it before it lets work resume: its renewer could
// not run while it was stopped, and Lost may not be closed yet.
func (l *Lease) Valid() bool {
	select {
	case <-l.lost:
		return false
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline.IsZero() || l.clock.Now().Before(l.deadline)
}

// Remaining returns how much longer this process may assume it holds the
// lock, unless renewed: zero once Lost is closed or the renew deadline
// passed, and the largest Duration for a lease that needs no renewing (the
// local backend's).
func (l *Lease) Remaining() time.Duration {
	select {
	case <-l.lost:
		return 0
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.deadline.IsZero() {
		return math.MaxInt64
	}
	return max(l.deadline.Sub(l.clock.Now()), 0)
}

// markLost records err (which should wrap ErrLost) and closes Lost. Only the
// first call has an effect.
func (l *Lease) markLost(err error) {
	l.lostOnce.Do(func() {
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		close(l.lost)
	})
}

// Release stops renewing and gives the lock up, conditional on still being
// its owner: it never removes another owner's lock. It is safe to call more
// than once; later calls return the first call's result. Callers should pass
// a fresh short-lived context, since the one that led to the release is
// often already cancelled.
func (l *Lease) Release(ctx context.Context) error {
	l.releaseOnce.Do(func() { l.releaseErr = l.release(ctx) })
	return l.releaseErr
}
