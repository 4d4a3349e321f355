// Package runner owns locked-run's child process: it starts the command,
// supervises it until it exits, stops it when asked, and reports how it ended
// in the shell's terms.
//
// It starts the child the way a job-control shell would. The child gets our
// own stdin, stdout and stderr (never pipes), the environment it is given,
// and its own process group. When locked-run is the foreground job of its
// controlling terminal, the child's group becomes the terminal's foreground
// group at fork and the terminal is given back to locked-run's group once the
// child has exited, so keys typed at the terminal (Ctrl-C, Ctrl-\, Ctrl-Z) and
// window resizes reach the child once, straight from the kernel. In the
// background or without a terminal (cron, CI), the terminal is not touched.
// If the child is stopped by a job-control signal (Ctrl-Z, or reading the
// terminal from the background), locked-run stops itself with the same signal
// so the user's shell sees its job stopped, and continues the child when the
// shell continues locked-run, handing the terminal over again if it is now in
// the foreground. While stopped, nothing else in the process runs either; if
// the context has ended by the time we are continued, the child is not
// continued but stopped.
//
// The child is tied to locked-run's life: it is started with the kernel's
// parent-death signal (SIGKILL), so if locked-run is killed without a chance
// to clean up, the child dies with it. Stopping the child on request, when the
// context given to [Start] is done, is SIGTERM to its process group and SIGKILL
// to the group after [Config.KillAfter].
//
// The package deliberately knows nothing of locks, signals sent to locked-run
// or the command line: what tells it to stop is a context, and forwarding a
// signal is a call to [Process.Signal]. It is Linux-only (parent-death
// signal, waitid, terminal ioctls).
package runner
