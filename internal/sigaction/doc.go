// Package sigaction sets a signal's disposition back to the kernel's default
// for a moment, behind the Go runtime's back, so that a process can stop or
// die of a signal exactly as a C program would: stopped with SIGTSTP (a shell
// says "Stopped", not "Stopped (signal)"), or killed by SIGQUIT without the
// runtime's goroutine dump.
//
// It is shared by signals (dying of the child's signal) and runner (stopping
// together with the child), which must not import each other. Only Linux on
// amd64 and arm64 has the raw implementation; elsewhere (macOS, where
// x/sys/unix has no sigaction without cgo) Stop falls back to SIGSTOP and
// Die to exiting 128+N when the runtime keeps its handler (README,
// Platforms).
package sigaction
