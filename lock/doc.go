// Package lock owns locked-run's lease lock: acquiring a key, keeping it
// alive with heartbeats, handing out fencing tokens, and releasing it.
//
// It has two backends behind one API. [Dynamo] keeps one item per key in an
// Amazon DynamoDB table; [Local] takes flock(2) on a file per key in a
// directory. Both return a [*Lease], and the caller only ever deals with that.
//
// The package deliberately knows nothing of processes: it never starts,
// signals or waits for a child. It tells its caller, through [Lease.Lost],
// when the lock can no longer be assumed held, early enough for the caller to
// stop whatever the lock protects; what "stop" means is the caller's business.
//
// # Safety argument (DynamoDB)
//
// Local clocks only. Every item carries a record version number (RVN), a
// random string rewritten by each heartbeat. A waiter treats a lock as
// expired only after it has watched the RVN stay unchanged for a full lease
// on its own monotonic clock, measured from the moment it first received that
// RVN; the wall-clock timestamps in the item are shown to people and never
// used for a decision, so a holder whose clock is hours off changes nothing.
//
// Stopped-looking holders. A caller that will not wait (NoWait) or not for
// long (Timeout) could never see a crashed holder expire. When the holder's
// record looks stopped (Record.LooksStopped: its HeartbeatAt, by its clock,
// is older than its heartbeat interval and a slack by ours, or far in our
// future), such a caller watches it anyway, for up to one lease, with the
// same RVN rule: another host's clock only decides whether watching is
// worth it, never whether to take over. A live holder renews within one
// heartbeat, and the caller then answers "held".
//
// Conditional writes. Acquiring a free key, taking over an expired one,
// renewing, and releasing are each a single write whose condition names what
// the writer last saw (no owner; the RVN it watched; its own owner id and
// RVN). Two writers can therefore never both succeed from the same view.
//
// Holder's deadline. The holder measures from the send time of its last
// write that succeeded (for a renewal that needed retries, of its first
// attempt, since any of them may be the one that landed): the server
// applied it no earlier, and any waiter saw its RVN no earlier, so no waiter
// can take over before send time + lease.
// If renewals keep failing, the holder closes Lost at send time + lease -
// kill-after - margin, which leaves the caller kill-after to stop its child
// and a margin for scheduling and clock-rate error before the first moment a
// waiter could write. A lease is never handed out with less than one
// heartbeat left before that deadline (an answer that came late, or a lost
// one found by a read): it is given back by owner id and acquired again.
//
// Suspend. SystemClock counts time the host spent suspended
// (CLOCK_BOOTTIME; CLOCK_MONOTONIC on macOS), and the renewer wakes at least
// every second, so a holder that resumes past its deadline is invalid at
// once and closes Lost within about a second of running time. What ran in
// that second cannot be undone; fencing tokens are the remedy.
//
// # DynamoDB item layout
//
// One item per key in a table whose only key is the string partition key
// LockID, so a Terraform state lock table can be shared. Items without
// Schema "locked-run/1" (Terraform's, say) are never modified: acquiring
// such a key fails with a *ForeignItemError.
//
//	LockID        S  the key, exactly as given (partition key)
//	Schema        S  "locked-run/1": marks the item as locked-run's; kept after release
//	Owner         S  holder's owner id, "<host>-<pid>-<8 hex>", new for each acquisition; absent when free
//	Host          S  holder's host name
//	Pid           N  holder's process id
//	User          S  holder's user name
//	Command       S  the command the holder runs, cut to MaxCommandBytes
//	AcquiredAt    S  holder's wall clock at acquisition, RFC 3339 (for people only)
//	HeartbeatAt   S  holder's wall clock at its last renewal, RFC 3339 (for people only)
//	LeaseMs       N  the lease the holder promised, in milliseconds
//	HeartbeatMs   N  how often the holder renews, in milliseconds (absent before issue 9)
//	RVN           S  record version number: random, rewritten by every write of the holder
//	FencingToken  N  incremented by every acquisition; kept after release, never reset;
//	                 at MaxToken the key is refused (ErrTokenExhausted), never wrapped
//
// Release removes Owner through RVN and keeps LockID, Schema and
// FencingToken. A free key's item therefore still says how many times the
// key was acquired.
//
// Requests: an uncontended acquire is one conditional UpdateItem (it
// learns the holder from the same call when the key is held), a release is
// one more. A holder writes one UpdateItem per heartbeat (every 10 s with
// the defaults). A waiter reads the item with a strongly consistent GetItem
// every Timing.Poll, jittered uniformly between 0.5 and 1.5 times it (5 a
// second with the default 200 ms), writes only when it sees the key free
// or expired, and takes a released key about 150 ms after the release at
// the median.
//
// Fencing. Each acquisition increments a per-key counter in the same write
// that takes the lock; release keeps the counter, so tokens of a key only
// grow. A lease lock cannot stop a paused or partitioned holder from acting
// after it lost the lock; the token lets the resource it writes to refuse
// a write carrying a smaller token than one it has already seen.
package lock
