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
// Conditional writes. Acquiring a free key, taking over an expired one,
// renewing, and releasing are each a single write whose condition names what
// the writer last saw (no owner; the RVN it watched; its own owner id and
// RVN). Two writers can therefore never both succeed from the same view.
//
// Holder's deadline. The holder measures from the send time of its last
// write that succeeded: the server applied it no earlier, and any waiter saw
// its RVN no earlier, so no waiter can take over before send time + lease.
// If renewals keep failing, the holder closes Lost at send time + lease -
// kill-after - margin, which leaves the caller kill-after to stop its child
// and a margin for scheduling and clock-rate error before the first moment a
// waiter could write.
//
// Fencing. Each acquisition increments a per-key counter in the same write
// that takes the lock; release keeps the counter, so tokens of a key only
// grow. A lease lock cannot stop a paused or partitioned holder from acting
// after it lost the lock; the token lets the resource it writes to refuse
// a write carrying a smaller token than one it has already seen.
package lock
