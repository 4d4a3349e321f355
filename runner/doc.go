// Package runner owns locked-run's child process and everything it starts:
// it starts the command, supervises it until it exits, stops it and its
// descendants when asked or when it leaves them behind, and reports how it
// ended in the shell's terms.
//
// # Transparency
//
// The child is started the way a shell's exec would start it, not the way a
// job-control shell starts a job: it stays in our process group, which is
// the caller's job (sudo's exec_nopty and timeout --foreground do the same).
// It gets our own stdin, stdout and stderr (never pipes) and the environment
// it is given, and is run like execvp(3): a file the kernel refuses with
// ENOEXEC runs with /bin/sh. Because the terminal's foreground group is the
// job, keys typed at the terminal, a hangup and a window resize reach the
// child straight from the kernel, a pipeline keeps the terminal, and a
// prompt through /dev/tty works whatever fds 0-2 are. We never change the
// terminal's foreground group.
//
// The price is that a signal sent to the whole group reaches us as well as
// the child, and must not be passed on a second time, while one sent to us
// alone must be. Go's os/signal does not say who sent a signal, so the
// runner keeps a witness: the guardian (guardian.go), a process of ours in
// the same process group, which reports every signal it receives. On
// linux/amd64 it is this process forked without exec, running machine code
// of its own (guardian_linux_amd64.s and .go), elsewhere a second copy of
// this program (internal/proctree). A signal we receive that the guardian received within a moment
// was sent to the group or to every process of the tree; otherwise it was
// sent to us, and Process.Signal passes it to the child process (not to its
// group: the child's helpers get only what the child sends them). The
// guardian starts before the child, so it is in the group for every signal
// the child can get; the signals it reports are blocked in it from its
// first instruction and read from a signalfd (all of them in the forked
// one, the job-control ones in the copy of this program), so one that
// arrives while it starts is reported late instead of stopping it; a
// signal that kills it before it catches signals is reported by its exit
// status.
//
// Job control follows the child: when it is stopped and a job-control shell
// can see us (our group is not orphaned), we stop ourselves with the same
// signal, so the shell reports the job as it would report the child; the
// shell's fg or bg continues both. If the child alone is continued, the
// guardian continues us. Once continued, we continue the child only if the
// caller agrees (Config.MayContinue: the lease is still valid).
//
// # Safety: nothing of the tree runs after Done
//
// The lock is released after Done is closed, so the argument is that no
// process the child started can run once Done is closed, or, if we are
// killed without a chance to clean up, for more than about a second after:
//
//   - This process is a subreaper (PR_SET_CHILD_SUBREAPER), so a descendant
//     whose parent exits is re-parented to us, not to init: background jobs,
//     setsid'd processes and double-forked daemons all stay in our tree of
//     children, found through /proc/PID/task/TID/children.
//   - The tree is the child's subtree plus those of our children that were
//     seen in it before, carry the run's marker (Config.Marker) in their
//     environment, or show none (scrubbed, or in the middle of an exec);
//     our other children (the guardian) are never touched.
//   - When the child exits, or the context ends, every running member gets
//     SIGTERM (and SIGCONT, so a stopped one acts on it); new members found
//     while waiting get theirs too; at KillAfter every member left gets
//     SIGKILL. Done is closed only when two walks of the tree through the
//     same processes find none running (one walk may miss the successor of
//     a process that forks and exits while it runs); zombies of the tree
//     that are our children are reaped. Signals
//     go to pids read from our own tree a moment before: a pid is reused only
//     after its zombie is reaped, by its parent, which is in the tree, and the
//     child's own zombie is kept until the end.
//   - If this process dies without cleaning up (SIGKILL, the OOM killer), the
//     kernel SIGKILLs the child (parent-death signal; the forking thread is
//     kept for the child's lifetime because the signal follows the thread),
//     and the guardian, which sees the end of a pipe only we held open,
//     SIGKILLs every process whose environment holds the marker, sweeping
//     until none is left (within a second). A process that scrubbed its
//     environment, or that only root may inspect, escapes this last step;
//     so does anything when the guardian itself is SIGKILLed with us.
//   - As PID 1, we reap every orphan as it exits (tini), and the same
//     SIGTERM-then-SIGKILL ends whatever is left when the child exits
//     (dumb-init), before we exit and the kernel kills the namespace.
//
// # macOS
//
// macOS has none of the Linux mechanisms above except process groups; the
// darwin files (proc_darwin.go, tree_darwin.go, internal/proctree's
// proc_darwin.go) replace them, and the argument changes as follows:
//
//   - No subreaper: an orphan is re-parented to launchd. The tree is found
//     in the process table (sysctl kern.proc.all) as the child's subtree,
//     the processes carrying the marker (kern.procargs2, the environment a
//     process was started with) and their subtrees, and the members of any
//     process group a member created (setsid, setpgid) while that group
//     exists. An orphan that scrubbed its environment and stayed in our
//     own process group (the caller's job, which is not ours to sweep), or
//     that another user owns, escapes the stop at the end.
//   - No parent-death signal: when we die without cleaning up, the guardian
//     is the only mechanism; on the pipe's end of file it SIGKILLs the
//     child, then sweeps for the marker as on Linux. If the guardian is
//     killed with us (a SIGKILL to the whole group), the child is killed
//     with it, but orphans are not.
//   - No waitid with WNOWAIT: a kqueue reports the child's exit (EVFILT_PROC,
//     NOTE_EXIT) without reaping it, so its zombie still keeps the pid until
//     cmd.Wait; stops are collected with wait4(WUNTRACED|WNOHANG) on SIGCHLD.
//   - No signalfd, and no per-thread signal mask for the guardian's fork:
//     the guardian ignores the deferred signals from its init and reads them
//     from a kqueue (EVFILT_SIGNAL records a signal even when ignored); one
//     that reaches the group in the milliseconds before acts on it.
//   - No raw sigaction (internal/sigaction): we stop with SIGSTOP where Linux
//     stops with the child's own signal, and a child's SIGQUIT makes us exit
//     131 instead of dying of it.
//
// None of this runs in the tests, which run on Linux: the darwin code is
// compiled and vetted for darwin/amd64 and darwin/arm64 (make cross).
//
// # What it does not know
//
// The package knows nothing of locks, of which signals locked-run catches or
// of the command line: what tells it to stop is a context, and passing on a
// signal is a call to Process.Signal. Platform parts (/proc or sysctl, the
// subreaper, waitid or kqueue, the signalfd, raw sigaction) live in files
// with a _linux or _darwin suffix or behind internal/sigaction and
// internal/proctree; the guardian's design (a pipe's end of file, a witness
// in the process group) needs nothing Linux-specific.
package runner
