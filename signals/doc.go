// Package signals owns which signals locked-run catches: the ones a user,
// a terminal or a supervisor (systemd, a CI runner, kill) sends to ask a
// program to stop or to act, listed in [Forwarded]. [Relay] catches them for
// the whole life of the process and hands each one, in the order received, to
// a function the caller gives it.
//
// The package deliberately knows nothing of locks or children: whether a
// signal cancels the wait for a lock or is forwarded to the child is the
// caller's decision. It does not catch the job-control signals (SIGTSTP,
// SIGTTIN, SIGTTOU, SIGCONT) or SIGWINCH: with a terminal, the kernel sends
// those to the child's process group directly.
//
// A signal that was ignored when the program started (nohup ignores SIGHUP;
// a shell without job control starts background jobs with SIGINT ignored)
// is left ignored, so that the child inherits the ignore exactly as it would
// without locked-run in between. Go preserves such an inherited ignore only
// for SIGHUP and SIGINT; for the others the runtime installs its own handler
// at start-up, so there is no telling, and they are caught.
package signals
