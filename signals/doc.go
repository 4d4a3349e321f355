// Package signals owns which signals locked-run catches: the ones a user,
// a terminal or a supervisor (systemd, a CI runner, kill) sends to ask a
// program to stop or to act, and the keyboard stop, listed in [Forwarded].
// [Relay] catches them for the whole life of the process and hands each one,
// in the order received, to a function the caller gives it; [RelayFrom]
// goes on from what package early has caught since the program's first
// moment (and early keeps a broken pipe on our own output from killing us).
// [Die] and [Stop] make the process die of, or stop with, a signal as its
// default action would, without the Go runtime's handlers in between.
//
// The package deliberately knows nothing of locks or children: whether a
// signal cancels the wait for a lock or is passed on to the child is the
// caller's decision. It does not catch SIGTTIN, SIGTTOU, SIGCONT or
// SIGWINCH: the child is in our process group, so the kernel sends those to
// it directly, and locked-run itself never reads the terminal.
//
// A signal that was ignored when the program started (nohup ignores SIGHUP;
// a shell without job control starts background jobs with SIGINT ignored)
// is left ignored, so that the child inherits the ignore exactly as it would
// without locked-run in between. Go preserves such an inherited ignore only
// for SIGHUP and SIGINT; for the others the runtime installs its own handler
// at start-up, so there is no telling, and they are caught.
package signals
