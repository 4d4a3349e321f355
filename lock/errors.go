package lock

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrHeld means another owner holds the key. Errors that carry the
	// holder are *HeldError, which matches ErrHeld.
	ErrHeld = errors.New("lock is held")

	// ErrLost means this process can no longer assume it holds the lock:
	// a renewal found another owner or no item, or renewals failed for
	// longer than the renew deadline. Lease.Err wraps it.
	ErrLost = errors.New("lock lost")

	// ErrNotHeld means the key is free; ForceRelease returns it when there
	// is nothing to break.
	ErrNotHeld = errors.New("lock is not held")

	// ErrTableNotFound means the DynamoDB table does not exist (or is not
	// visible to these credentials in this region).
	ErrTableNotFound = errors.New("table not found")

	// ErrAccessDenied means the credentials are not allowed the request.
	ErrAccessDenied = errors.New("access denied")

	// ErrInvalidKey means the key cannot name a lock: empty, or longer
	// than DynamoDB's 2048-byte partition-key limit. It is returned before
	// any request is made.
	ErrInvalidKey = errors.New("invalid key")

	// ErrInvalidConfig means a Config cannot be used: typically the lease
	// is too short for the heartbeat and kill grace.
	ErrInvalidConfig = errors.New("invalid lock configuration")

	// ErrForeignItem means the key's item in the DynamoDB table was not
	// written by locked-run (a Terraform state lock sharing the table, say).
	// Such an item is never modified; errors that report one are
	// *ForeignItemError, which also matches ErrHeld, since the key cannot
	// be had.
	ErrForeignItem = errors.New("item is not a locked-run lock")
)

// A HeldError reports that a key is held by someone else, with what is known
// of the holder. It matches ErrHeld.
type HeldError struct {
	Key    string
	Holder Record
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("acquire %q: held by %s", e.Key, e.Holder.Describe())
}

// Is reports whether target is ErrHeld.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Describe returns a short human description of the holder of r, such as
// `ci-runner-7-4412-9f1c (host ci-runner-7, pid 4412) since 12:03:10Z`.
func (r Record) Describe() string {
	if !r.Held() {
		if len(r.Line) > 0 {
			return fmt.Sprintf("nobody, %d waiting in line", len(r.Line))
		}
		return "nobody"
	}
	s := r.Owner
	switch {
	case r.Host != "" && r.PID != 0:
		s += fmt.Sprintf(" (host %s, pid %d)", r.Host, r.PID)
	case r.Host != "":
		s += fmt.Sprintf(" (host %s)", r.Host)
	}
	if !r.Acquired.IsZero() {
		s += " since " + r.Acquired.UTC().Format(time.RFC3339)
	}
	if len(r.Holders) > 1 {
		s += fmt.Sprintf(" and %d other shared holder", len(r.Holders)-1)
		if len(r.Holders) > 2 {
			s += "s"
		}
	}
	if len(r.Line) > 0 {
		s += fmt.Sprintf(", %d waiting in line", len(r.Line))
	}
	return s
}

// A SlowStoreError reports that Acquire took the lock Tries times and gave
// it back each time, because the answer came so late that less than one
// heartbeat of the lease was left: the store answers more slowly than the
// lease leaves room for. It matches ErrInvalidConfig, since the fix is a
// longer lease.
type SlowStoreError struct {
	Left      time.Duration // what the last lease taken had left
	Heartbeat time.Duration
	Tries     int
}

func (e *SlowStoreError) Error() string {
	return fmt.Sprintf("the store answered too late %d times in a row: a lease taken had %s of its renew window left, less than --heartbeat %s, and was given back; give a longer --lease, or a shorter --heartbeat or --kill-after",
		e.Tries, e.Left.Round(time.Millisecond), e.Heartbeat)
}

// Is reports whether target is ErrInvalidConfig.
func (e *SlowStoreError) Is(target error) bool { return target == ErrInvalidConfig }

// A MaxHoldersError means the key is in use with another --max-holders N
// than the caller's: every holder of a key must agree on N.
type MaxHoldersError struct {
	Key string
	// InForce is the N the key's holders or waiters use; zero means any
	// number of shared holders (--shared without --max-holders).
	InForce int
	// Asked is the caller's N, zero when it gave none.
	Asked int
}

func (e *MaxHoldersError) Error() string {
	inForce := "--shared without --max-holders"
	if e.InForce > 0 {
		inForce = fmt.Sprintf("--max-holders %d", e.InForce)
	}
	asked := "none"
	if e.Asked > 0 {
		asked = fmt.Sprintf("%d", e.Asked)
	}
	return fmt.Sprintf("key %q is in use with %s (this run asked for --max-holders %s); every run on a key must give the same N", e.Key, inForce, asked)
}

// Is makes a MaxHoldersError match ErrInvalidConfig: it is the caller's to fix.
func (e *MaxHoldersError) Is(target error) bool { return target == ErrInvalidConfig }
