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
// LockID, so a Terraform state lock table can be shared. Items without a
// locked-run Schema (Terraform's, say) are never modified: acquiring such a
// key fails with a *ForeignItemError.
//
//	LockID        S  the key, exactly as given (partition key)
//	Schema        S  "locked-run/2" (written by every write of this version); "locked-run/1"
//	                 items, of versions before the line, are read alike
//	Owner         S  the exclusive holder's owner id, "<host>-<pid>-<8 hex>", new for each
//	                 acquisition; absent when no exclusive holder
//	Host          S  exclusive holder's host name
//	Pid           N  its process id
//	User          S  its user name
//	Command       S  the command it runs, cut to MaxCommandBytes
//	AcquiredAt    S  its wall clock at acquisition, RFC 3339 (for people only)
//	HeartbeatAt   S  its wall clock at its last renewal, RFC 3339 (for people only)
//	LeaseMs       N  the lease it promised, in milliseconds
//	HeartbeatMs   N  how often it renews, in milliseconds
//	RVN           S  record version number: random, rewritten by every write of the holder
//	FencingToken  N  incremented by every acquisition, exclusive or shared; kept after
//	                 release, never reset; at MaxToken the key is refused (ErrTokenExhausted)
//	SharedHolders M  owner id -> the shared holder's Host, Pid, User, Command (cut to 1 KiB),
//	                 AcquiredAt, HeartbeatAt, LeaseMs, HeartbeatMs, RVN and its own
//	                 FencingToken (written by its heartbeats); absent or empty: none
//	MaxHolders    N  the N in force for shared holders; 0: any number
//	Line          L  the waiters, first in line first; each a map of Owner, Host, Pid, User,
//	                 Command (cut to 256 bytes), Shared (BOOL), MaxHolders, JoinedAt,
//	                 HeartbeatAt, LeaseMs, HeartbeatMs, RVN
//
// Release removes the holder (Owner through RVN, or its SharedHolders
// entry) and keeps LockID, Schema and FencingToken. A free key's item
// therefore still says how many times the key was acquired.
//
// # The line
//
// A caller that finds the key held (or others already waiting) appends an
// entry to Line with list_append: the store orders the line, never a clock.
// Only the first entry may take the key, with a write conditional on
// being Line[0] that also removes that entry, so waiters acquire in the
// order they joined. Exclusive and shared waiters share one line, so a
// stream of shared callers cannot overtake a queued exclusive one. A
// waiter refreshes its entry's RVN every heartbeat interval; an entry seen
// unchanged for its whole lease by a waiter behind it is removed by that
// waiter, with a write conditional on that RVN, as an expired holder is
// taken over. A caller that gives up removes its own entry (by owner id,
// even when the joining write's answer was lost). NoWait never joins.
//
// Compatibility: versions before the line know only "locked-run/1" and
// refuse other items as foreign, so they never hold a key this version has
// written to; this version treats a "locked-run/1" holder as an exclusive
// holder and rewrites the item as "locked-run/2" with its next write.
//
// Requests: an uncontended acquire is one conditional UpdateItem (it
// learns the holder from the same call when the key is held), a release is
// one more. A holder writes one UpdateItem per heartbeat (every 10 s with
// the defaults). A waiter joins the line with one write and refreshes its
// entry with one write per heartbeat interval, which also tells it the
// line. The waiters that could take the key next (the head, and shared
// waiters right behind a shared head) and the one right behind them read
// the item with a strongly consistent GetItem every Timing.Poll, jittered
// uniformly between 0.5 and 1.5 times it (5 a second with the default
// 200 ms); the one at place p behind those every p polls, so the reads of
// a key grow with the logarithm of its waiters. A waiter on another host
// takes a released key about 150 ms after the release at the median. On
// the holder's own host the release rings the head's doorbell (an abstract
// Unix socket named after its owner id, Linux only), which then tries to
// take the key at once: a handoff costs two round trips, not a poll.
//
// Fencing. Each acquisition increments a per-key counter in the same write
// that takes the lock; release keeps the counter, so tokens of a key only
// grow. A lease lock cannot stop a paused or partitioned holder from acting
// after it lost the lock; the token lets the resource it writes to refuse
// a write carrying a smaller token than one it has already seen.
package lock
