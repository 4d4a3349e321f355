package main

// Signals are caught from the first moment our own code runs (see
// signals.CatchEarly): SIGQUIT in the first milliseconds is not a
// goroutine dump, SIGINT is not lost.
import _ "github.com/locked-run/locked-run/signals/early"
